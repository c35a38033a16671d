"""The engine lock: which process of a device runs the connection and sends the outbox.

Several processes may open one device store (the app and its push handler). Only one of them
may hold the WebSocket and send the outbox, or two senders would race over the same entries.
That one holds an exclusive `flock` on a file beside the store (`<store path>.lock`), taken
without waiting: a process that does not get it works without a connection (it reads the
store, queues sends and replies over REST). The operating system drops the lock when its
holder exits, killed or not, so a crashed app never leaves the device locked.

The processes share one login too, and a refresh token works once: a second lock
(`<store path>.login.lock`, `held_exclusively`) is held, waiting for it, by whichever process
refreshes the login, so another one never presents a refresh token already spent.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator
from pathlib import Path

__all__ = ["EngineLock", "held_exclusively", "lock_path", "login_lock_path"]


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

    async def held_elsewhere(self) -> bool:
        """True when another process of the device holds the lock right now."""
        if self._fd is not None:
            return False
        fd = await asyncio.to_thread(_try_lock, self.path)
        if fd is None:
            return True
        await asyncio.to_thread(_unlock, fd)
        return False

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


def login_lock_path(store_path: str | os.PathLike[str]) -> Path:
    """The file whose lock a process of the device holds while it refreshes the login."""
    return Path(f"{os.fspath(store_path)}.login.lock")


@contextlib.asynccontextmanager
async def held_exclusively(path: str | os.PathLike[str]) -> AsyncIterator[None]:
    """Hold the lock of `path` against every other process of the device, waiting for it."""
    taking = asyncio.ensure_future(asyncio.to_thread(_lock_waiting, Path(path)))
    try:
        fd = await asyncio.shield(taking)
    except asyncio.CancelledError:
        # The thread cannot be stopped: release the lock as soon as it has it.
        taking.add_done_callback(_release_when_taken)
        raise
    try:
        yield
    finally:
        await asyncio.to_thread(_unlock, fd)


def _lock_waiting(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _release_when_taken(taking: asyncio.Future[int]) -> None:
    if not taking.cancelled() and taking.exception() is None:
        _unlock(taking.result())
