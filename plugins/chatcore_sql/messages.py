"""Messages in SQL: the batch store (group commit) and the reads and changes of one message.

Functions on a connection the caller opened; `store_batch` and the changes need a write
transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from chatcore.errors import ChatError, ErrorCode, bad_request
from chatcore.models import Draft, Message, Stored
from chatcore_sql import rows
from chatcore_sql.rooms import lock_rooms
from chatcore_sql.tables import messages, room_members, rooms

REF_MAX = 128  # PROTOCOL.md: `ref` is 1 to 128 characters (and the column's size)


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


async def store_batch(conn: AsyncConnection, drafts: Sequence[Draft]) -> list[Stored | ChatError]:
    """`Storage.store_messages` inside the caller's write transaction.

    A fixed number of statements per batch whatever its size: lock the rooms, read the keys
    already used, the senders' memberships and the reply targets, then one multi-row INSERT
    and one UPDATE of the rooms. Every read comes after the lock, so a concurrent writer's
    committed message is seen (the key is answered, not inserted twice) and the checks hold
    until commit: nothing the constraints refuse is ever inserted.
    """
    results: list[Stored | ChatError | None] = [None] * len(drafts)
    by_room: dict[str, list[int]] = {}
    for i, draft in enumerate(drafts):
        results[i] = _precheck(draft)
        if results[i] is None:
            by_room.setdefault(draft.room_id, []).append(i)
    if not by_room:
        return _done(results)

    locked = await lock_rooms(conn, by_room)
    live = [drafts[i] for room_id in locked for i in by_room[room_id]]
    stored = await _stored_keys(conn, list(locked), {d.ref for d in live})
    members = await _memberships(conn, list(locked), {d.sender_id for d in live})
    reply_rooms = await _reply_rooms(conn, {d.reply_to for d in live if d.reply_to is not None})

    new_rows: list[dict[str, Any]] = []
    room_changes: list[dict[str, Any]] = []
    for room_id in sorted(by_room):
        room = locked.get(room_id)
        seq = room.last_seq if room is not None else 0
        last_ts = None
        for i in by_room[room_id]:
            draft = drafts[i]
            key = (draft.sender_id, room_id, draft.ref)
            if room is None:
                results[i] = not_a_room()
            elif key in stored:
                # Also the second draft of one key in this batch: it gets the first's message.
                results[i] = Stored(message=stored[key], created=False)
            elif (room_id, draft.sender_id) not in members:
                results[i] = not_a_room()
            elif draft.reply_to is not None and reply_rooms.get(draft.reply_to) != room_id:
                results[i] = bad_reply()
            else:
                seq += 1
                message = Message(id=rows.new_id(), seq=seq, **draft.model_dump())
                stored[key] = message
                new_rows.append({**message.model_dump(), "updated_ts": None})
                results[i] = Stored(message=message, created=True)
                last_ts = draft.ts
        if room is not None and last_ts is not None:
            room_changes.append({"b_id": room_id, "b_seq": seq, "b_ts": last_ts})

    if new_rows:
        await conn.execute(insert(messages), new_rows)
        await conn.execute(
            update(rooms)
            .where(rooms.c.id == bindparam("b_id"))
            .values(last_seq=bindparam("b_seq"), last_ts=bindparam("b_ts")),
            room_changes,
        )
    return _done(results)


def _done(results: list[Stored | ChatError | None]) -> list[Stored | ChatError]:
    done = [result for result in results if result is not None]
    assert len(done) == len(results), "every draft has an answer"
    return done


async def _stored_keys(
    conn: AsyncConnection, room_ids: list[str], refs: set[str]
) -> dict[Key, Message]:
    """Messages already stored under the batch's keys (a superset is read: same room and ref,
    any sender; the unique index (room_id, ref, sender_id) serves the lookup)."""
    if not room_ids or not refs:
        return {}
    stmt = select(*rows.MESSAGE_COLUMNS).where(
        messages.c.room_id.in_(room_ids), messages.c.ref.in_(sorted(refs))
    )
    found = [rows.message(row) for row in await conn.execute(stmt)]
    return {(m.sender_id, m.room_id, m.ref): m for m in found}


async def _memberships(
    conn: AsyncConnection, room_ids: list[str], user_ids: set[str]
) -> set[tuple[str, str]]:
    if not room_ids or not user_ids:
        return set()
    stmt = select(room_members.c.room_id, room_members.c.user_id).where(
        room_members.c.room_id.in_(room_ids), room_members.c.user_id.in_(sorted(user_ids))
    )
    return {(row.room_id, row.user_id) for row in await conn.execute(stmt)}


async def _reply_rooms(conn: AsyncConnection, message_ids: set[str]) -> dict[str, str]:
    """`{message_id: room_id}` of the replied-to messages that exist."""
    if not message_ids:
        return {}
    stmt = select(messages.c.id, messages.c.room_id).where(messages.c.id.in_(sorted(message_ids)))
    return {row.id: row.room_id for row in await conn.execute(stmt)}


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


async def after(conn: AsyncConnection, room_id: str, after_seq: int, limit: int) -> list[Message]:
    if limit <= 0:
        return []
    stmt = (
        select(*rows.MESSAGE_COLUMNS)
        .where(messages.c.room_id == room_id, messages.c.seq > rows.i64(after_seq))
        .order_by(messages.c.seq)
        .limit(rows.i64(limit))
    )
    return [rows.message(row) for row in await conn.execute(stmt)]


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
