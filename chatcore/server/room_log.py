"""The room log: a room's administrative history, apart from its messages (docs/protocol.md,
The room log).

Every change to a room (its name, topic or avatar, a role, its owner, a member added, removed,
leaving, muted, unmuted, banned or unbanned, a message deleted by a moderator) is one entry:
who did what to whom. Each entry is stored, then sent live as a `room_log` event to every
session of every member (and of the user the change removed), and members read the history
with `GET /rooms/{room_id}/log`. The log is not part of the room's seq stream: the server
never puts a message in a room of its own accord.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from chatcore.clock import now_ms
from chatcore.errors import bad_request
from chatcore.models import RoomLogDraft
from chatcore.protocol.frames import encode
from chatcore.server import rooms  # the module: rooms imports this one too

if TYPE_CHECKING:
    from chatcore.models import Room, RoomLogEntry
    from chatcore.server.app import App

LOG_LIMIT_DEFAULT = 50
LOG_LIMIT_MAX = 200

#: The actions of the log (**Decision**: dotted, `<what>.<verb>`, like the audit log's).
ACTIONS = (
    "room.create",
    "room.update",
    "room.retention",
    "room.owner",
    "member.add",
    "member.remove",
    "member.leave",
    "member.role",
    "member.mute",
    "member.unmute",
    "member.ban",
    "member.unban",
    "message.delete",
)


def event_of(entry: RoomLogEntry) -> bytes:
    return encode({"type": "room_log", "entry": entry.wire()})


async def record(
    app: App,
    room: Room,
    *,
    actor_id: str | None,
    action: str,
    target_id: str | None = None,
    details: Mapping[str, Any] | None = None,
    also: Iterable[str] = (),
) -> RoomLogEntry:
    """Store one entry of `room`'s log (the room as it is after the change) and send it to
    every session of its members and of the users in `also` (one the change removed)."""
    assert action in ACTIONS, action
    entry = await app.storage.append_room_log(
        RoomLogDraft(
            room_id=room.id,
            ts=now_ms(),
            actor_id=actor_id,
            action=action,
            target_id=target_id,
            details=dict(details or {}),
        )
    )
    event = event_of(entry)
    # Per user, like `rooms.announce`, so that on each user's channel the entry follows the
    # `room` event of the same change.
    for user_id in dict.fromkeys([*room.member_ids, *also]):
        await app.hub.publish_user(user_id, event)
    return entry


async def history(
    app: App, user_id: str, room_id: str, before: str | None, limit: int | None
) -> tuple[list[RoomLogEntry], bool]:
    """A page of the room's log, newest first, before the entry `before` (None: the newest),
    and whether older entries exist. Members only (`not_found` otherwise)."""
    if before is not None and not (before.isascii() and before.isdigit()):
        raise bad_request("before must be the id of an entry of this room's log.")
    size = LOG_LIMIT_DEFAULT if limit is None else max(1, min(limit, LOG_LIMIT_MAX))
    await rooms.member_room(app, user_id, room_id)
    page = await app.storage.room_log(room_id, before, size + 1)
    return page[:size], len(page) > size
