"""Rooms, membership and read receipts in SQL: functions on a connection the caller opened.

The caller (`SqlStorage`) chooses the transaction: writes run in a write transaction, where
`lock_rooms` takes the room rows' locks first. PostgreSQL's `FOR NO KEY UPDATE` is the lock an
UPDATE of non-key columns (last_seq, last_ts, owner_id) takes anyway: it serializes the writers
of one room but, unlike `FOR UPDATE`, does not block the foreign-key checks of rows that point
at the room. SQLite ignores the clause: its single writer (`BEGIN IMMEDIATE`) already serializes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from chatcore.errors import bad_request, not_found
from chatcore.models import Room, RoomView
from chatcore_sql import rows
from chatcore_sql.tables import messages, room_members, rooms, users

#: The order of Room.member_ids, and of succession when a group's owner leaves.
MEMBER_ORDER = (room_members.c.joined_ts, room_members.c.user_id)


def direct_key(user_a: str, user_b: str) -> str:
    """The key of a pair's direct room: the same whichever of the two asks."""
    return ":".join(sorted((user_a, user_b)))


def dialect_insert(conn: AsyncConnection, table: Any) -> Any:
    """An INSERT that knows `ON CONFLICT` on both databases."""
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


#: Locks the rooms' rows `{"room_ids": sorted ids}` in id order (so two transactions locking
#: several rooms cannot deadlock): ROOM_COLUMNS and direct_key of those that exist.
LOCK_ROOMS = (
    select(*rows.ROOM_COLUMNS, rooms.c.direct_key)
    .where(rooms.c.id.in_(bindparam("room_ids", expanding=True)))
    .order_by(rooms.c.id)
    .with_for_update(key_share=True)
)


async def lock_rooms(conn: AsyncConnection, room_ids: Iterable[str]) -> dict[str, Any]:
    """Lock the rooms' rows (see `LOCK_ROOMS`); `{room_id: row}` of those that exist."""
    found = await conn.execute(LOCK_ROOMS, {"room_ids": sorted(set(room_ids))})
    return {row.id: row for row in found}


async def require_users(conn: AsyncConnection, user_ids: Sequence[str]) -> None:
    """Raise bad_request naming the ids in `user_ids` that are no users."""
    found = set(
        (
            await conn.execute(
                # An erased user (a tombstone) is no user to add (docs/protocol.md, Erasure).
                select(users.c.id).where(users.c.id.in_(user_ids), users.c.erased_ts.is_(None))
            )
        ).scalars()
    )
    missing = [user_id for user_id in user_ids if user_id not in found]
    if missing:
        shown = ", ".join(user_id[:64] for user_id in missing[:3])
        more = f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""
        raise bad_request(f"Unknown user: {shown}{more}.")


async def get_room(conn: AsyncConnection, room_id: str) -> Room | None:
    """The room with its members, in one statement (one snapshot)."""
    stmt = (
        select(*rows.ROOM_COLUMNS, room_members.c.user_id, room_members.c.role)
        .select_from(rooms.outerjoin(room_members, room_members.c.room_id == rooms.c.id))
        .where(rooms.c.id == room_id)
        .order_by(*MEMBER_ORDER)
    )
    found = (await conn.execute(stmt)).all()
    if not found:
        return None
    return rows.room(
        found[0],
        [row.user_id for row in found if row.user_id is not None],
        [row.user_id for row in found if row.role == "admin"],
    )


async def find_direct(conn: AsyncConnection, user_a: str, user_b: str) -> Room | None:
    stmt = select(rooms.c.id).where(rooms.c.direct_key == direct_key(user_a, user_b))
    room_id = (await conn.execute(stmt)).scalar()
    return await get_room(conn, room_id) if room_id is not None else None


async def create_direct(
    conn: AsyncConnection, user_a: str, user_b: str, now_ts: int
) -> tuple[Room, bool]:
    """Create the pair's direct room unless it exists (in a write transaction)."""
    if user_a == user_b:
        raise bad_request("A direct room needs two different users.")
    await require_users(conn, [user_a, user_b])
    room_id = rows.new_id()
    stmt = (
        dialect_insert(conn, rooms)
        .values(
            id=room_id,
            kind="direct",
            direct_key=direct_key(user_a, user_b),
            last_seq=0,
            created_ts=now_ts,
            last_ts=now_ts,
        )
        # Another node may have created it since our read: the unique key decides, and on
        # PostgreSQL the insert waits for that node's transaction and then does nothing.
        .on_conflict_do_nothing(index_elements=[rooms.c.direct_key])
    )
    if (await conn.execute(stmt)).rowcount != 1:
        existing = await find_direct(conn, user_a, user_b)
        if existing is None:  # pragma: no cover - the conflicting row is committed by now
            raise RuntimeError("direct room conflict without a room")
        return existing, False
    await conn.execute(
        insert(room_members),
        [
            {"room_id": room_id, "user_id": user_id, "joined_ts": now_ts, "read_seq": 0}
            for user_id in (user_a, user_b)
        ],
    )
    room = await get_room(conn, room_id)
    assert room is not None
    return room, True


async def create_group(
    conn: AsyncConnection, owner_id: str, name: str, member_ids: Sequence[str], now_ts: int
) -> Room:
    rows.check_text(name)
    everyone = list(dict.fromkeys([owner_id, *member_ids]))
    await require_users(conn, everyone)
    room_id = rows.new_id()
    await conn.execute(
        insert(rooms).values(
            id=room_id,
            kind="group",
            name=name,
            owner_id=owner_id,
            last_seq=0,
            created_ts=now_ts,
            last_ts=now_ts,
        )
    )
    await conn.execute(
        insert(room_members),
        [
            {
                "room_id": room_id,
                "user_id": user_id,
                "joined_ts": now_ts,
                "read_seq": 0,
                "role": "owner" if user_id == owner_id else "member",
            }
            for user_id in everyone
        ],
    )
    room = await get_room(conn, room_id)
    assert room is not None
    return room


async def add_member(conn: AsyncConnection, room_id: str, user_id: str, now_ts: int) -> Room | None:
    locked = (await lock_rooms(conn, [room_id])).get(room_id)
    if locked is None:
        raise not_found("This room")
    await require_users(conn, [user_id])
    # A new member has missed nothing: the history is there to read, but none of it is unread.
    stmt = (
        dialect_insert(conn, room_members)
        .values(room_id=room_id, user_id=user_id, joined_ts=now_ts, read_seq=locked.last_seq)
        .on_conflict_do_nothing(index_elements=[room_members.c.room_id, room_members.c.user_id])
    )
    if (await conn.execute(stmt)).rowcount != 1:
        return None
    return await get_room(conn, room_id)


async def remove_member(conn: AsyncConnection, room_id: str, user_id: str) -> Room | None:
    locked = (await lock_rooms(conn, [room_id])).get(room_id)
    if locked is None:
        return None
    removed = await conn.execute(
        delete(room_members).where(
            room_members.c.room_id == room_id, room_members.c.user_id == user_id
        )
    )
    if removed.rowcount != 1:
        return None
    if locked.kind == "group" and locked.owner_id == user_id:
        await pass_ownership(conn, room_id)
    return await get_room(conn, room_id)


async def pass_ownership(conn: AsyncConnection, room_id: str) -> None:
    """After the owner left a group room (its row locked): the admin who joined first, else
    the member who joined first, becomes the owner (none when the room is empty)."""
    heir = (
        await conn.execute(
            select(room_members.c.user_id)
            .where(room_members.c.room_id == room_id)
            .order_by((room_members.c.role == "admin").desc(), *MEMBER_ORDER)
            .limit(1)
        )
    ).scalar()
    await conn.execute(update(rooms).where(rooms.c.id == room_id).values(owner_id=heir))
    if heir is not None:
        await conn.execute(
            update(room_members)
            .where(room_members.c.room_id == room_id, room_members.c.user_id == heir)
            .values(role="owner")
        )


async def views(conn: AsyncConnection, user_id: str, room_id: str | None = None) -> list[RoomView]:
    """The user's rooms (or the one room) as their list shows them, most recently active
    first: two statements, whatever the number of rooms (run them in one snapshot)."""
    me = room_members.alias("me")
    last = messages.alias("last")
    # Index range scans of (room_id, seq): from the member's read seq up to the end.
    unread = (
        select(func.count())
        .select_from(messages)
        .where(
            messages.c.room_id == me.c.room_id,
            messages.c.seq > me.c.read_seq,
            messages.c.sender_id != user_id,
            messages.c.deleted.is_(False),
        )
        .scalar_subquery()
    )
    stmt = (
        select(
            *rows.ROOM_COLUMNS,
            me.c.read_seq,
            unread.label("unread"),
            *(last.c[column.name].label(f"m_{column.name}") for column in rows.MESSAGE_COLUMNS),
        )
        .select_from(
            me.join(rooms, rooms.c.id == me.c.room_id).outerjoin(
                last, and_(last.c.room_id == rooms.c.id, last.c.seq == rooms.c.last_seq)
            )
        )
        .where(me.c.user_id == user_id)
        .order_by(rooms.c.last_ts.desc(), rooms.c.id)
    )
    if room_id is not None:
        stmt = stmt.where(me.c.room_id == room_id)
    found = (await conn.execute(stmt)).all()
    if not found:
        return []
    in_scope = (
        room_members.c.room_id == room_id
        if room_id is not None
        else room_members.c.room_id.in_(select(me.c.room_id).where(me.c.user_id == user_id))
    )
    member_rows = (
        await conn.execute(
            select(room_members.c.room_id, room_members.c.user_id, room_members.c.role)
            .where(in_scope)
            .order_by(room_members.c.room_id, *MEMBER_ORDER)
        )
    ).all()
    members = rows.group_members(member_rows)
    admins = rows.group_admins(member_rows)
    return [
        RoomView(
            room=rows.room(row, members.get(row.id, ()), admins.get(row.id, ())),
            last_message=rows.message(row, "m_") if row.m_id is not None else None,
            unread=row.unread,
            read_seq=row.read_seq,
        )
        for row in found
    ]


# A session's start reads these two (its rooms' seqs, and its presence audience): built once,
# since building and hashing a statement per call cost more than running it.
ROOM_SEQS = (
    select(rooms.c.id, rooms.c.last_seq)
    .join(room_members, room_members.c.room_id == rooms.c.id)
    .where(room_members.c.user_id == bindparam("user_id"))
)


async def room_seqs(conn: AsyncConnection, user_id: str) -> dict[str, int]:
    return {row.id: row.last_seq for row in await conn.execute(ROOM_SEQS, {"user_id": user_id})}


def _direct_peers() -> Any:
    me, other = room_members.alias("me"), room_members.alias("other")
    return (
        select(other.c.user_id)
        .distinct()
        .select_from(
            me.join(rooms, and_(rooms.c.id == me.c.room_id, rooms.c.kind == "direct")).join(
                other, and_(other.c.room_id == me.c.room_id, other.c.user_id != me.c.user_id)
            )
        )
        .where(me.c.user_id == bindparam("user_id"))
        .order_by(other.c.user_id)
    )


DIRECT_PEERS = _direct_peers()


async def direct_peers(conn: AsyncConnection, user_id: str) -> list[str]:
    return list((await conn.execute(DIRECT_PEERS, {"user_id": user_id})).scalars())


async def mark_read(conn: AsyncConnection, room_id: str, user_id: str, seq: int) -> int | None:
    last_seq = (await conn.execute(select(rooms.c.last_seq).where(rooms.c.id == room_id))).scalar()
    if last_seq is None:
        return None
    new = min(rows.i64(seq), last_seq)
    # The condition is the decision: of two concurrent receipts the lower one matches nothing
    # (PostgreSQL re-checks it after waiting on the row lock), so read_seq never moves back.
    moved = await conn.execute(
        update(room_members)
        .where(
            room_members.c.room_id == room_id,
            room_members.c.user_id == user_id,
            room_members.c.read_seq < new,
        )
        .values(read_seq=new)
    )
    return new if moved.rowcount == 1 else None
