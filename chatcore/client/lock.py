"""The engine lock: which process of a device runs the connection and sends the outbox.

Several processes may open one device store (the app and its push handler). Only one of them
may hold the WebSocket and send the outbox, or two senders would race over the same entries.
That one holds an exclusive `flock` on a file beside the store (`<store path>.lock`), taken
without waiting: a process that does not get it works without a connection (it reads the
store, queues sends and replies over REST). The operating system drops the lock when its
holder exits, killed or not, so a crashed app never leaves the device locked.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from pathlib import Path

__all__ = ["EngineLock", "lock_path"]


def lock_path(store_path: str | os.PathLike[str]) -> Path:
    """The lock file of the device store at `store_path`."""
    return Path(f"{os.fspath(store_path)}.lock")


class EngineLock:
    """The exclusive, non-blocking lock of one device store's engine."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    async def acquire(self) -> bool:
        """Take the lock if no other process holds it; True when this process holds it now."""
        if self._fd is not None:
            return True
        self._fd = await asyncio.to_thread(_try_lock, self.path)
        return self._fd is not None

    async def release(self) -> None:
        """Let another process take it; safe to call when not held."""
        fd, self._fd = self._fd, None
        if fd is not None:
            await asyncio.to_thread(_unlock, fd)


def _try_lock(path: Path) -> int | None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _unlock(fd: int) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
