"""Messages on the device: storing batches (with their outbox acks and room cursors), editing,
reading pages, and full-text search. Each function runs inside the caller's transaction.

`add_messages` is the hot path (a catch-up stores up to a thousand messages at once): it asks
which keys are stored already with one query, inserts the rest with one `executemany`, reads
the touched rooms' cursors with one query and moves them all with one more `executemany`
(`_ADVANCE_ROOMS`): a handful of statements whatever the batch's size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from chatcore.client.models import Message, OutboxEntry
from chatcore_device_sqlite.rows import (
    MESSAGE_COLUMNS,
    MESSAGE_FIELDS,
    OUTBOX_COLUMNS,
    dumps,
    message_of,
    message_params,
    outbox_entry_of,
    tuples,
)
from chatcore_device_sqlite.search_query import fts_query

#: Past any seq: "below the newest" for `history`.
_NO_LIMIT = 2**63 - 1


@dataclass(frozen=True, slots=True)
class StoredBatch:
    """What `add_messages` did (`chatcore.client.interfaces.StoredBatch`)."""

    new: tuple[Message, ...]
    acked: tuple[tuple[OutboxEntry, Message], ...]


_INSERT = (
    f"INSERT OR IGNORE INTO messages ({MESSAGE_COLUMNS})"
    f" VALUES ({', '.join('?' for _ in MESSAGE_FIELDS)})"
)

# A room a message arrives for before the room itself: a placeholder `save_rooms` fills in.
_PLACEHOLDER_ROOMS = "INSERT OR IGNORE INTO rooms (id, kind, member_ids) VALUES (?, 'group', '[]')"

# The (room_id, seq) keys of a batch (a JSON array of [room_id, seq]) that are stored.
_STORED_KEYS = """
    SELECT m.room_id, m.seq FROM json_each(?) AS k
    JOIN messages AS m
      ON m.room_id = json_extract(k.value, '$[0]') AND m.seq = json_extract(k.value, '$[1]')
"""

# Move a room's cursor to the end of the run of stored seqs that continues from :start (a seq
# up to which every message is known to be stored): :start itself when :start + 1 is missing,
# else the first stored seq above it whose successor is missing. The index on (room_id, seq)
# is walked upwards and stops at the first gap, so the usual case (the batch reached :start,
# nothing stored beyond) costs two lookups.
_ADVANCE_ROOMS = """
    UPDATE rooms SET
        synced_seq = CASE
            WHEN NOT EXISTS (SELECT 1 FROM messages WHERE room_id = :room AND seq = :start + 1)
            THEN :start
            ELSE (
                SELECT m.seq FROM messages AS m
                WHERE m.room_id = :room AND m.seq > :start AND NOT EXISTS (
                    SELECT 1 FROM messages AS n WHERE n.room_id = :room AND n.seq = m.seq + 1
                )
                ORDER BY m.seq LIMIT 1
            )
        END,
        last_seq = max(last_seq, :last_seq),
        last_ts = max(last_ts, :last_ts)
    WHERE id = :room
"""


async def add_messages(
    conn: AsyncConnection, messages: Sequence[Message], own_user_id: str
) -> StoredBatch:
    """`DeviceStore.add_messages`, in the caller's write transaction."""
    if not messages:
        return StoredBatch((), ())
    room_ids = dict.fromkeys(m.room_id for m in messages)
    await conn.exec_driver_sql(_PLACEHOLDER_ROOMS, [(room_id,) for room_id in room_ids])

    keys = dumps([[m.room_id, m.seq] for m in messages])
    already = set(tuples(await conn.exec_driver_sql(_STORED_KEYS, (keys,))))
    new: list[Message] = []
    taken = set(already)
    for message in messages:
        key = (message.room_id, message.seq)
        if key not in taken:
            taken.add(key)  # the same message twice in one batch is stored once
            new.append(message)
    if new:
        inserted = await conn.exec_driver_sql(_INSERT, [message_params(m) for m in new])
        if inserted.rowcount != len(new):
            # Refused by the other unique key (an id already stored under another seq): keep
            # in `new` only what is now stored under its own (room_id, seq).
            new = await _stored_as_given(conn, new)

    # The batch's messages now stored under their key (new, or there before): what acks
    # outbox entries and what the cursors advance over.
    stored = already | {(m.room_id, m.seq) for m in new}
    kept = [m for m in messages if (m.room_id, m.seq) in stored]
    acked = await _ack_outbox(conn, kept, own_user_id)
    await _advance_rooms(conn, kept)
    return StoredBatch(tuple(new), tuple(acked))


async def _stored_as_given(conn: AsyncConnection, messages: list[Message]) -> list[Message]:
    ids = dumps([m.id for m in messages])
    found = await conn.exec_driver_sql(
        "SELECT id, room_id, seq FROM messages WHERE id IN (SELECT value FROM json_each(?))",
        (ids,),
    )
    where = {message_id: (room_id, seq) for message_id, room_id, seq in tuples(found)}
    return [m for m in messages if where.get(m.id) == (m.room_id, m.seq)]


async def _ack_outbox(
    conn: AsyncConnection, messages: Sequence[Message], own_user_id: str
) -> list[tuple[OutboxEntry, Message]]:
    """Remove the outbox entries the user's own messages of the batch acknowledge: the local
    echo with the same (room_id, ref) becomes the stored message."""
    own = [m for m in messages if m.sender_id == own_user_id]
    if not own:
        return []
    rows = await conn.exec_driver_sql(
        f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE ref IN (SELECT value FROM json_each(?))",
        (dumps([m.ref for m in own]),),
    )
    entries = {entry.ref: entry for entry in map(outbox_entry_of, rows)}
    acked: list[tuple[OutboxEntry, Message]] = []
    for message in own:
        entry = entries.get(message.ref)
        if entry is not None and entry.room_id == message.room_id:
            acked.append((entry, message))
            del entries[message.ref]  # acked once, even if the batch repeats the message
    if acked:
        await conn.exec_driver_sql(
            "DELETE FROM outbox WHERE ref = ?", [(entry.ref,) for entry, _ in acked]
        )
    return acked


async def _advance_rooms(conn: AsyncConnection, stored: Sequence[Message]) -> None:
    """Each room of `stored` (messages now stored): the cursor over the seqs stored without
    a gap, and the newest seq and activity time it has seen."""
    by_room: dict[str, list[Message]] = {}
    for message in stored:
        by_room.setdefault(message.room_id, []).append(message)
    if not by_room:
        return
    found = await conn.exec_driver_sql(
        "SELECT id, synced_seq FROM rooms WHERE id IN (SELECT value FROM json_each(?))",
        (dumps(list(by_room)),),
    )
    synced: dict[str, int] = dict(tuples(found))
    updates = []
    for room_id, batch in by_room.items():
        # Walk the batch's own seqs up from the cursor: a contiguous batch (a catch-up page)
        # leaves nothing for the query to walk.
        start = synced[room_id]
        for seq in sorted({m.seq for m in batch}):
            if seq == start + 1:
                start = seq
            elif seq > start + 1:
                break
        updates.append(
            {
                "room": room_id,
                "start": start,
                "last_seq": max(m.seq for m in batch),
                "last_ts": max(m.ts for m in batch),
            }
        )
    await conn.exec_driver_sql(_ADVANCE_ROOMS, updates)


async def skip_deleted(conn: AsyncConnection, room_id: str, first_seq: int) -> int:
    """`DeviceStore.skip_deleted`: the cursor jumps the seqs the server deleted, then walks
    on over what is stored (a live message above them may be there already)."""
    await conn.exec_driver_sql(_PLACEHOLDER_ROOMS, [(room_id,)])
    found = await conn.exec_driver_sql("SELECT synced_seq FROM rooms WHERE id = ?", (room_id,))
    start = max(int(found.scalar_one()), first_seq - 1)
    await conn.exec_driver_sql(
        _ADVANCE_ROOMS, {"room": room_id, "start": start, "last_seq": start, "last_ts": 0}
    )
    moved = await conn.exec_driver_sql("SELECT synced_seq FROM rooms WHERE id = ?", (room_id,))
    return int(moved.scalar_one())


async def update_message(conn: AsyncConnection, message: Message) -> bool:
    """Replace the stored message at (room_id, seq); the triggers re-index its body."""
    m = message
    result = await conn.exec_driver_sql(
        "UPDATE messages SET sender_id = ?, ref = ?, kind = ?, body = ?, media_id = ?,"
        " sticker_id = ?, reply_to = ?, ts = ?, id = ?, edited_ts = ?, deleted = ?"
        " WHERE room_id = ? AND seq = ?",
        (
            *(m.sender_id, m.ref, m.kind, m.body, m.media_id, m.sticker_id, m.reply_to, m.ts),
            *(m.id, m.edited_ts, int(m.deleted), m.room_id, m.seq),
        ),
    )
    return result.rowcount > 0


async def history(
    conn: AsyncConnection, room_id: str, before_seq: int | None, limit: int
) -> list[Message]:
    if limit <= 0:
        return []
    below = _NO_LIMIT if before_seq is None else min(before_seq, _NO_LIMIT)
    rows = await conn.exec_driver_sql(
        f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE room_id = ? AND seq < ?"
        " ORDER BY seq DESC LIMIT ?",
        (room_id, below, limit),
    )
    return [message_of(row) for row in rows]


async def get_message(conn: AsyncConnection, room_id: str, message_id: str) -> Message | None:
    rows = await conn.exec_driver_sql(
        f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ? AND room_id = ?",
        (message_id, room_id),
    )
    row = rows.first()
    return None if row is None else message_of(row)


async def search(
    conn: AsyncConnection, text: str, room_id: str | None, limit: int
) -> list[Message]:
    query = fts_query(text)
    if query is None or limit <= 0:
        return []
    columns = ", ".join(f"m.{name}" for name in MESSAGE_FIELDS)
    in_room = "" if room_id is None else " AND m.room_id = ?"
    params = (query,) if room_id is None else (query, room_id)
    rows = await conn.exec_driver_sql(
        f"SELECT {columns} FROM messages_fts JOIN messages AS m ON m.local_id = messages_fts.rowid"
        f" WHERE messages_fts MATCH ?{in_room}"
        " ORDER BY m.ts DESC, m.local_id DESC LIMIT ?",
        (*params, limit),
    )
    return [message_of(row) for row in rows]


async def cursors(conn: AsyncConnection) -> dict[str, int]:
    rows = await conn.exec_driver_sql("SELECT id, synced_seq FROM rooms")
    return dict(tuples(rows))
