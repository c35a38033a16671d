"""The media cache in a folder: one file per entry, an index in SQLite.

Under `[media_cache] path`:

    index.db                  the index (SQLite, WAL): key, file, size, content type, ETag,
                              when fetched and when last accessed
    files/ab/abcd…-1f2e3d4c   one file per entry: the sha256 of its key, then a random suffix

Keys come from the server (media ids), so they never become paths: a file is named by the hash
of its key, plus a suffix new for every version, so that replacing or evicting one version never
touches another's file, also when several processes share the folder. A file is written to a
temporary name and renamed into place before the index names it; the index is changed in
`BEGIN IMMEDIATE` transactions (each process has its own connection; `busy_timeout` makes one
wait for another); files are deleted after the transaction that dropped them committed. An
entry whose file is missing, or has another size than the index says, is not cached (its row is
dropped). Files no row names (left by a process that died between writing and indexing) are
deleted by `open` once they are an hour old.

Eviction goes by last access: every `get`, `touch` and `put` takes the next number of a counter
kept in the index, so the order is exact across processes and within one millisecond.
Every disk operation runs off the event loop (aiosqlite's thread, or a worker thread).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import secrets
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import aiosqlite
import anyio

from chatcore.client.models import CachedFile
from chatcore.clock import now_ms
from chatcore.settings import MediaCacheSettings

__all__ = ["DiskMediaCache"]

INDEX_NAME = "index.db"
FILES_DIR = "files"
#: How long one process waits for another's transaction before giving up.
BUSY_TIMEOUT_MS = 10_000
#: A file no entry names is deleted by `open` once it is this old (younger ones may belong to a
#: `put` of another process that has not indexed them yet).
ORPHAN_AGE_SECONDS = 3600.0
#: What the index may name as a file: anything else is never joined to a path.
_FILE_NAME = re.compile(r"[0-9a-f]{2}/[0-9a-f]{64}-[0-9a-f]{8}")

SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY,
    file TEXT NOT NULL,
    size INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    etag TEXT,
    fetched_ts INTEGER NOT NULL,
    accessed_ts INTEGER NOT NULL,
    access_order INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_by_access ON entries (access_order);
"""
#: The next value of the access counter (inside a write transaction).
NEXT_ORDER = "(SELECT COALESCE(MAX(access_order), 0) + 1 FROM entries)"
COLUMNS = "key, file, size, content_type, etag, fetched_ts, accessed_ts"

Row = tuple[str, str, int, str, str | None, int, int]


class DiskMediaCache:
    """`chatcore.client.interfaces.MediaCache` in a folder on disk (see the module doc)."""

    def __init__(self, settings: MediaCacheSettings) -> None:
        self.settings = settings
        self._root: Path | None = None
        self._db: aiosqlite.Connection | None = None
        # One connection serves every task of this process: its transactions take turns.
        self._lock = asyncio.Lock()

    @property
    def revalidate_after_seconds(self) -> float:
        """How long a cached file is shown without asking the server whether it changed."""
        return self.settings.revalidate_after_seconds

    @property
    def max_entry_bytes(self) -> int:
        """The largest file kept: the per-file cap, and never more than the whole cache."""
        return min(self.settings.max_file_bytes, self.settings.max_bytes)

    async def open(self) -> None:
        """Create the folder and index if missing; delete old files no entry names."""
        if self._db is not None:
            return
        root = await anyio.to_thread.run_sync(_make_folder, Path(self.settings.path))
        db = await aiosqlite.connect(root / INDEX_NAME, isolation_level=None)
        try:
            await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            await db.execute("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA synchronous = NORMAL")
            await db.executescript(SCHEMA)
            async with db.execute("SELECT file FROM entries") as cursor:
                named = {str(row[0]) async for row in cursor}
        except BaseException:
            await db.close()
            raise
        self._db, self._root = db, root
        await anyio.to_thread.run_sync(_sweep_orphans, root / FILES_DIR, named)

    async def close(self) -> None:
        """Release the index; safe to call twice."""
        db, self._db = self._db, None
        if db is not None:
            await db.close()

    async def get(self, key: str) -> CachedFile | None:
        """The cached file for `key`, marking it as just accessed; None when not cached (or
        when its file is gone or damaged: the entry is dropped then)."""
        root = self._folder()
        gone: list[str] = []
        async with self._write() as db:
            row = await _entry(db, key)
            if row is None:
                return None
            path = _file_path(root, row[1])
            if path is None or not await anyio.to_thread.run_sync(_has_size, path, row[2]):
                await db.execute("DELETE FROM entries WHERE key = ?", (key,))
                gone.append(row[1])
                found = None
            else:
                now = now_ms()
                await db.execute(
                    f"UPDATE entries SET accessed_ts = ?, access_order = {NEXT_ORDER} "
                    "WHERE key = ?",
                    (now, key),
                )
                found = _cached(root, row, accessed_ts=now)
        await self._delete_files(gone)
        return found

    async def put(
        self, key: str, data: bytes, *, content_type: str, etag: str | None
    ) -> CachedFile | None:
        """Keep `data` under `key` (replacing an older copy), then evict the least recently
        accessed files until the cache is within `max_bytes`. None when `data` is over the
        per-file cap: nothing is kept, and an older copy is dropped (it is outdated)."""
        root = self._folder()
        if len(data) > self.max_entry_bytes:
            await self.remove(key)
            return None
        name = _new_file_name(key)
        await anyio.to_thread.run_sync(_write_atomically, root / FILES_DIR / name, data)
        now = now_ms()
        try:
            async with self._write() as db:
                old = await _entry(db, key)
                await db.execute(
                    f"INSERT INTO entries ({COLUMNS}, access_order) "
                    f"VALUES (?, ?, ?, ?, ?, ?, ?, {NEXT_ORDER}) "
                    "ON CONFLICT (key) DO UPDATE SET file = excluded.file, size = excluded.size, "
                    "content_type = excluded.content_type, etag = excluded.etag, "
                    "fetched_ts = excluded.fetched_ts, accessed_ts = excluded.accessed_ts, "
                    "access_order = excluded.access_order",
                    (key, name, len(data), content_type, etag, now, now),
                )
                evicted = await self._evict(db, keep=key)
        except BaseException:
            await self._delete_files([name])
            raise
        await self._delete_files([*([old[1]] if old else []), *evicted])
        return _cached(root, (key, name, len(data), content_type, etag, now, now))

    async def touch(self, key: str, *, fetched: bool = False) -> None:
        """Mark `key` accessed (and, with `fetched`, revalidated with the server just now)."""
        now = now_ms()
        fetched_column = ", fetched_ts = :now" if fetched else ""
        async with self._write() as db:
            await db.execute(
                f"UPDATE entries SET accessed_ts = :now, access_order = {NEXT_ORDER}"
                f"{fetched_column} WHERE key = :key",
                {"now": now, "key": key},
            )

    async def remove(self, key: str) -> None:
        """Drop `key` and its file (nothing happens when it is not cached)."""
        async with self._write() as db:
            row = await _entry(db, key)
            if row is None:
                return
            await db.execute("DELETE FROM entries WHERE key = ?", (key,))
        await self._delete_files([row[1]])

    async def usage(self) -> int:
        """Bytes the cache holds (by the index)."""
        async with (
            self._lock,
            self._connection().execute("SELECT COALESCE(SUM(size), 0) FROM entries") as cursor,
        ):
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    # --- inside -------------------------------------------------------------------------------

    async def _evict(self, db: aiosqlite.Connection, keep: str) -> list[str]:
        """Drop the least recently accessed entries (never `keep`) until the total is within
        `max_bytes`; the files to delete once the transaction committed."""
        async with db.execute("SELECT COALESCE(SUM(size), 0) FROM entries") as cursor:
            row = await cursor.fetchone()
        total = int(row[0]) if row else 0
        excess = total - self.settings.max_bytes
        if excess <= 0:
            return []
        victims: list[tuple[str, str]] = []
        async with db.execute(
            "SELECT key, file, size FROM entries WHERE key != ? ORDER BY access_order", (keep,)
        ) as cursor:
            async for victim_key, file, size in cursor:
                victims.append((str(victim_key), str(file)))
                excess -= int(size)
                if excess <= 0:
                    break
        await db.executemany("DELETE FROM entries WHERE key = ?", [(k,) for k, _ in victims])
        return [file for _, file in victims]

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        """A write transaction, taking the database's write lock at once (no upgrade from a
        read lock that another process could make fail)."""
        db = self._connection()
        async with self._lock:
            await db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                with suppress(Exception):
                    await db.execute("ROLLBACK")
                raise
            await db.execute("COMMIT")

    async def _delete_files(self, names: Sequence[str]) -> None:
        if names:
            await anyio.to_thread.run_sync(_unlink_all, self._folder(), names)

    def _connection(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("the media cache is not open: call open() first")
        return self._db

    def _folder(self) -> Path:
        if self._root is None:
            raise RuntimeError("the media cache is not open: call open() first")
        return self._root


# --- rows -------------------------------------------------------------------------------------


async def _entry(db: aiosqlite.Connection, key: str) -> Row | None:
    async with db.execute(f"SELECT {COLUMNS} FROM entries WHERE key = ?", (key,)) as cursor:
        row = await cursor.fetchone()
    if row is None:
        return None
    return (str(row[0]), str(row[1]), int(row[2]), str(row[3]), row[4], int(row[5]), int(row[6]))


def _cached(root: Path, row: Row, *, accessed_ts: int | None = None) -> CachedFile:
    key, file, size, content_type, etag, fetched_ts, accessed = row
    return CachedFile(
        key=key,
        path=str(root / FILES_DIR / file),
        size=size,
        content_type=content_type,
        etag=etag,
        fetched_ts=fetched_ts,
        accessed_ts=accessed if accessed_ts is None else accessed_ts,
    )


def _new_file_name(key: str) -> str:
    """`ab/abcd…-suffix`: the key's hash, a random suffix for this version."""
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{digest[:2]}/{digest}-{secrets.token_hex(4)}"


def _file_path(root: Path, name: str) -> Path | None:
    """Where an indexed file lives; None for a name this cache would never have written."""
    return root / FILES_DIR / name if _FILE_NAME.fullmatch(name) else None


# --- files (blocking: worker threads only) ----------------------------------------------------


def _make_folder(path: Path) -> Path:
    root = path.expanduser().resolve()
    (root / FILES_DIR).mkdir(parents=True, exist_ok=True)
    return root


def _write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary name beside `path`, then rename: a reader sees all or nothing."""
    path.parent.mkdir(exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _has_size(path: Path, size: int) -> bool:
    try:
        return path.stat().st_size == size
    except OSError:
        return False


def _unlink_all(root: Path, names: Iterable[str]) -> None:
    for name in names:
        path = _file_path(root, name)
        if path is not None:
            path.unlink(missing_ok=True)


def _sweep_orphans(files: Path, named: set[str]) -> None:
    """Delete files older than `ORPHAN_AGE_SECONDS` that no entry names."""
    oldest_kept = time.time() - ORPHAN_AGE_SECONDS
    for folder in files.iterdir():
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            name = f"{folder.name}/{path.name}"
            if name in named or not path.is_file():
                continue
            with suppress(OSError):
                if path.stat().st_mtime < oldest_kept:
                    path.unlink()
