"""The writer of message batches on a SQLite file: a whole transaction in one thread hop, on
the plain sqlite3 connection.

Through aiosqlite every statement is a round trip to its worker thread and back to the event
loop: a batch's BEGIN, four statements and COMMIT are six, each waking the loop. Here the
batch runs in one dedicated thread, from BEGIN IMMEDIATE to COMMIT, and the loop is woken
once, when the batch is durable. The loop never waits on the database: it awaits the thread's
future.

The statements run on the sqlite3 connection itself, not through SQLAlchemy's execution
machinery: for a batch of one message that machinery (compiled-statement lookup, events,
expanding IN, result setup) cost several times what SQLite did. They are still SQLAlchemy's
statements (`chatcore_sql.messages`), compiled once with the SQLite dialect (`CompiledSql`),
and `messages.store_batch` makes every decision, whichever runs them.

The connection comes from a sync engine set up as the async engine's connections are (WAL,
the configured `synchronous`, `busy_timeout`, foreign keys, no BEGIN of the driver's own), so
the transaction is as durable, and as exclusive, as one on the async engine; `SqlStorage`
still holds its write lock around it, so in this process writers queue on that lock, not on
`busy_timeout`.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import re
import sqlite3
import threading
from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from operator import itemgetter
from typing import Any, Literal, TypeVar

from sqlalchemy import Executable, Select
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import URL
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from chatcore.models import Message, PushAudience
from chatcore_sql import contacts, messages, push_queue, rooms
from chatcore_sql.engine import create_sqlite_sync_engine
from chatcore_sql.rows import i64
from chatcore_sql.rows import message as message_row
from chatcore_sql.settings import SqlStorageSettings

log = logging.getLogger(__name__)

T = TypeVar("T")

_DIALECT = sqlite.dialect()
# Where the SQLite dialect leaves an expanding IN list to be rendered per execution.
_POSTCOMPILE = re.compile(r"__\[POSTCOMPILE_(\w+)\]")


class CompiledSql:
    """A SQLAlchemy statement compiled once with the SQLite dialect, run on a sqlite3
    connection with named parameters as SQLAlchemy would run it: positional `?` in the
    compiled order, one `?` per value of an expanding IN list, and the columns' bind
    conversions applied (a Boolean is stored as the integer 0 or 1).

    The SQL of an expanding statement depends on its lists' lengths, and sqlite3 prepares
    each new string again (about 50 µs for the batch's read, half a one-message batch). So a
    list is padded to the next power of two by repeating its last value (`x IN (a, b, b)` is
    `x IN (a, b)`): a few strings cover every batch, made once each (a bounded cache) and
    prepared once each (the connection's statement cache, see `create_sqlite_sync_engine`).
    """

    def __init__(self, statement: Executable, sizes_cached: int = 64) -> None:
        assert isinstance(statement, ClauseElement)
        compiled = statement.compile(dialect=_DIALECT)
        assert isinstance(compiled, SQLCompiler)
        self.sql = compiled.string
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())
        binds = [compiled.binds[name] for name in self.names]
        self._expanding = tuple(dict.fromkeys(b.key for b in binds if b.expanding))
        self._lists = tuple(b.expanding for b in binds)
        # Values the statement carries itself (SQLite's LIMIT renders an OFFSET of 0).
        self._defaults = {
            n: b.value for n, b in zip(self.names, binds, strict=True) if not b.required
        }
        self._processors = [
            (i, process)
            for i, bind in enumerate(binds)
            if (process := bind.type.dialect_impl(_DIALECT).bind_processor(_DIALECT))
        ]
        assert not any(self._lists[i] for i, _ in self._processors), "IN lists of plain values"
        self._row = itemgetter(*self.names) if len(self.names) > 1 else None
        self._sized = lru_cache(maxsize=sizes_cached)(self._render)

    def execute(self, db: sqlite3.Connection, params: Mapping[str, Any]) -> sqlite3.Cursor:
        sql = self.sql
        if self._expanding:
            sql = self._sized(tuple(_padded(len(params[name])) for name in self._expanding))
        args: list[Any] = []
        for name, is_list in zip(self.names, self._lists, strict=True):
            if is_list:
                values = params[name]
                args.extend(values)
                args.extend(values[-1:] * (_padded(len(values)) - len(values)))
            else:
                args.append(params[name] if name in params else self._defaults[name])
        for i, process in self._processors:
            args[i] = process(args[i])
        return db.execute(sql, args)

    def executemany(self, db: sqlite3.Connection, rows: Iterable[Mapping[str, Any]]) -> None:
        assert not self._expanding and self._row is not None, "rows of plain values"
        pick, processors = self._row, self._processors
        if processors:
            args: Iterable[Sequence[Any]] = [_processed(pick(row), processors) for row in rows]
        else:
            args = [pick(row) for row in rows]
        db.executemany(self.sql, args)

    def _render(self, sizes: tuple[int, ...]) -> str:
        lengths = dict(zip(self._expanding, sizes, strict=True))
        assert all(lengths.values()), "an IN list is never empty here"
        return _POSTCOMPILE.sub(lambda m: ", ".join("?" * lengths[m[1]]), self.sql)


def _padded(length: int) -> int:
    """The length an IN list of `length` values is padded to (see `CompiledSql`)."""
    return 1 << (length - 1).bit_length() if length > 1 else length


def _processed(values: Sequence[Any], processors: list[tuple[int, Any]]) -> list[Any]:
    converted = list(values)
    for i, process in processors:
        converted[i] = process(converted[i])
    return converted


_LOCK_ROOMS = CompiledSql(messages.LOCK_ROOMS)
_READS = {key: CompiledSql(statement) for key, statement in messages.READS.items()}
_INSERT_MESSAGES = CompiledSql(messages.INSERT_MESSAGES)
_UPDATE_ROOMS = CompiledSql(messages.UPDATE_ROOMS)
_AFTER = CompiledSql(messages.AFTER)
_ROOM_SEQS = CompiledSql(rooms.ROOM_SEQS)
# Each with a row type (None: no rows), for columns by name as push_queue reads them.
_COMPILED: dict[int, tuple[CompiledSql, Any]] = {
    id(statement): (
        CompiledSql(statement),
        namedtuple("Row", statement.selected_columns.keys())  # type: ignore[misc]
        if isinstance(statement, Select)
        else None,
    )
    for statement in (*push_queue.AUDIENCE, *push_queue.WRITES)
}


class SqliteRun:
    """`push_queue.Run` on the writer's (or the reader's) sqlite3 connection, in its thread:
    the queue's statements compiled once, rows as named tuples."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __call__(self, statement: Executable, params: Mapping[str, Any]) -> list[Any]:
        compiled, row_type = _COMPILED[id(statement)]
        cursor = compiled.execute(self.db, params)
        return [row_type._make(row) for row in cursor] if row_type is not None else []

    def many(self, statement: Executable, rows: Sequence[Mapping[str, Any]]) -> None:
        compiled, _ = _COMPILED[id(statement)]
        compiled.executemany(self.db, rows)


UserIds = Literal["contacts", "direct_peers", "blocks"]
_USER_IDS: dict[UserIds, CompiledSql] = {
    "contacts": CompiledSql(contacts.CONTACT_IDS),
    "direct_peers": CompiledSql(rooms.DIRECT_PEERS),
    "blocks": CompiledSql(contacts.BLOCKS_INVOLVING),
}


class SqliteStatements:
    """`messages.BatchStatements` on a plain sqlite3 connection."""

    __slots__ = ("_db",)

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def lock_rooms(self, room_ids: list[str]) -> Iterable[Sequence[Any]]:
        # SQLite has no row locks: BEGIN IMMEDIATE holds the database's write lock already.
        return _LOCK_ROOMS.execute(self._db, {"room_ids": room_ids})

    def read(self, params: dict[str, Any]) -> Iterable[Sequence[Any]]:
        return _READS["reply_ids" in params, "pairs" in params].execute(self._db, params)

    def insert_messages(self, new_rows: list[dict[str, Any]]) -> None:
        _INSERT_MESSAGES.executemany(self._db, new_rows)

    def update_rooms(self, changes: list[dict[str, Any]]) -> None:
        _UPDATE_ROOMS.executemany(self._db, changes)


class _ConnectionThread:
    """A plain sqlite3 connection used only in one thread of its own, made on first use (in
    that thread) from a sync engine set up as the async engine's connections are."""

    def __init__(self, url: URL, settings: SqlStorageSettings, name: str) -> None:
        self._engine = create_sqlite_sync_engine(url, settings)
        # Checked out of the engine's pool (so set up by its "connect" listener) in the
        # thread, on first use, and kept until `close`.
        self._pooled: PoolProxiedConnection | None = None
        self._db: sqlite3.Connection | None = None
        self._thread = _Lane(name)

    def _connection(self) -> sqlite3.Connection:
        if self._db is not None:
            return self._db
        self._pooled = self._engine.raw_connection()
        db = self._pooled.driver_connection
        assert isinstance(db, sqlite3.Connection)
        assert db.isolation_level is None, "BEGIN is ours, not the driver's"
        self._db = db
        return db

    def _close(self) -> None:
        pooled, self._pooled, self._db = self._pooled, None, None
        if pooled is not None:
            pooled.close()  # back to the pool (rolled back), closed by dispose below
        self._engine.dispose()

    async def close(self) -> None:
        """Close the connection (in its thread, after any job still running), then end the
        thread."""
        try:
            await self._thread.run(self._close)
        finally:
            self._thread.stop()


class SqliteWriter(_ConnectionThread):
    """Runs write transactions on one sqlite3 connection, in one thread of its own."""

    def __init__(self, url: URL, settings: SqlStorageSettings) -> None:
        super().__init__(url, settings, "chatcore-sqlite-writer")

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work(db)` in one write transaction (BEGIN IMMEDIATE ... COMMIT) in the thread;
        once more if the database refused the first try in a way a second can get past (a
        constraint raced: another process wrote between two tries' reads)."""
        return await self._thread.run(lambda: self._transaction(work))

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            db = super()._connection()
            # Commits never checkpoint (copy the WAL into the database and fsync it, which
            # took a commit from a fraction of a millisecond to several): the storage has the
            # reader's connection checkpoint in the background instead (`checkpoint`).
            db.execute("PRAGMA wal_autocheckpoint=0")
            return db
        return self._db

    def _transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        db = self._connection()
        try:
            return _attempt(db, work)
        except sqlite3.IntegrityError as exc:
            log.warning("retrying a write transaction after: %s", exc)
        return _attempt(db, work)


class SqliteReader(_ConnectionThread):
    """The hot reads (catch-up, and what every session start reads) in one hop to a thread of
    their own, on a plain sqlite3 connection: through aiosqlite and SQLAlchemy a query is
    several hops and wake-ups of the event loop, and turning a thousand rows into messages cost
    several times what SQLite did. Each read is one statement, which SQLite runs on one
    snapshot (WAL): it never sees half a batch, and never waits for the writer."""

    def __init__(self, url: URL, settings: SqlStorageSettings) -> None:
        super().__init__(url, settings, "chatcore-sqlite-reader")

    async def messages_after(self, room_id: str, after_seq: int, limit: int) -> list[Message]:
        """`Storage.messages_after` (see `messages.after`)."""
        params = {"room_id": room_id, "after_seq": i64(after_seq), "limit": i64(limit)}
        return await self._thread.run(lambda: self._after(params))

    async def room_seqs(self, user_id: str) -> dict[str, int]:
        """`Storage.room_seqs` (see `rooms.room_seqs`): each session start and each sync."""
        return dict(await self.rows(_ROOM_SEQS, {"user_id": user_id}))

    async def user_ids(self, kind: UserIds, user_id: str) -> list[str]:
        """The ids a session start reads for its presence audience (see `presence`)."""
        return [row[0] for row in await self.rows(_USER_IDS[kind], {"user_id": user_id})]

    async def push_audience(self, room_ids: list[str]) -> PushAudience:
        """`Storage.push_audience` (see `push_queue.audience`): after every batch."""
        params = {"room_ids": room_ids}

        def read() -> PushAudience:
            run = SqliteRun(self._connection())
            return push_queue.audience_of(
                *(run(statement, params) for statement in push_queue.AUDIENCE)
            )

        return await self._thread.run(read)

    async def rows(self, statement: CompiledSql, params: dict[str, Any]) -> list[Any]:
        return await self._thread.run(
            lambda: statement.execute(self._connection(), params).fetchall()
        )

    async def checkpoint(self) -> None:
        """Copy what the WAL holds into the database, without blocking readers or the writer
        (a PASSIVE checkpoint); the writer's commits leave this to us (see SqliteWriter)."""
        await self._thread.run(lambda: self._connection().execute("PRAGMA wal_checkpoint(PASSIVE)"))

    def _after(self, params: dict[str, Any]) -> list[Message]:
        found = _AFTER.execute(self._connection(), params).fetchall()
        return [message_row(row) for row in found]


class _Lane:
    """One thread running the jobs given to `run` in turn, each awaited by the event loop.

    What `loop.run_in_executor` on a one-thread ThreadPoolExecutor does, minus its per-job
    bookkeeping (a work item, a concurrent Future chained to an asyncio one, the pool's
    locks): about 15 µs of CPU less per job, a tenth of a one-message batch. The thread
    sleeps on its queue between jobs; the loop is woken by `call_soon_threadsafe` when a job
    is done. A job whose awaiting task was cancelled still runs to its end (a transaction is
    never cut short), as in an executor.
    """

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        # A daemon, so that a storage never closed cannot hold the interpreter at exit; a
        # transaction it cut short there is rolled back by SQLite (WAL), never half-written.
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    async def run(self, job: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((loop, future, job))
        return await future

    def stop(self) -> None:
        """End the thread once the jobs given before are done (no wait)."""
        self._jobs.put(None)

    def _serve(self) -> None:
        while (item := self._jobs.get()) is not None:
            loop, future, job = item
            try:
                result, error = job(), None
            except BaseException as exc:  # handed to the awaiting task, as an executor does
                result, error = None, exc
            try:
                loop.call_soon_threadsafe(_settle, future, result, error)
            except RuntimeError:  # the loop is closed: nobody awaits the answer any more
                pass


_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[], Any]]


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _attempt(db: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """`work(db)` between BEGIN IMMEDIATE and COMMIT; rolled back on any exception."""
    db.execute("BEGIN IMMEDIATE")
    try:
        result = work(db)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:  # not after a failed BEGIN, nor a COMMIT that ended it
            db.rollback()
        raise
    return result
