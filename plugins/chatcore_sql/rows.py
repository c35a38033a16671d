"""Rows to domain models, and the value rules every query module shares."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from chatcore.errors import bad_request
from chatcore.models import Message, Room, User
from chatcore_sql.tables import messages, rooms, users

#: Integers the databases store (BIGINT). Arguments are clamped into this range, so that an
#: absurd seq, limit or time from a caller reads as "everything" or "nothing", not as a
#: driver overflow error.
I64_MIN, I64_MAX = -(2**63), 2**63 - 1

USER_COLUMNS = (
    users.c.id,
    users.c.username,
    users.c.display_name,
    users.c.avatar_media_id,
    users.c.is_admin,
    users.c.disabled_ts,
    users.c.erased_ts,
)


def user_of(row: Sequence[Any]) -> User:
    """A User from a row that starts with USER_COLUMNS (a SQLAlchemy row or a sqlite3 tuple)."""
    user_id, username, display_name, avatar_media_id, is_admin, disabled_ts, erased_ts = row[:7]
    return User(
        id=user_id,
        username=username,
        display_name=display_name,
        avatar_media_id=avatar_media_id,
        is_admin=bool(is_admin),
        disabled=disabled_ts is not None,
        deleted=erased_ts is not None,
    )


#: In the order of Message's fields, so that a row zips into a Message's values as they are.
MESSAGE_COLUMNS = (
    messages.c.room_id,
    messages.c.sender_id,
    messages.c.ref,
    messages.c.kind,
    messages.c.body,
    messages.c.media_id,
    messages.c.sticker_id,
    messages.c.reply_to,
    messages.c.ts,
    messages.c.id,
    messages.c.seq,
    messages.c.edited_ts,
    messages.c.deleted,
)

#: Message's field names (plain str: the columns' names are a str subclass, which orjson
#: refuses as a key), which are MESSAGE_COLUMNS' names.
MESSAGE_NAMES = tuple(Message.model_fields)
assert MESSAGE_NAMES == tuple(c.name for c in MESSAGE_COLUMNS), "columns follow Message's fields"

ROOM_COLUMNS = (
    rooms.c.id,
    rooms.c.kind,
    rooms.c.name,
    rooms.c.owner_id,
    rooms.c.last_seq,
    rooms.c.created_ts,
    rooms.c.last_ts,
    rooms.c.topic,
    rooms.c.avatar_media_id,
)


def new_id() -> str:
    return uuid.uuid4().hex


def new_ids(count: int) -> list[str]:
    """`count` new message ids: 32 hex digits like `new_id`'s, in increasing order of time.

    The first 12 digits are the milliseconds since the epoch, the other 20 are random (80
    bits, from one read of the system's random source for the whole batch). A batch's rows
    then go to the right-hand end of the `messages` primary key's index, a page or two, where
    random ids touched a page per row: on SQLite each touched page is written again at every
    commit (the batch's COMMIT cost about twice its INSERT), on PostgreSQL each is a page
    image in the WAL after a checkpoint. Message ids stay opaque: nothing reads a time from
    them, and the room's seq, not the id, orders messages.
    """
    prefix = f"{time.time_ns() // 1_000_000 & 0xFFFF_FFFF_FFFF:012x}"
    digits = os.urandom(10 * count).hex()
    return [prefix + digits[i : i + 20] for i in range(0, 20 * count, 20)]


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
    """A Message from a row of MESSAGE_COLUMNS (labelled `prefix + name` when prefixed).

    The database's constraints hold every value to the model's types (SQLite's 0/1 of a
    boolean aside, made a bool here), so the row is not validated again: catch-up reads
    thousands of rows at a time.
    """
    if prefix:
        mapping = row._mapping
        values = {name: mapping[prefix + name] for name in MESSAGE_NAMES}
    else:
        values = dict(zip(MESSAGE_NAMES, row))  # noqa: B905 - rows of MESSAGE_COLUMNS only
    values["deleted"] = bool(values["deleted"])
    return Message.trusted(values)


def room(row: Any, member_ids: Sequence[str], admin_ids: Sequence[str] = ()) -> Room:
    """A Room from a row of ROOM_COLUMNS, its members (ordered by joined_ts, user_id) and
    those of them whose role is "admin" (in the same order)."""
    return Room(
        id=row.id,
        kind=row.kind,
        name=row.name,
        member_ids=tuple(member_ids),
        owner_id=row.owner_id,
        last_seq=row.last_seq,
        created_ts=row.created_ts,
        last_ts=row.last_ts,
        topic=row.topic,
        avatar_media_id=row.avatar_media_id,
        admin_ids=tuple(admin_ids),
    )


def group_members(rows: Iterable[Any]) -> dict[str, list[str]]:
    """`{room_id: [user_id, ...]}` from (room_id, user_id) rows, keeping their order."""
    members: dict[str, list[str]] = {}
    for row in rows:
        members.setdefault(row.room_id, []).append(row.user_id)
    return members


def group_admins(rows: Iterable[Any]) -> dict[str, list[str]]:
    """`{room_id: [user_id, ...]}` of the admins, from (room_id, user_id, role) rows, keeping
    their order."""
    admins: dict[str, list[str]] = {}
    for row in rows:
        if row.role == "admin":
            admins.setdefault(row.room_id, []).append(row.user_id)
    return admins
