"""Rows to the client's models and back: the column lists every query module shares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import orjson
from sqlalchemy import Result

from chatcore.client.models import Message, OutboxEntry, Room, RoomSummary

#: Message's field names in their declared order, which is the order of MESSAGE_COLUMNS: a
#: row zips into the values `Message.trusted` takes.
MESSAGE_FIELDS = tuple(Message.model_fields)
MESSAGE_COLUMNS = ", ".join(MESSAGE_FIELDS)
_DELETED = MESSAGE_FIELDS.index("deleted")


def message_of(row: Sequence[Any]) -> Message:
    """A Message from a row of MESSAGE_COLUMNS (the store wrote it: no need to validate)."""
    values = dict(zip(MESSAGE_FIELDS, row, strict=True))
    values["deleted"] = bool(row[_DELETED])  # SQLite keeps 0/1; Message declares a bool
    return Message.trusted(values)


def message_params(message: Message) -> tuple[Any, ...]:
    """A message's values in the order of MESSAGE_COLUMNS."""
    return (
        message.room_id,
        message.sender_id,
        message.ref,
        message.kind,
        message.body,
        message.media_id,
        message.sticker_id,
        message.reply_to,
        message.ts,
        message.id,
        message.seq,
        message.edited_ts,
        int(message.deleted),
    )


#: OutboxEntry's field names, which are the outbox table's columns.
OUTBOX_FIELDS = tuple(OutboxEntry.model_fields)
OUTBOX_COLUMNS = ", ".join(OUTBOX_FIELDS)


def outbox_entry_of(row: Sequence[Any]) -> OutboxEntry:
    # Validated (not trusted): `transmitted` comes back as 0/1, and outboxes are small.
    return OutboxEntry.model_validate(dict(zip(OUTBOX_FIELDS, row, strict=True)))


def outbox_params(entry: OutboxEntry) -> tuple[Any, ...]:
    """An entry's values in the order of OUTBOX_COLUMNS."""
    return tuple(getattr(entry, name) for name in OUTBOX_FIELDS)


#: The columns of a room summary: the room's own, then its unread count, then its newest
#: stored message (all NULL when it has none).
ROOM_COLUMNS = (
    "r.id, r.kind, r.name, r.member_ids, r.owner_id, r.last_seq, r.read_seq, r.synced_seq,"
    " r.last_ts"
)
_ROOM_WIDTH = 9


def summary_of(row: Sequence[Any]) -> RoomSummary:
    """A RoomSummary from a row of ROOM_COLUMNS, unread, then MESSAGE_COLUMNS."""
    room_id, kind, name, member_ids, owner_id, last_seq, read_seq, synced_seq, last_ts = row[
        :_ROOM_WIDTH
    ]
    room = Room(
        id=room_id,
        kind=kind,
        name=name,
        member_ids=tuple(orjson.loads(member_ids)),
        owner_id=owner_id,
        last_seq=last_seq,
    )
    last = row[_ROOM_WIDTH + 1 :]
    return RoomSummary(
        room=room,
        last_message=None if last[0] is None else message_of(last),
        unread=row[_ROOM_WIDTH],
        read_seq=read_seq,
        synced_seq=synced_seq,
        last_ts=last_ts,
    )


def tuples(result: Result[Any]) -> list[tuple[Any, ...]]:
    """A result's rows, typed as the plain tuples they behave as."""
    return cast(list[tuple[Any, ...]], result.all())


def dumps(value: Any) -> str:
    """JSON text for a TEXT column."""
    return orjson.dumps(value).decode()
