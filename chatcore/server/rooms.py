"""Rooms: direct and group rooms, membership, a group's name, topic and avatar, and the
`room` events members receive.

Every function takes the acting user and checks membership: a room the user does not belong
to answers `not_found`, never revealing that it exists. Who may change what beyond that (the
roles of a group: owner, admin, member) is `chatcore.server.moderation`'s; every change is an
entry of the room log (`chatcore.server.room_log`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING

from chatcore.clock import now_ms
from chatcore.errors import ChatError, ErrorCode, bad_request, not_found
from chatcore.protocol.frames import encode
from chatcore.server import audit, contacts, media, moderation, room_log

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from chatcore.models import Room, RoomView
    from chatcore.server.app import App

ROOM_NAME_MAX = 100
#: **Decision**: a topic is at most this many characters (line breaks allowed).
ROOM_TOPIC_MAX = 1000
GROUP_MEMBERS_MAX = 1000
#: The fields `PATCH /rooms/{room_id}` changes.
ROOM_PATCH_FIELDS = ("name", "topic", "avatar_media_id")


async def member_room(app: App, user_id: str, room_id: str) -> Room:
    """The room, when `user_id` is a member; `not_found` otherwise."""
    room = await app.storage.get_room(room_id)
    if room is None or user_id not in room.member_ids:
        raise not_found("This room")
    return room


async def view(app: App, user_id: str, room_id: str) -> RoomView:
    found = await app.storage.room_view(room_id, user_id)
    if found is None:
        raise not_found("This room")
    return found


async def list_rooms(app: App, user_id: str) -> list[RoomView]:
    return await app.storage.list_rooms(user_id)


async def open_direct(app: App, user_id: str, peer_id: str) -> tuple[RoomView, bool]:
    """The direct room with `peer_id`, created when missing; True when created now.

    Refused (`forbidden`) while either of the two blocks the other."""
    if peer_id == user_id:
        raise bad_request("A direct room needs another user; user_id is your own id.")
    if await app.storage.get_user(peer_id) is None:
        raise not_found("This user")
    # contacts and blocks: no direct room across a block, either way (chatcore.server.contacts).
    await contacts.check_can_talk(app, user_id, peer_id)
    room, created = await app.storage.create_direct_room(user_id, peer_id, now_ms())
    if created:
        await announce(app, room, room.member_ids)
    return await view(app, user_id, room.id), created


def check_name(name: object) -> str:
    """A group room's name, trimmed: 1 to ROOM_NAME_MAX characters, no control characters."""
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= ROOM_NAME_MAX:
        raise bad_request(f"A group room needs a name of 1 to {ROOM_NAME_MAX} characters.")
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise bad_request("A room name cannot contain control characters.")
    return name.strip()


def check_topic(topic: object) -> str | None:
    """A topic, trimmed (None, or one left empty, clears it): at most ROOM_TOPIC_MAX
    characters, no control characters but line breaks."""
    if topic is None:
        return None
    if not isinstance(topic, str) or len(topic) > ROOM_TOPIC_MAX:
        raise bad_request(f"topic must be a text of at most {ROOM_TOPIC_MAX} characters, or null.")
    if any(unicodedata.category(c) == "Cc" and c != "\n" for c in topic):
        raise bad_request("A topic cannot contain control characters (line breaks aside).")
    return topic.strip() or None


async def create_group(app: App, owner_id: str, name: object, member_ids: object) -> RoomView:
    name = check_name(name)
    if not isinstance(member_ids, list) or not all(isinstance(m, str) for m in member_ids):
        raise bad_request("member_ids must be a list of user ids.")
    if len({*member_ids, owner_id}) > GROUP_MEMBERS_MAX:
        raise bad_request(f"A group room has at most {GROUP_MEMBERS_MAX} members.")
    await contacts.check_can_add(app, owner_id, member_ids)
    room = await app.storage.create_group_room(owner_id, name, member_ids, now_ms())
    await announce(app, room, room.member_ids)
    await room_log.record(
        app, room, actor_id=owner_id, action="room.create", details={"name": room.name}
    )
    return await view(app, owner_id, room.id)


async def update(app: App, actor_id: str, room_id: str, fields: Mapping[str, Any]) -> RoomView:
    """`PATCH /rooms/{room_id}`: the owner or an admin of a group room changes its `name`,
    `topic` (None clears it) and/or `avatar_media_id` (an image the actor may read, which the
    members may then read; None removes it). Fields left out stay; a patch that changes
    nothing answers the room as it is, without an event."""
    room = await moderation.require_room_admin(app, actor_id, room_id)
    changes: dict[str, str | None] = {}
    if "name" in fields:
        changes["name"] = check_name(fields["name"])
    if "topic" in fields:
        changes["topic"] = check_topic(fields["topic"])
    if "avatar_media_id" in fields:
        media_id = fields["avatar_media_id"]
        if media_id is not None:
            if not isinstance(media_id, str):
                raise bad_request("avatar_media_id must be a media id or null.")
            avatar = await media.readable(app, actor_id, media_id)
            if not media.is_image(avatar.content_type):
                raise bad_request("A room's avatar must be an image.")
        changes["avatar_media_id"] = media_id
    changes = {name: value for name, value in changes.items() if getattr(room, name) != value}
    if changes:
        changed = await app.storage.update_room(room_id, changes)
        if changed is None:
            raise not_found("This room")
        await announce(app, changed, changed.member_ids)
        await room_log.record(
            app, changed, actor_id=actor_id, action="room.update", details=changes
        )
        await audit.record(
            app,
            actor_id=actor_id,
            action="room.update",
            target_kind="room",
            target_id=room_id,
            room_id=room_id,
            details={"fields": sorted(changes)},
        )
    return await view(app, actor_id, room_id)


async def add_member(app: App, actor_id: str, room_id: str, user_id: str) -> None:
    """Any member of a group room may add a user, but not across a block with them, and not
    a user banned from the room: only its owner or an admin may, which lifts the ban."""
    room = await member_room(app, actor_id, room_id)
    if room.kind != "group":
        raise bad_request("Members can only be added to a group room.")
    if len(room.member_ids) >= GROUP_MEMBERS_MAX:
        raise bad_request(f"A group room has at most {GROUP_MEMBERS_MAX} members.")
    if await app.storage.get_user(user_id) is None:
        raise not_found("This user")
    await contacts.check_can_add(app, actor_id, [user_id])
    if user_id not in room.member_ids and await app.storage.get_ban(room_id, user_id):
        if moderation.room_role(room, actor_id) == "member":
            raise ChatError(
                ErrorCode.FORBIDDEN,
                "This user is banned from this room; only its owner or an admin may add them.",
            )
        await moderation.lift_ban(app, room, actor_id, user_id)
    changed = await app.storage.add_member(room_id, user_id, now_ms())
    if changed is not None:
        await announce(app, changed, changed.member_ids)
        await room_log.record(
            app, changed, actor_id=actor_id, action="member.add", target_id=user_id
        )


async def remove_member(app: App, actor_id: str, room_id: str, user_id: str) -> None:
    """A member may leave a group room; its owner may remove anyone, an admin a plain member."""
    room = await member_room(app, actor_id, room_id)
    if room.kind != "group":
        raise bad_request("A direct room has no members to remove.")
    leaving = user_id == actor_id
    if not leaving:
        if moderation.room_role(room, actor_id) == "member":
            raise ChatError(
                ErrorCode.FORBIDDEN, "Only the room's owner or an admin may remove another member."
            )
        if user_id not in room.member_ids:
            raise not_found("This member")
        moderation.check_outranks(room, actor_id, user_id, "remove")
    changed = await app.storage.remove_member(room_id, user_id)
    if changed is None:
        return
    await announce(app, changed, [*changed.member_ids, user_id])
    await room_log.record(
        app,
        changed,
        actor_id=actor_id,
        action="member.leave" if leaving else "member.remove",
        target_id=user_id,
        also=[user_id],
    )
    if not leaving:
        await audit.record(
            app,
            actor_id=actor_id,
            action="room.remove_member",
            target_kind="user",
            target_id=user_id,
            room_id=room_id,
        )


async def announce(app: App, room: Room, audience: Sequence[str]) -> None:
    """Send the `room` event to every session of `audience`; each node also updates which of
    its sessions are in the room (a removed member's sessions leave it)."""
    event = encode({"type": "room", "room": room.wire()})
    for user_id in dict.fromkeys(audience):
        await app.hub.publish_user(user_id, event, room_id=room.id, members=room.member_ids)
