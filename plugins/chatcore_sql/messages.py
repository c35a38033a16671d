"""Messages in SQL: the batch store (group commit) and the reads and changes of one message.

Functions on a connection the caller opened; `store_batch` and the changes need a write
transaction. `store_batch` is synchronous (see its docstring); the others are async.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import orjson
from sqlalchemy import (
    Connection,
    Select,
    and_,
    bindparam,
    func,
    insert,
    literal_column,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import BindParameter

from chatcore.errors import ChatError, ErrorCode, bad_request
from chatcore.models import Draft, Message, Stored
from chatcore.server.contacts import block_refusal
from chatcore.server.moderation import muted_refusal
from chatcore_sql import rows
from chatcore_sql.tables import blocks, messages, room_members, rooms

REF_MAX = 128  # docs/protocol.md: `ref` is 1 to 128 characters (and the column's size)


# Each answer gets its own exception object: the caller may raise them in different tasks.
def not_a_room() -> ChatError:
    return ChatError(ErrorCode.NOT_FOUND, "This room does not exist or is not visible to you.")


def bad_reply() -> ChatError:
    return bad_request("reply_to is not a message of this room.")


Key = tuple[str, str, str]  # (sender_id, room_id, ref): the idempotency key


def _precheck(draft: Draft) -> ChatError | None:
    """What is wrong with a draft before the database is asked (None: nothing).

    These values would otherwise fail inside the transaction (PostgreSQL refuses NUL in text,
    a ref longer than its column, a BIGINT overflow) and take the whole batch with them.
    """
    if "\x00" in draft.room_id or "\x00" in draft.sender_id:
        return not_a_room()  # no such room or user can exist
    if draft.reply_to is not None and "\x00" in draft.reply_to:
        return bad_reply()
    if not 1 <= len(draft.ref) <= REF_MAX:
        return bad_request(f"ref must be 1 to {REF_MAX} characters.")
    try:
        rows.check_text(draft.ref, draft.body, draft.media_id, draft.sticker_id)
    except ChatError as exc:
        return exc
    if rows.i64(draft.ts) != draft.ts:
        return bad_request("ts is out of range.")
    return None


class BatchStatements(Protocol):
    """The four statements of a batch (`store_batch`) on SQLite, on a write transaction the
    caller began: `SqlStatements` runs them on SQLAlchemy, `chatcore_sql.sqlite_writer` on a
    plain sqlite3 connection. Both run the statements below (LOCK_ROOMS, READS,
    INSERT_MESSAGES, UPDATE_ROOMS) with the same parameters, so they store the same values.
    PostgreSQL's writer has statements of its own (`chatcore_sql.loop_writer`).
    """

    def lock_rooms(self, room_ids: list[str]) -> Iterable[Sequence[Any]]:
        """Lock the rooms' rows (in id order): (id, last_seq, direct_key) of those that exist."""
        ...

    def read(self, params: dict[str, Any]) -> Iterable[Sequence[Any]]:
        """The tagged rows of `READS`, the one with the parts `params` has values for."""
        ...

    def insert_messages(self, new_rows: list[dict[str, Any]]) -> None:
        """Insert rows holding every column of `messages` (one executemany)."""
        ...

    def update_rooms(self, changes: list[dict[str, Any]]) -> None:
        """Update the rooms' `b_seq` and `b_ts` (one executemany of UPDATE_ROOMS)."""
        ...


class SqlStatements:
    """`BatchStatements` on a sync SQLAlchemy Connection (an in-memory SQLite database, through
    `AsyncConnection.run_sync`)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def lock_rooms(self, room_ids: list[str]) -> Iterable[Sequence[Any]]:
        return self._conn.execute(LOCK_ROOMS, {"room_ids": room_ids})

    def read(self, params: dict[str, Any]) -> Iterable[Sequence[Any]]:
        return self._conn.execute(READS["reply_ids" in params, "pairs" in params], params)

    def insert_messages(self, new_rows: list[dict[str, Any]]) -> None:
        self._conn.execute(INSERT_MESSAGES, new_rows)

    def update_rooms(self, changes: list[dict[str, Any]]) -> None:
        self._conn.execute(UPDATE_ROOMS, changes)


def store_batch(statements: BatchStatements, drafts: Sequence[Draft]) -> list[Stored | ChatError]:
    """`Storage.store_messages` inside the caller's write transaction.

    Synchronous: SQLite runs the whole batch in one hop to its writer thread (on the plain
    sqlite3 connection there), an in-memory SQLite database through
    `AsyncConnection.run_sync`. PostgreSQL runs the same steps (`Batch`) on asyncpg
    (`chatcore_sql.pg_writer`). Every decision is made in `Batch`, whatever runs the
    statements.

    Four statements per batch whatever its size: lock the rooms, read in one statement the
    keys already used, the senders' memberships, the reply targets and the blocks between the
    members of the batch's direct rooms, then one multi-row INSERT and one UPDATE of the
    rooms. The read comes after the lock, so a concurrent writer's committed message is seen
    (the key is answered, not inserted twice) and the checks hold until commit: nothing the
    constraints refuse is ever inserted.
    """
    batch = Batch(drafts)
    if not batch.room_ids:
        return batch.results()
    reads = batch.locked(statements.lock_rooms(batch.room_ids))
    if reads is not None:
        new_rows, room_changes = batch.decide(statements.read(reads))
        if new_rows:
            statements.insert_messages(new_rows)
            statements.update_rooms(room_changes)
    return batch.results()


class Batch:
    """The decisions of one batch, between its statements (see `store_batch`):

    batch = Batch(drafts)                        # prechecks; batch.room_ids to lock
    params = batch.locked(rows_of_the_lock)      # None: nothing to read or write
    new_rows, room_changes = batch.decide(rows_of_the_read)
    ... insert new_rows, update room_changes, commit ...
    batch.results()                              # an answer per draft, in order
    """

    __slots__ = ("_blocked", "_by_room", "_drafts", "_live", "_locked", "_results", "room_ids")

    def __init__(self, drafts: Sequence[Draft]) -> None:
        self._drafts = drafts
        self._results: list[Stored | ChatError | None] = [None] * len(drafts)
        self._by_room: dict[str, list[int]] = {}
        for i, draft in enumerate(drafts):
            self._results[i] = _precheck(draft)
            if self._results[i] is None:
                self._by_room.setdefault(draft.room_id, []).append(i)
        #: The rooms to lock, in id order (two transactions locking several rooms cannot
        #: deadlock); empty when no draft passed the prechecks.
        self.room_ids = sorted(self._by_room)
        self._locked: dict[str, tuple[int, str | None]] = {}
        self._live: list[Draft] = []
        self._blocked: set[tuple[str, str]] = set()

    def wanted(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[str]]:
        """What a read made before the rooms are known looks up, for every draft that passed
        the prechecks: the (room_id, ref) of the keys, the (room_id, sender_id) of the
        memberships (each without repeats), and the reply targets."""
        drafts = [self._drafts[i] for indexes in self._by_room.values() for i in indexes]
        return (
            list(dict.fromkeys((d.room_id, d.ref) for d in drafts)),
            list(dict.fromkeys((d.room_id, d.sender_id) for d in drafts)),
            sorted({d.reply_to for d in drafts if d.reply_to is not None}),
        )

    def locked(self, room_rows: Iterable[Sequence[Any]]) -> dict[str, Any] | None:
        """Take the rows (id, last_seq, direct_key) of the locked rooms that exist; return
        the parameters of the read (see `READS`), or None when no room exists (then every
        draft is answered already and nothing is read or written)."""
        self._locked = {row[0]: (row[1], row[2]) for row in room_rows}
        if not self._locked:
            for i, result in enumerate(self._results):
                if result is None:
                    self._results[i] = not_a_room()
            return None
        by_room, drafts = self._by_room, self._drafts
        self._live = live = [drafts[i] for room_id in self._locked for i in by_room[room_id]]
        params: dict[str, Any] = {
            "keys": _pairs(dict.fromkeys((d.room_id, d.ref) for d in live)),
            "members": _pairs(dict.fromkeys((d.room_id, d.sender_id) for d in live)),
        }
        reply_ids = {d.reply_to for d in live if d.reply_to is not None}
        if reply_ids:
            params["reply_ids"] = sorted(reply_ids)
        # Both directions of each direct room's pair: who blocks whom.
        pairs = [(a, b) for _, key in self._locked.values() if key for a, b in _both_ways(key)]
        if pairs:
            params["pairs"] = _pairs(pairs)
        return params

    def decide(
        self, read_rows: Iterable[Sequence[Any]]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Answer every draft from the read's rows; return the rows to insert (every column
        of `messages`) and the rooms' changes (`b_id`, `b_seq`, `b_ts`: see UPDATE_ROOMS)."""
        found = _found(read_rows)
        self._blocked = found.blocked
        stored, results, drafts = found.stored, self._results, self._drafts
        new_rows: list[dict[str, Any]] = []
        room_changes: list[dict[str, Any]] = []
        ids = iter(rows.new_ids(len(self._live)))
        for room_id in self.room_ids:
            room = self._locked.get(room_id)
            seq, direct_key = room if room is not None else (0, None)
            last_ts = None
            for i in self._by_room[room_id]:
                draft = drafts[i]
                key = (draft.sender_id, room_id, draft.ref)
                if room is None:
                    results[i] = not_a_room()
                elif key in stored:
                    # Also the second draft of one key in this batch: it gets the first's
                    # message. Before the block check: a retry gets its original even across
                    # a new block.
                    results[i] = Stored(message=stored[key], created=False)
                elif (room_id, draft.sender_id) not in found.members:
                    results[i] = not_a_room()
                elif (muted := found.members[room_id, draft.sender_id]) and muted > draft.ts:
                    # Muted (docs/protocol.md, Room administration): refused like a block.
                    results[i] = muted_refusal(muted)
                elif direct_key and (refusal := _block_refusal(direct_key, draft, found)):
                    results[i] = refusal
                elif (
                    draft.reply_to is not None and found.reply_rooms.get(draft.reply_to) != room_id
                ):
                    results[i] = bad_reply()
                else:
                    seq += 1
                    # The draft's values were validated when it was made: no second validation.
                    values = {**draft.__dict__, "id": next(ids), "seq": seq}
                    values.update(edited_ts=None, deleted=False)
                    message = Message.trusted(values)
                    stored[key] = message
                    new_rows.append({**values, "updated_ts": None})
                    results[i] = Stored(message=message, created=True)
                    last_ts = draft.ts
            if room is not None and last_ts is not None:
                room_changes.append({"b_id": room_id, "b_seq": seq, "b_ts": last_ts})
        return new_rows, room_changes

    def read_seq(self, room_id: str) -> int:
        """The room's `last_seq` as the read found it (the room is one `locked` got)."""
        return self._locked[room_id][0]

    @property
    def blocked(self) -> set[tuple[str, str]]:
        """(blocker_id, blocked_id) of the blocks `decide` was given."""
        return self._blocked

    def results(self) -> list[Stored | ChatError]:
        """An answer per draft, in the drafts' order (once `decide` ran, or `locked` gave
        None, or there were no rooms to lock)."""
        done = [result for result in self._results if result is not None]
        assert len(done) == len(self._results), "every draft has an answer"
        return done


# The statements of a batch, built once: building and hashing a new statement per batch cost
# more than running it. `chatcore_sql.sqlite_writer` compiles them once more for sqlite3.

#: Locks the rooms' rows `{"room_ids": sorted ids}` in id order (so two transactions locking
#: several rooms cannot deadlock; SQLite's BEGIN IMMEDIATE locked the database already).
LOCK_ROOMS = (
    select(rooms.c.id, rooms.c.last_seq, rooms.c.direct_key)
    .where(rooms.c.id.in_(bindparam("room_ids", expanding=True)))
    .order_by(rooms.c.id)
    .with_for_update(key_share=True)
)

#: Every column of `messages` (`store_batch` gives them all: the same row on every backend).
INSERT_MESSAGES = insert(messages)
assert {c.name for c in messages.columns} == {*rows.MESSAGE_NAMES, "updated_ts"}

UPDATE_ROOMS = (
    update(rooms)
    .where(rooms.c.id == bindparam("b_id"))
    .values(last_seq=bindparam("b_seq"), last_ts=bindparam("b_ts"))
)


def _pair(direct_key: str) -> list[str]:
    """The two member ids of a direct room, from its key (`rooms.direct_key`)."""
    return direct_key.split(":")


class _Found:
    """What `_read` found for a batch."""

    __slots__ = ("blocked", "members", "reply_rooms", "stored")

    def __init__(self) -> None:
        #: Messages already stored under the batch's keys: a superset is read (same room and
        #: ref, any sender; the unique index (room_id, ref, sender_id) serves the lookup).
        self.stored: dict[Key, Message] = {}
        #: `{(room_id, user_id): muted_until_ts}` of the senders who are members (the time
        #: until which a member is muted, or None).
        self.members: dict[tuple[str, str], int | None] = {}
        #: `{message_id: room_id}` of the replied-to messages that exist.
        self.reply_rooms: dict[str, str] = {}
        #: (blocker_id, blocked_id) among the members of the direct rooms (a superset of each
        #: pair's blocks: `_block_refusal` picks the pair's).
        self.blocked: set[tuple[str, str]] = set()


# The one read of a batch is a UNION ALL of up to four SELECTs, each served by an index, in
# the shape of MESSAGE_COLUMNS with a leading tag naming the part; the parts that need no
# message columns fill them with NULL (the database gives them the first part's types).
# Rows are read by position (a sqlite3 row is a plain tuple): the tag, then MESSAGE_NAMES.
TAG_STORED, TAG_MEMBER, TAG_REPLY, TAG_BLOCK = "k", "m", "r", "b"
_ROOM_ID, _SENDER_ID, _REF, _ID, _TS = (
    1 + rows.MESSAGE_NAMES.index(n) for n in ("room_id", "sender_id", "ref", "id", "ts")
)


def _part(tag: str, **columns: Any) -> Select[Any]:
    """One part of the read: `columns` by MESSAGE_COLUMNS name, NULL for the others."""
    return select(
        literal_column(f"'{tag}'").label("tag"),
        *(columns.get(name, null()).label(name) for name in rows.MESSAGE_NAMES),
    )


def _expanding(name: str) -> BindParameter[Any]:
    return bindparam(name, expanding=True)


def _pairs(pairs: Iterable[tuple[str, str]]) -> str:
    """Pairs of ids as the JSON text `_joined` reads (`[["a", "b"], ...]`)."""
    return orjson.dumps(list(pairs)).decode()


def _both_ways(direct_key: str) -> list[tuple[str, str]]:
    first, second = _pair(direct_key)
    return [(first, second), (second, first)]


def _joined(name: str, first: Any, second: Any) -> tuple[Any, Any]:
    """The rows of `json_each(:name)` (pairs, see `_pairs`) and the condition that joins a
    table on them by exact pairs: one index probe per pair, where `a IN (...) AND b IN (...)`
    probes every combination (a batch over 20 direct rooms: 20 x 40 probes for the members,
    where 40 do). SQLite plans the JSON rows as the outer loop and searches the index for each."""
    pairs = func.json_each(bindparam(name)).table_valued("value").alias(name)
    return pairs, and_(
        first == func.json_extract(pairs.c.value, literal_column("'$[0]'")),
        second == func.json_extract(pairs.c.value, literal_column("'$[1]'")),
    )


_KEYS, _ON_KEYS = _joined("keys", messages.c.room_id, messages.c.ref)
_MEMBERS, _ON_MEMBERS = _joined("members", room_members.c.room_id, room_members.c.user_id)
_PAIRS, _ON_PAIRS = _joined("pairs", blocks.c.blocker_id, blocks.c.blocked_id)

# The read is SQLite's (PostgreSQL's writer has its own, `chatcore_sql.loop_writer.READ`).
_READ_PARTS = {
    TAG_STORED: select(literal_column(f"'{TAG_STORED}'").label("tag"), *rows.MESSAGE_COLUMNS)
    .select_from(_KEYS)
    .join(messages, _ON_KEYS),
    # A member's mute rides in the place of `ts`.
    TAG_MEMBER: _part(
        TAG_MEMBER,
        room_id=room_members.c.room_id,
        sender_id=room_members.c.user_id,
        ts=room_members.c.muted_until_ts,
    )
    .select_from(_MEMBERS)
    .join(room_members, _ON_MEMBERS),
    TAG_REPLY: _part(TAG_REPLY, id=messages.c.id, room_id=messages.c.room_id).where(
        messages.c.id.in_(_expanding("reply_ids"))
    ),
    TAG_BLOCK: _part(TAG_BLOCK, sender_id=blocks.c.blocker_id, ref=blocks.c.blocked_id)
    .select_from(_PAIRS)
    .join(blocks, _ON_PAIRS),
}
#: The read with and without its optional parts: {(with replies, with blocks): statement}.
READS = {
    (replies, pairs): union_all(
        _READ_PARTS[TAG_STORED],
        _READ_PARTS[TAG_MEMBER],
        *([_READ_PARTS[TAG_REPLY]] if replies else []),
        *([_READ_PARTS[TAG_BLOCK]] if pairs else []),
    )
    for replies in (False, True)
    for pairs in (False, True)
}


def _found(read_rows: Iterable[Sequence[Any]]) -> _Found:
    """What the rows of `READS` say (rows by position: the tag, then MESSAGE_NAMES)."""
    found = _Found()
    for row in read_rows:
        tag = row[0]
        if tag == TAG_STORED:
            message = rows.message(row[1:])
            found.stored[(message.sender_id, message.room_id, message.ref)] = message
        elif tag == TAG_MEMBER:
            found.members[row[_ROOM_ID], row[_SENDER_ID]] = row[_TS]
        elif tag == TAG_REPLY:
            found.reply_rooms[row[_ID]] = row[_ROOM_ID]
        else:
            found.blocked.add((row[_SENDER_ID], row[_REF]))
    return found


def _block_refusal(direct_key: str, draft: Draft, found: _Found) -> ChatError | None:
    """The refusal of a draft into a direct room across a block, worded as
    `chatcore.server.contacts`
    words it for the sender's side of the block (the blocked user never reads of a block)."""
    first, second = _pair(direct_key)
    peer = second if draft.sender_id == first else first
    blocked = found.blocked
    return block_refusal((draft.sender_id, peer) in blocked, (peer, draft.sender_id) in blocked)


# --- one message --------------------------------------------------------------------------------


async def get(conn: AsyncConnection, room_id: str, message_id: str) -> Message | None:
    stmt = select(*rows.MESSAGE_COLUMNS).where(
        messages.c.id == message_id, messages.c.room_id == room_id
    )
    row = (await conn.execute(stmt)).first()
    return rows.message(row) if row is not None else None


async def find_by_ref(
    conn: AsyncConnection, sender_id: str, room_id: str, ref: str
) -> Message | None:
    stmt = select(*rows.MESSAGE_COLUMNS).where(
        messages.c.room_id == room_id, messages.c.ref == ref, messages.c.sender_id == sender_id
    )
    row = (await conn.execute(stmt)).first()
    return rows.message(row) if row is not None else None


# Catch-up's read, built once (see `LOCK_ROOMS` for why).
AFTER = (
    select(*rows.MESSAGE_COLUMNS)
    .where(messages.c.room_id == bindparam("room_id"), messages.c.seq > bindparam("after_seq"))
    .order_by(messages.c.seq)
    .limit(bindparam("limit"))
)


async def after(conn: AsyncConnection, room_id: str, after_seq: int, limit: int) -> list[Message]:
    if limit <= 0:
        return []
    params = {"room_id": room_id, "after_seq": rows.i64(after_seq), "limit": rows.i64(limit)}
    return [rows.message(row) for row in await conn.execute(AFTER, params)]


async def before(
    conn: AsyncConnection, room_id: str, before_seq: int | None, limit: int
) -> list[Message]:
    if limit <= 0:
        return []
    stmt = select(*rows.MESSAGE_COLUMNS).where(messages.c.room_id == room_id)
    if before_seq is not None:
        stmt = stmt.where(messages.c.seq < rows.i64(before_seq))
    stmt = stmt.order_by(messages.c.seq.desc()).limit(rows.i64(limit))
    return [rows.message(row) for row in await conn.execute(stmt)]


async def updated_since(
    conn: AsyncConnection, room_id: str, since_ts: int, max_seq: int
) -> list[Message]:
    stmt = (
        select(*rows.MESSAGE_COLUMNS)
        .where(
            messages.c.room_id == room_id,
            messages.c.updated_ts > rows.i64(since_ts),
            messages.c.seq <= rows.i64(max_seq),
        )
        .order_by(messages.c.seq)
    )
    return [rows.message(row) for row in await conn.execute(stmt)]


async def edit(
    conn: AsyncConnection, room_id: str, message_id: str, body: str, now_ts: int
) -> Message | None:
    rows.check_text(body)
    changed = await conn.execute(
        update(messages)
        .where(
            messages.c.id == message_id,
            messages.c.room_id == room_id,
            messages.c.deleted.is_(False),
        )
        .values(body=body, edited_ts=now_ts, updated_ts=now_ts)
    )
    return await get(conn, room_id, message_id) if changed.rowcount == 1 else None


async def delete(
    conn: AsyncConnection, room_id: str, message_id: str, now_ts: int
) -> Message | None:
    # Deleting twice changes nothing (the first deletion's time stays the update time).
    await conn.execute(
        update(messages)
        .where(
            messages.c.id == message_id,
            messages.c.room_id == room_id,
            messages.c.deleted.is_(False),
        )
        .values(deleted=True, body="", media_id=None, sticker_id=None, updated_ts=now_ts)
    )
    return await get(conn, room_id, message_id)
