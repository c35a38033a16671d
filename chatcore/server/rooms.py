"""Rooms: direct and group rooms, membership, and the `room` events members receive.

Every function takes the acting user and checks membership: a room the user does not belong
to answers `not_found`, never revealing that it exists.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING

from chatcore.clock import now_ms
from chatcore.errors import ChatError, ErrorCode, bad_request, not_found
from chatcore.protocol.frames import encode
from chatcore.server import contacts

if TYPE_CHECKING:
    from chatcore.models import Room, RoomView
    from chatcore.server.app import App

ROOM_NAME_MAX = 100
GROUP_MEMBERS_MAX = 1000


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


async def create_group(app: App, owner_id: str, name: object, member_ids: object) -> RoomView:
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= ROOM_NAME_MAX:
        raise bad_request(f"A group room needs a name of 1 to {ROOM_NAME_MAX} characters.")
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise bad_request("A room name cannot contain control characters.")
    if not isinstance(member_ids, list) or not all(isinstance(m, str) for m in member_ids):
        raise bad_request("member_ids must be a list of user ids.")
    if len({*member_ids, owner_id}) > GROUP_MEMBERS_MAX:
        raise bad_request(f"A group room has at most {GROUP_MEMBERS_MAX} members.")
    await contacts.check_can_add(app, owner_id, member_ids)
    room = await app.storage.create_group_room(owner_id, name.strip(), member_ids, now_ms())
    await announce(app, room, room.member_ids)
    return await view(app, owner_id, room.id)


async def add_member(app: App, actor_id: str, room_id: str, user_id: str) -> None:
    """Any member of a group room may add a user, but not across a block with them."""
    room = await member_room(app, actor_id, room_id)
    if room.kind != "group":
        raise bad_request("Members can only be added to a group room.")
    if len(room.member_ids) >= GROUP_MEMBERS_MAX:
        raise bad_request(f"A group room has at most {GROUP_MEMBERS_MAX} members.")
    if await app.storage.get_user(user_id) is None:
        raise not_found("This user")
    await contacts.check_can_add(app, actor_id, [user_id])
    changed = await app.storage.add_member(room_id, user_id, now_ms())
    if changed is not None:
        await announce(app, changed, changed.member_ids)


async def remove_member(app: App, actor_id: str, room_id: str, user_id: str) -> None:
    """A member may leave a group room; its owner may remove anyone."""
    room = await member_room(app, actor_id, room_id)
    if room.kind != "group":
        raise bad_request("A direct room has no members to remove.")
    if user_id != actor_id and actor_id != room.owner_id:
        raise ChatError(ErrorCode.FORBIDDEN, "Only the room's owner may remove another member.")
    if user_id not in room.member_ids:
        raise not_found("This member")
    changed = await app.storage.remove_member(room_id, user_id)
    if changed is not None:
        await announce(app, changed, [*changed.member_ids, user_id])


async def announce(app: App, room: Room, audience: Sequence[str]) -> None:
    """Send the `room` event to every session of `audience`; each node also updates which of
    its sessions are in the room (a removed member's sessions leave it)."""
    event = encode({"type": "room", "room": room.wire()})
    for user_id in dict.fromkeys(audience):
        await app.hub.publish_user(user_id, event, room_id=room.id, members=room.member_ids)
