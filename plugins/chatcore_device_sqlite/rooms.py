"""Rooms on the device: saving the server's view of them, forgetting those the user left,
read positions, and the summaries of the room list. Each function runs inside the caller's
transaction."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from chatcore.client.models import Room, RoomSummary
from chatcore_device_sqlite.rows import MESSAGE_FIELDS, ROOM_COLUMNS, dumps, summary_of

#: What a person reads on a send that was queued for a room the user is no longer in.
LEFT_ROOM_ERROR = "You are no longer a member of this room, so this message cannot be sent."

# Insert or update: the server's fields change, the device's own (read_seq, synced_seq) stay;
# last_seq and last_ts only move forward (a stale list never rewinds them).
_UPSERT = """
    INSERT INTO rooms (id, kind, name, member_ids, owner_id, last_seq, last_ts)
    VALUES (?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (id) DO UPDATE SET
        kind = excluded.kind,
        name = excluded.name,
        member_ids = excluded.member_ids,
        owner_id = excluded.owner_id,
        last_seq = max(rooms.last_seq, excluded.last_seq),
        last_ts = max(rooms.last_ts, excluded.last_ts)
"""

# One row per room: the room, its unread count (stored, not deleted, from someone other than
# the account's user, above the read position) and its newest stored message. Correlated
# subqueries on the (room_id, seq) index: one statement for the whole list, however long.
_SUMMARIES = f"""
    SELECT {ROOM_COLUMNS},
        (SELECT count(*) FROM messages AS u
         WHERE u.room_id = r.id AND u.seq > r.read_seq AND u.deleted = 0
           AND u.sender_id <> coalesce((SELECT user_id FROM account WHERE id = 1), '')
        ) AS unread,
        {", ".join(f"m.{name}" for name in MESSAGE_FIELDS)}
    FROM rooms AS r
    LEFT JOIN messages AS m ON m.local_id = (
        SELECT l.local_id FROM messages AS l WHERE l.room_id = r.id ORDER BY l.seq DESC LIMIT 1
    )
"""


async def save_rooms(conn: AsyncConnection, rooms: Sequence[Room], complete: bool) -> None:
    if rooms:
        await conn.exec_driver_sql(
            _UPSERT,
            [
                (
                    room.id,
                    room.kind,
                    room.name,
                    dumps(list(room.member_ids)),
                    room.owner_id,
                    room.last_seq,
                    # The server's newest message orders the room until one is stored here.
                    0 if room.last_message is None else room.last_message.ts,
                )
                for room in rooms
            ],
        )
    if complete:
        gone = await conn.exec_driver_sql(
            "SELECT id FROM rooms WHERE id NOT IN (SELECT value FROM json_each(?))",
            (dumps([room.id for room in rooms]),),
        )
        await forget_rooms(conn, list(gone.scalars()))


async def forget_rooms(conn: AsyncConnection, room_ids: Sequence[str]) -> None:
    """Remove rooms with their messages (which leave the search index by the triggers);
    their outbox entries become failed."""
    if not room_ids:
        return
    ids = (dumps(list(room_ids)),)
    await conn.exec_driver_sql(
        "UPDATE outbox SET state = 'failed', error_code = 'not_found', error_message = ?"
        " WHERE room_id IN (SELECT value FROM json_each(?))",
        (LEFT_ROOM_ERROR, *ids),
    )
    await conn.exec_driver_sql(
        "DELETE FROM messages WHERE room_id IN (SELECT value FROM json_each(?))", ids
    )
    await conn.exec_driver_sql(
        "DELETE FROM rooms WHERE id IN (SELECT value FROM json_each(?))", ids
    )


async def summaries(conn: AsyncConnection) -> list[RoomSummary]:
    """Every room, most recently active first (ties: by id, so the order is stable)."""
    rows = await conn.exec_driver_sql(f"{_SUMMARIES} ORDER BY r.last_ts DESC, r.id")
    return [summary_of(row) for row in rows]


async def summary(conn: AsyncConnection, room_id: str) -> RoomSummary | None:
    row = (await conn.exec_driver_sql(f"{_SUMMARIES} WHERE r.id = ?", (room_id,))).first()
    return None if row is None else summary_of(row)


async def set_read(conn: AsyncConnection, room_id: str, seq: int) -> int:
    """Move the read position forward; the position after (0 for a room not stored)."""
    found = await conn.exec_driver_sql(
        "UPDATE rooms SET read_seq = max(read_seq, ?) WHERE id = ? RETURNING read_seq",
        (min(seq, 2**63 - 1), room_id),
    )
    position = found.scalar()
    return 0 if position is None else int(position)
