"""The store's SQLAlchemy engine on one SQLite file, set up for several processes at once.

Every new connection gets `busy_timeout` first (so that the next pragmas, and every write,
wait for another process's lock instead of failing with "database is locked"), then WAL
journal mode (readers never wait for the writer), `synchronous=NORMAL` (safe with WAL: a power
cut can lose the last commits, never corrupt the file) and foreign keys.

SQLAlchemy, not the sqlite3 driver, emits BEGIN (the recipe of SQLAlchemy's SQLite docs, set
up by `chatcore_sql.engine.sqlite_connections` as for the server's storage), so a
read runs in a real transaction (one snapshot for all its queries) and a write can begin with
`BEGIN IMMEDIATE` (`writer`): it takes the file's write lock up front, so two writers in two
processes queue on `busy_timeout` instead of one failing when both upgrade a read lock.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from chatcore_sql.engine import sqlite_connections

#: How long a statement waits for another connection's (another process's) lock.
BUSY_TIMEOUT_MS = 5000

# An execution option the writer engine carries; the "begin" listener reads it.
_IMMEDIATE = "chatcore_device_sqlite_immediate"


def create_engine(path: Path, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> AsyncEngine:
    """An async engine (aiosqlite) on the file at `path`, every connection set up as above."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
    pragmas = (
        f"PRAGMA busy_timeout={int(busy_timeout_ms)}",
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=NORMAL",
        "PRAGMA foreign_keys=ON",
    )
    sqlite_connections(engine.sync_engine, pragmas, _IMMEDIATE)
    return engine


def prepare_file(path: Path, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
    """Make the file's folder and put the file in WAL mode (blocking: run it in a thread).

    Switching a file to WAL takes an exclusive lock, and SQLite answers "database is locked"
    at once, without waiting `busy_timeout`, when another connection races it on a new file
    (two processes of the device starting together). So the switch is made here, alone and
    retried for up to `busy_timeout_ms`; the mode is kept in the file, and the connections'
    own `journal_mode=WAL` then finds it set.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + busy_timeout_ms / 1000
    with closing(sqlite3.connect(path, timeout=busy_timeout_ms / 1000)) as db:
        while True:
            try:
                db.execute("PRAGMA journal_mode=WAL").fetchall()
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(0.01)


def writer(engine: AsyncEngine) -> AsyncEngine:
    """The same engine and pool, whose transactions begin with `BEGIN IMMEDIATE`."""
    return engine.execution_options(**{_IMMEDIATE: True})
