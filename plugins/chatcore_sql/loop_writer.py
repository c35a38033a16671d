"""The writer of message batches on PostgreSQL: asyncpg, on an event loop of its own.

A batch is two round trips. The first reads, without a transaction, everything the batch's
decisions need (the rooms' seqs and direct keys, the keys already used, the senders'
memberships, the reply targets, the blocks in the direct rooms), in one statement, so from one
snapshot; `messages.Batch` decides every draft from it, as on SQLite. The second calls
`chatcore_store_messages` (migration 0008), which is its own transaction: it locks the rooms,
checks that what the decisions rest on has not changed since the read, writes the messages and
the rooms' seqs, and commits. Only when something did change (another node wrote to one of the
rooms, a sender left, a block came) does the batch run again the locking way: BEGIN, lock the
rooms, read, write, COMMIT, so that every batch ends the way a locking writer would have
decided it. Acks still leave only after the commit.

What it replaced cost more in two ways:

- SQLAlchemy's execution machinery (compiled-statement lookup, expanding IN, result rows, the
  pool's checkout with its ping) cost a few milliseconds of CPU per batch, more than
  PostgreSQL did; and a batch was seven round trips, each a system call and a wake-up of
  PostgreSQL and of this thread. Here the statements are plain SQL on asyncpg connections the
  writer owns, prepared once per connection (asyncpg's statement cache), with lists passed as
  arrays (`= ANY($1)`, `unnest`), so every batch size is one prepared statement.
- On the server's event loop every round trip waits for the loop's next turn, and under load
  a turn takes milliseconds. Here batches run on a second event loop, in a thread, that does
  nothing else: each reply is read as soon as it arrives, and the server's loop is woken
  once, when the batch is durable. The server's loop never waits on the database: it awaits
  the batch's future.

There is one connection per write lane (`SqlStorage.write_lanes`), so lanes never wait for a
connection, and catch-up's reads have connections of their own, so a long catch-up never
holds up a commit. A connection found broken (the database restarted) is replaced before it
is used again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import asyncpg
from sqlalchemy.engine import URL

from chatcore.errors import ChatError, StartupError
from chatcore.failures import reason
from chatcore.loop_thread import LoopThread
from chatcore.models import Draft, Message, Stored
from chatcore_sql import messages
from chatcore_sql.engine import describe
from chatcore_sql.rows import message as message_row
from chatcore_sql.settings import SqlStorageSettings

log = logging.getLogger(__name__)

# The statements of a batch (those of `messages`, for asyncpg). Every list is an array
# parameter, so one prepared statement serves every batch size; empty arrays match nothing.

_MESSAGE_COLUMNS = (
    "room_id, sender_id, ref, kind, body, media_id, sticker_id, reply_to, ts, id, seq, "
    "edited_ts, deleted"
)
_MESSAGE_COLUMNS_OF_M = ", ".join(f"m.{name}" for name in _MESSAGE_COLUMNS.split(", "))
#: The tag of READ's rows of rooms: (tag, id, last_seq, direct_key).
_ROOM = "o"

#: `messages.READS` with every part, and the batch's rooms (tag `_ROOM`). Rows of (tag,
#: MESSAGE_NAMES...) by position; a room's row puts its id, last_seq and direct_key in the
#: places of room_id, seq and body. Keys and memberships are looked up by exact pairs (one
#: index probe each, where `room_id IN (...) AND ref IN (...)` probes every combination); a
#: member's row carries their mute (`muted_until_ts`) in the place of ts. The
#: blocks are those between the two members of each direct room of the batch, both ways, each
#: an exact lookup in the blocks' primary key (`messages._block_refusal` looks them up by pair).
READ = f"""
SELECT '{_ROOM}', id, NULL, NULL, NULL, direct_key, NULL, NULL, NULL, NULL, NULL, last_seq,
       NULL, NULL
FROM rooms WHERE id = ANY($1::varchar[])
UNION ALL
SELECT '{messages.TAG_STORED}', {_MESSAGE_COLUMNS_OF_M}
FROM unnest($2::varchar[], $3::varchar[]) AS k (room_id, ref)
JOIN messages AS m ON m.room_id = k.room_id AND m.ref = k.ref
UNION ALL
SELECT '{messages.TAG_MEMBER}', m.room_id, m.user_id, NULL, NULL, NULL, NULL, NULL, NULL,
       m.muted_until_ts, NULL, NULL, NULL, NULL
FROM unnest($4::varchar[], $5::varchar[]) AS s (room_id, user_id)
JOIN room_members AS m ON m.room_id = s.room_id AND m.user_id = s.user_id
UNION ALL
SELECT '{messages.TAG_REPLY}', room_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, id,
       NULL, NULL, NULL
FROM messages WHERE id = ANY($6::varchar[])
UNION ALL
SELECT '{messages.TAG_BLOCK}', NULL, b.blocker_id, b.blocked_id, NULL, NULL, NULL, NULL, NULL,
       NULL, NULL, NULL, NULL, NULL
FROM rooms
CROSS JOIN LATERAL (
    VALUES (split_part(rooms.direct_key, ':', 1), split_part(rooms.direct_key, ':', 2)),
           (split_part(rooms.direct_key, ':', 2), split_part(rooms.direct_key, ':', 1))
) AS pair (blocker_id, blocked_id)
JOIN blocks AS b ON b.blocker_id = pair.blocker_id AND b.blocked_id = pair.blocked_id
WHERE rooms.id = ANY($1::varchar[]) AND rooms.direct_key IS NOT NULL
"""
_ROOM_ID, _LAST_SEQ, _DIRECT_KEY = 1, 11, 5

#: The write and commit of a batch decided on READ (see migration 0008): true when written.
STORE = "SELECT chatcore_store_messages(" + ", ".join(f"${n}" for n in range(1, 18)) + ")"

#: Locks the rooms' rows in id order (the locking way; see `messages.LOCK_ROOMS`).
LOCK_ROOMS = """
SELECT id FROM rooms WHERE id = ANY($1::varchar[]) ORDER BY id FOR NO KEY UPDATE
"""

#: `messages.INSERT_MESSAGES` and `messages.UPDATE_ROOMS` in one statement (the locking way):
#: a data-modifying WITH runs whether or not the outer statement reads it.
WRITE = """
WITH inserted AS (
    INSERT INTO messages (id, room_id, seq, sender_id, ref, kind, body, media_id, sticker_id,
                          reply_to, ts, edited_ts, deleted, updated_ts)
    SELECT new.*, NULL, false, NULL
    FROM unnest($4::varchar[], $5::varchar[], $6::bigint[], $7::varchar[], $8::varchar[],
                $9::varchar[], $10::text[], $11::text[], $12::text[], $13::varchar[],
                $14::bigint[]) AS new
)
UPDATE rooms SET last_seq = changed.last_seq, last_ts = changed.last_ts
FROM unnest($1::varchar[], $2::bigint[], $3::bigint[]) AS changed (id, last_seq, last_ts)
WHERE rooms.id = changed.id
"""

#: `messages.AFTER`: catch-up's pages.
AFTER = f"""
SELECT {_MESSAGE_COLUMNS} FROM messages
WHERE room_id = $1 AND seq > $2 ORDER BY seq LIMIT $3
"""

#: The columns of a new message, in the order STORE and WRITE take their arrays.
_NEW_COLUMNS = (
    "id",
    "room_id",
    "seq",
    "sender_id",
    "ref",
    "kind",
    "body",
    "media_id",
    "sticker_id",
    "reply_to",
    "ts",
)

#: PostgreSQL errors besides integrity violations (class 23) after which a transaction is worth
#: one more try: a deadlock, a serialization failure.
_RETRY_SQLSTATES = {"40P01", "40001"}


#: The `application_name` of the writer's connections (what `pg_stat_activity` shows).
APPLICATION_NAME = "chatcore-sql-writer"


def connect_args(url: URL, settings: SqlStorageSettings) -> dict[str, Any]:
    """asyncpg.connect's arguments for `url`, as SQLAlchemy's asyncpg dialect makes them, with
    the schema first on the search path (as `engine.create_engine` sets it)."""
    _, kwargs = url.get_dialect()().create_connect_args(url)
    server_settings = {"application_name": APPLICATION_NAME}
    if settings.schema:
        server_settings["search_path"] = settings.schema
    return {**kwargs, "server_settings": server_settings}


class LoopWriter:
    """Stores message batches on PostgreSQL, on asyncpg connections of its own that live on
    an event loop in its own thread (see the module docstring)."""

    def __init__(
        self, url: URL, settings: SqlStorageSettings, connections: int, readers: int = 2
    ) -> None:
        args = connect_args(url, settings)
        self._url = url
        self._thread = LoopThread("chatcore-sql-writer")
        self._writers = _Connections(args, connections)
        self._readers = _Connections(args, readers)
        self._started = False

    async def start(self) -> None:
        """Open the connections; a database out of reach, a refused login or a missing
        database is a one-line StartupError, worded as `engine.reach` words it."""
        await self._thread.start()
        self._started = True
        try:
            await self._thread.call(self._open())
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            self._started = False
            await self._thread.call(self._abandon())
            await self._thread.close()
            raise StartupError(f"cannot connect to {describe(self._url)}: {reason(exc)}") from exc

    async def _open(self) -> None:
        await self._writers.open()
        await self._readers.open()

    async def store(self, drafts: Sequence[Draft]) -> list[Stored | ChatError]:
        """`Storage.store_messages` (see `messages.store_batch`) in one transaction on the
        writer's loop; once more if the database refused the first try in a way a second can
        get past."""
        return await self._thread.call(self._store(drafts))

    async def messages_after(self, room_id: str, after_seq: int, limit: int) -> list[Message]:
        """`Storage.messages_after` (see `messages.after`): catch-up reads pages of up to a
        thousand rows, and asyncpg's records become messages without SQLAlchemy's result
        rows in between. One statement: one snapshot."""
        return await self._thread.call(self._after(room_id, after_seq, limit))

    async def _after(self, room_id: str, after_seq: int, limit: int) -> list[Message]:
        async with self._readers.checkout() as slot:
            try:
                found = await slot.conn.fetch(AFTER, room_id, after_seq, limit)
            except Exception as exc:
                if not _broken(exc):
                    raise
                await slot.reconnect(exc)  # a read: nothing lost by asking again
                found = await slot.conn.fetch(AFTER, room_id, after_seq, limit)
        return [message_row(row) for row in found]

    async def _store(self, drafts: Sequence[Draft]) -> list[Stored | ChatError]:
        async with self._writers.checkout() as slot:
            try:
                batch = messages.Batch(drafts)
                try:
                    decided = await _decide(slot.conn, batch)
                except Exception as exc:
                    if not _broken(exc):
                        raise
                    # Broken on the read (a connection the database dropped while it was
                    # idle): nothing was written, so the batch starts again on a new one.
                    await slot.reconnect(exc)
                    batch = messages.Batch(drafts)
                    decided = await _decide(slot.conn, batch)
                if decided is None or await _write(slot.conn, batch, decided):
                    return batch.results()
            except asyncpg.PostgresError as exc:
                if not _retryable(exc):
                    raise
                log.warning("storing a batch the locking way after: %s", exc)
            try:
                return await _locking(slot.conn, drafts)
            except asyncpg.PostgresError as exc:
                if not _retryable(exc):
                    raise
                log.warning("retrying a write transaction after: %s", exc)
            return await _locking(slot.conn, drafts)

    async def close(self) -> None:
        """Close the connections on their loop (once the batches running are done), then
        stop the loop and its thread."""
        if self._started:
            self._started = False
            await self._thread.call(self._close())
        await self._thread.close()

    async def _close(self) -> None:
        await self._writers.close()
        await self._readers.close()

    async def _abandon(self) -> None:
        """After a failed start: close what did open, waiting for nothing else."""
        await self._writers.close(opened_only=True)
        await self._readers.close(opened_only=True)


def _retryable(exc: asyncpg.PostgresError) -> bool:
    """As `engine.retryable`: a constraint raced (a writer of another node stored the same
    key meanwhile), or PostgreSQL broke a deadlock or a serialization conflict."""
    sqlstate = exc.sqlstate or ""
    return sqlstate.startswith("23") or sqlstate in _RETRY_SQLSTATES


def _broken(exc: BaseException) -> bool:
    """True when `exc` says the connection is gone (the database restarted or dropped it, the
    socket closed): it must not be used again."""
    if isinstance(exc, asyncpg.PostgresError):
        # Class 08: connection exception; 57P01-57P03: the server shut down or dropped it.
        sqlstate = exc.sqlstate or ""
        return (
            isinstance(exc, asyncpg.PostgresConnectionError)
            or sqlstate.startswith("08")
            or sqlstate in {"57P01", "57P02", "57P03"}
        )
    return isinstance(exc, asyncpg.InterfaceError | asyncpg.InternalClientError | OSError)


class _Connections:
    """A fixed number of asyncpg connections on the writer's loop, checked out one per job:
    no reset query when one is given back and no ping when one is taken, only a look at
    whether it is still open (asyncpg notices a closed socket as soon as the loop reads it)."""

    def __init__(self, args: dict[str, Any], size: int) -> None:
        self._args = args
        self._size = size
        # Made on the writer's loop, in `open` (an asyncio.Queue belongs to its loop). None in
        # the queue: a slot whose connection broke, connected again on its next checkout.
        self._idle: asyncio.Queue[asyncpg.Connection | None] | None = None

    async def open(self) -> None:
        self._idle = asyncio.Queue()
        for _ in range(self._size):
            self._idle.put_nowait(await asyncpg.connect(**self._args))

    def checkout(self) -> _Checkout:
        assert self._idle is not None, "LoopWriter is not started"
        return _Checkout(self._idle, self._args)

    async def close(self, *, opened_only: bool = False) -> None:
        """Close every connection, waiting for those still checked out; `opened_only`: those
        that are idle now (what a failed `open` made)."""
        idle, self._idle = self._idle, None
        if idle is None:
            return
        for _ in range(idle.qsize() if opened_only else self._size):
            conn = await idle.get()  # waits for a job still running to give it back
            if conn is not None:
                await conn.close()


class _Checkout:
    """One connection for one job (`conn`): a closed one is replaced first, and one that broke
    (or was left in a transaction by a cancelled job) is not given back."""

    __slots__ = ("_args", "_idle", "conn")

    def __init__(
        self, idle: asyncio.Queue[asyncpg.Connection | None], args: dict[str, Any]
    ) -> None:
        self._idle = idle
        self._args = args
        self.conn: asyncpg.Connection = None  # type: ignore[assignment]  # set on entry

    async def __aenter__(self) -> _Checkout:
        conn = await self._idle.get()
        try:
            if conn is None or conn.is_closed():
                conn = await asyncpg.connect(**self._args)
        except BaseException:
            self._idle.put_nowait(None)  # the slot stays: the next checkout tries again
            raise
        self.conn = conn
        return self

    async def reconnect(self, why: BaseException) -> None:
        """Drop the connection, which broke (`why`), for a new one."""
        log.warning("a database connection broke, connecting again: %s", why)
        self.conn.terminate()
        self.conn = await asyncpg.connect(**self._args)

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        conn: asyncpg.Connection | None = self.conn
        assert conn is not None
        if conn.is_closed():
            conn = None
        elif conn.is_in_transaction() or (exc is not None and _broken(exc)):
            conn.terminate()  # never hand on a transaction left open, nor a broken connection
            conn = None
        self._idle.put_nowait(conn)


async def _decide(conn: asyncpg.Connection, batch: messages.Batch) -> _Decided | None:
    """READ, and the batch's decisions on it; None when nothing is to be written (every
    draft has its answer)."""
    if not batch.room_ids:
        return None
    keys, members, reply_ids = batch.wanted()
    found = await conn.fetch(
        READ,
        batch.room_ids,
        [room_id for room_id, _ in keys],
        [ref for _, ref in keys],
        [room_id for room_id, _ in members],
        [user_id for _, user_id in members],
        reply_ids,
    )
    rooms = [row for row in found if row[0] == _ROOM]
    if batch.locked((r[_ROOM_ID], r[_LAST_SEQ], r[_DIRECT_KEY]) for r in rooms) is None:
        return None
    new_rows, room_changes = batch.decide(row for row in found if row[0] != _ROOM)
    if not new_rows:
        return None
    return _Decided(new_rows, room_changes)


class _Decided:
    """A batch's rows to insert and rooms to update, as the arrays of STORE and WRITE."""

    __slots__ = ("last_ts", "messages", "room_ids", "seqs")

    def __init__(self, new_rows: list[dict[str, Any]], room_changes: list[dict[str, Any]]):
        self.messages = [[row[name] for row in new_rows] for name in _NEW_COLUMNS]
        self.room_ids = [change["b_id"] for change in room_changes]
        self.seqs = [change["b_seq"] for change in room_changes]
        self.last_ts = [change["b_ts"] for change in room_changes]


async def _write(conn: asyncpg.Connection, batch: messages.Batch, decided: _Decided) -> bool:
    """Write and commit what `_decide` decided, with `chatcore_store_messages` (see the module
    docstring); False when something changed since the read (nothing was written)."""
    blocks = sorted(batch.blocked)
    written = await conn.fetchval(
        STORE,
        decided.room_ids,
        [batch.read_seq(room_id) for room_id in decided.room_ids],
        decided.seqs,
        decided.last_ts,
        [blocker for blocker, _ in blocks],
        [blocked for _, blocked in blocks],
        *decided.messages,
    )
    return bool(written)


async def _locking(conn: asyncpg.Connection, drafts: Sequence[Draft]) -> list[Stored | ChatError]:
    """The batch the locking way: lock the rooms, read, write, in one transaction."""
    batch = messages.Batch(drafts)
    async with conn.transaction():
        await conn.execute(LOCK_ROOMS, batch.room_ids)
        decided = await _decide(conn, batch)
        if decided is not None:
            await conn.execute(
                WRITE, decided.room_ids, decided.seqs, decided.last_ts, *decided.messages
            )
    return batch.results()
