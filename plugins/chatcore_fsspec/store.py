"""`FsspecMediaStore`: the `chatcore.interfaces.MediaStore` over any fsspec filesystem.

fsspec's calls block (a local disk, or s3fs's own event loop in its own thread), so every one
runs in a worker thread: the node's event loop never waits on storage I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import fsspec
from fsspec.core import split_protocol, url_to_fs

from chatcore.failures import reason
from chatcore.models import MediaPolicy
from chatcore.server.app import StartupError
from chatcore_fsspec.settings import FsspecMediaSettings

__all__ = ["FsspecMediaStore", "handles"]

log = logging.getLogger(__name__)

#: Keys are made by the server (`chatcore.server.media`); anything else is a bug, refused loudly.
KEY = re.compile(r"[a-z0-9][a-z0-9_-]*(?:/[a-z0-9][a-z0-9._-]*)*")
CHUNK_BYTES = 256 * 1024
#: How long start-up waits for an endpoint named in `storage_options` to accept a connection.
PROBE_SECONDS = 5.0
LOCAL = {"file", "local"}


def handles(url: str) -> bool:
    """True for a URL of a protocol fsspec knows (its package may still be missing)."""
    protocol = split_protocol(url)[0] or "file"
    return protocol in fsspec.available_protocols()


class FsspecMediaStore:
    """Media bytes under the folder, bucket or prefix of `[media] url`."""

    def __init__(self, settings: FsspecMediaSettings) -> None:
        self.settings = settings
        self.url = settings.url
        self.policy: MediaPolicy = settings.policy()
        self._fs: Any = None
        self._root = ""
        self._local = (split_protocol(self.url)[0] or "file") in LOCAL

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the filesystem and create the folder (or bucket) when it is missing.

        Every failure is a one-line StartupError naming `media.url`: fsspec's filesystems
        raise their own libraries' errors (botocore's for S3), not only OSError.
        """
        await self._probe_endpoint()
        try:
            self._fs, self._root = await asyncio.to_thread(self._connect)
        except ImportError as exc:
            raise StartupError(
                f"media.url {self.url!r} needs a package that is not installed ({exc}); "
                "for s3:// install chatcore[s3]"
            ) from None
        except Exception as exc:
            log.debug("media.url %r cannot be used", self.url, exc_info=True)
            raise StartupError(f"media.url {self.url!r} cannot be used: {reason(exc)}") from None
        log.info("media stored at %s", self.url)

    async def _probe_endpoint(self) -> None:
        """Fail at once when `storage_options` names an endpoint that refuses connections:
        the filesystem itself would retry for half a minute (s3fs and botocore both do)."""
        options = self.settings.storage_options
        endpoint = options.get("endpoint_url") or options.get("client_kwargs", {}).get(
            "endpoint_url"
        )
        if not isinstance(endpoint, str):
            return
        parts = urlsplit(endpoint)
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(parts.hostname, port), PROBE_SECONDS
            )
        except (OSError, TimeoutError, ValueError) as exc:
            raise StartupError(
                f"cannot connect to the media store at {endpoint} (media.url {self.url!r}): "
                f"{reason(exc)}"
            ) from None
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()

    def _connect(self) -> tuple[Any, str]:
        options = dict(self.settings.storage_options)
        if self._local:
            options.setdefault("auto_mkdir", True)  # sub-folders made as keys need them
        fs, root = url_to_fs(self.url, **options)
        fs.makedirs(root, exist_ok=True)
        return fs, root.rstrip("/")

    async def close(self) -> None:
        self._fs = None

    @property
    def fs(self) -> Any:
        if self._fs is None:
            raise RuntimeError("the media store is used before start()")
        return self._fs

    def path(self, key: str) -> str:
        if not KEY.fullmatch(key):
            raise ValueError(f"not a media key: {key!r}")
        return f"{self._root}/{key}"

    # --- MediaStore ------------------------------------------------------------------------

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        path = self.path(key)
        # On a local disk the bytes go to a temporary sibling renamed into place, so that even
        # a crash mid-write leaves nothing under the key; object stores make an upload visible
        # only once it is complete anyway.
        target = f"{path}.{uuid.uuid4().hex}.tmp" if self._local else path
        file = await asyncio.to_thread(self.fs.open, target, "wb")
        written = 0
        try:
            async for chunk in chunks:
                await asyncio.to_thread(file.write, chunk)
                written += len(chunk)
            await asyncio.to_thread(file.close)
            if target != path:
                await asyncio.to_thread(self.fs.mv, target, path)
        except BaseException:
            await asyncio.to_thread(self._abandon, file, target)
            raise
        return written

    def _abandon(self, file: Any, path: str) -> None:
        """After a failed write: close what was opened and remove what it left."""
        with contextlib.suppress(Exception):
            file.close()
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(path)

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        path = self.path(key)
        file = await asyncio.to_thread(self.fs.open, path, "rb")
        try:
            if start:
                await asyncio.to_thread(file.seek, start)
            left = None if end is None else max(0, end - start)
            while left is None or left > 0:
                want = CHUNK_BYTES if left is None else min(CHUNK_BYTES, left)
                chunk = await asyncio.to_thread(file.read, want)
                if not chunk:
                    break
                if left is not None:
                    left -= len(chunk)
                yield chunk
        finally:
            await asyncio.to_thread(file.close)

    async def size(self, key: str) -> int | None:
        return await asyncio.to_thread(self._size, self.path(key))

    def _size(self, path: str) -> int | None:
        try:
            info = self.fs.info(path)
        except FileNotFoundError:
            return None
        if info.get("type") == "directory":
            return None
        return int(info["size"])

    async def exists(self, key: str) -> bool:
        return await self.size(key) is not None

    async def delete(self, key: str) -> None:
        path = self.path(key)
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(self.fs.rm_file, path)
