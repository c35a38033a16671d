"""Where the token signing secret comes from: the config, or a file made on first start."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import stat
from pathlib import Path

from chatcore.server.app import StartupError
from chatcore_auth.settings import AuthSettings

__all__ = ["resolve_secret"]

log = logging.getLogger(__name__)

#: Filesystems without hard links: fall back to a direct exclusive create.
_NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK}


def resolve_secret(settings: AuthSettings) -> bytes:
    """The secret from `settings.secret`, else from `settings.secret_file` (created if missing).

    Blocking file I/O: call it from a worker thread.
    """
    if settings.secret is not None:
        return settings.secret.get_secret_value().strip().encode()
    path = Path(settings.secret_file)
    try:
        secret = _read(path)
    except FileNotFoundError:
        secret = _create(path)
    else:
        log.info("auth secret read from %s", path)
    return secret


def _read(path: Path) -> bytes:
    try:
        secret = path.read_bytes().strip()
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise StartupError(f"auth.secret_file {path}: cannot be read: {exc.strerror}") from None
    if not secret:
        raise StartupError(
            f"auth.secret_file {path} is empty; delete it to have a new secret made, "
            "or set auth.secret"
        )
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("auth secret file %s is readable by other users; chmod 600 it", path)
    return secret


def _create(path: Path) -> bytes:
    """Write a new random secret, mode 0600, atomically: a concurrent start reads one secret."""
    secret = secrets.token_urlsafe(64).encode()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not _link_into_place(tmp, path, secret):
            log.info("auth secret read from %s (made by another process)", path)
            return _read(path)
    except OSError as exc:
        raise StartupError(
            f"auth.secret_file {path}: cannot create it: {exc.strerror}; "
            "set auth.secret or make the folder writable"
        ) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    log.warning(
        "auth secret generated and written to %s (mode 0600); keep it private, and give every "
        "node of this service the same secret",
        path,
    )
    return secret


def _link_into_place(tmp: Path, path: Path, secret: bytes) -> bool:
    """Put `secret` at `path` unless it exists (False then). Nobody reads a half-written file:
    the secret goes to a private temporary file first, then is hard-linked into place, and
    the link fails when another process made the file first."""
    _write_private(tmp, secret)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        try:
            _write_private(path, secret)
        except FileExistsError:
            return False
    return True


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)  # whatever the umask
        f.write(data + b"\n")
        f.flush()
        os.fsync(f.fileno())
