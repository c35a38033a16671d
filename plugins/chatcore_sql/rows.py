"""Rows to domain models, and the value rules every query module shares."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from chatcore.errors import bad_request
from chatcore.models import Message, Room
from chatcore_sql.tables import messages, rooms

#: Integers the databases store (BIGINT). Arguments are clamped into this range, so that an
#: absurd seq, limit or time from a caller reads as "everything" or "nothing", not as a
#: driver overflow error.
I64_MIN, I64_MAX = -(2**63), 2**63 - 1

MESSAGE_COLUMNS = (
    messages.c.id,
    messages.c.room_id,
    messages.c.seq,
    messages.c.sender_id,
    messages.c.ref,
    messages.c.kind,
    messages.c.body,
    messages.c.media_id,
    messages.c.sticker_id,
    messages.c.reply_to,
    messages.c.ts,
    messages.c.edited_ts,
    messages.c.deleted,
)

ROOM_COLUMNS = (
    rooms.c.id,
    rooms.c.kind,
    rooms.c.name,
    rooms.c.owner_id,
    rooms.c.last_seq,
    rooms.c.created_ts,
    rooms.c.last_ts,
)


def new_id() -> str:
    return uuid.uuid4().hex


def i64(value: int) -> int:
    return min(max(int(value), I64_MIN), I64_MAX)


def plausible(*ids: str) -> bool:
    """False when an id given by a client cannot exist: it holds NUL, which PostgreSQL refuses
    even as a query parameter (the caller answers "not found" without asking)."""
    return not any("\x00" in value for value in ids)


def check_text(*values: str | None) -> None:
    """PostgreSQL cannot store NUL in text (SQLite can): refuse it on both, with a clear error,
    instead of failing a whole transaction on one backend only."""
    if any(value is not None and "\x00" in value for value in values):
        raise bad_request("Text must not contain NUL characters (\\u0000).")


def message(row: Any, prefix: str = "") -> Message:
    """A Message from a row of MESSAGE_COLUMNS (labelled `prefix + name` when prefixed)."""
    m = row._mapping
    return Message(
        id=m[prefix + "id"],
        room_id=m[prefix + "room_id"],
        seq=m[prefix + "seq"],
        sender_id=m[prefix + "sender_id"],
        ref=m[prefix + "ref"],
        kind=m[prefix + "kind"],
        body=m[prefix + "body"],
        media_id=m[prefix + "media_id"],
        sticker_id=m[prefix + "sticker_id"],
        reply_to=m[prefix + "reply_to"],
        ts=m[prefix + "ts"],
        edited_ts=m[prefix + "edited_ts"],
        deleted=bool(m[prefix + "deleted"]),
    )


def room(row: Any, member_ids: Sequence[str]) -> Room:
    """A Room from a row of ROOM_COLUMNS and its members (ordered by joined_ts, user_id)."""
    return Room(
        id=row.id,
        kind=row.kind,
        name=row.name,
        member_ids=tuple(member_ids),
        owner_id=row.owner_id,
        last_seq=row.last_seq,
        created_ts=row.created_ts,
        last_ts=row.last_ts,
    )


def group_members(rows: Iterable[Any]) -> dict[str, list[str]]:
    """`{room_id: [user_id, ...]}` from (room_id, user_id) rows, keeping their order."""
    members: dict[str, list[str]] = {}
    for row in rows:
        members.setdefault(row.room_id, []).append(row.user_id)
    return members
