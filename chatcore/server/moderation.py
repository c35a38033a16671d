"""Room administration: roles in group rooms (owner, admin, member), who may act on whom,
mutes and bans (docs/protocol.md, Room administration).

Every function takes the acting user and checks their role in that very room: a room admin of
one room is nobody in another. A non-member gets `not_found` (the room stays invisible); a
member without the power gets `forbidden`. A direct room has no roles, so no admins.
Each change is one entry of the room log (`chatcore.server.room_log`), and each act on
another user is also written to the audit log (`chatcore.server.audit`).
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from chatcore.clock import now_ms
from chatcore.errors import ChatError, ErrorCode, bad_request, not_found
from chatcore.models import RoomBan
from chatcore.server import audit, room_log, rooms

if TYPE_CHECKING:
    from chatcore.models import Room, RoomRole, RoomView
    from chatcore.server.app import App

#: How a role ranks: a moderator acts only on those ranked below them.
RANK: dict[str | None, int] = {"owner": 2, "admin": 1, "member": 0, None: 0}
#: The roles `PUT /rooms/{room_id}/members/{user_id}/role` sets.
SETTABLE_ROLES = ("admin", "member")
#: **Decision**: a mute ends within a year (a longer one is a ban).
MUTE_MAX_MS = 366 * 24 * 3600 * 1000
MUTE_MINUTES_MAX = MUTE_MAX_MS // 60_000
BAN_REASON_MAX = 500


def room_role(room: Room, user_id: str) -> RoomRole | None:
    """The user's role in the room: "owner", "admin" or "member" (both members of a direct
    room are "member"); None when they are not a member."""
    return room.role_of(user_id)


async def require_room_admin(app: App, actor_id: str, room_id: str) -> Room:
    """The room, when the actor is its owner or one of its admins (a group room).

    `not_found` when the actor is not a member, `bad_request` for a direct room, `forbidden`
    for a plain member.
    """
    room = await rooms.member_room(app, actor_id, room_id)
    if room.kind != "group":
        raise bad_request("A direct room has no admins.")
    if room_role(room, actor_id) == "member":
        raise ChatError(ErrorCode.FORBIDDEN, "This needs the room's owner or one of its admins.")
    return room


async def require_room_owner(app: App, actor_id: str, room_id: str) -> Room:
    """The group room, when the actor owns it (errors as `require_room_admin`)."""
    room = await require_room_admin(app, actor_id, room_id)
    if room.owner_id != actor_id:
        raise ChatError(ErrorCode.FORBIDDEN, "Only the room's owner may do this.")
    return room


def check_outranks(room: Room, actor_id: str, target_id: str, what: str) -> None:
    """A moderator acts only on someone ranked below them (**Decision**: an admin on plain
    members and non-members; the owner on anyone but themselves): `forbidden` otherwise.
    `what` names the act, e.g. "mute"."""
    if RANK[room_role(room, actor_id)] <= RANK[room_role(room, target_id)]:
        if room_role(room, target_id) == "owner":
            raise ChatError(ErrorCode.FORBIDDEN, f"Nobody may {what} the room's owner.")
        raise ChatError(ErrorCode.FORBIDDEN, f"Only the room's owner may {what} one of its admins.")


def format_ts(ts: int) -> str:
    """A time for a sentence: `2026-12-07 21:30 UTC`."""
    return datetime.fromtimestamp(ts / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def muted_refusal(until_ts: int) -> ChatError:
    """The answer to a send of a muted member (made by `store_messages`)."""
    return ChatError(
        ErrorCode.FORBIDDEN,
        f"You are muted in this room until {format_ts(until_ts)}; you can send again then.",
    )


def _member_of(room: Room, user_id: str) -> None:
    if user_id not in room.member_ids:
        raise not_found("This member")


async def _audit(
    app: App, actor_id: str, action: str, room_id: str, target_id: str, **details: object
) -> None:
    await audit.record(
        app,
        actor_id=actor_id,
        action=action,
        target_kind="user",
        target_id=target_id,
        room_id=room_id,
        details=details,
    )


# --- roles and ownership --------------------------------------------------------------------


async def set_role(app: App, actor_id: str, room_id: str, user_id: str, role: object) -> RoomView:
    """The owner makes a member an admin, or an admin a plain member again."""
    if role not in SETTABLE_ROLES:
        raise bad_request('role must be "admin" or "member" (ownership moves by its own call).')
    room = await require_room_owner(app, actor_id, room_id)
    _member_of(room, user_id)
    if user_id == room.owner_id:
        raise bad_request(
            "The owner's role changes only when ownership passes to another member "
            "(POST /rooms/{room_id}/owner)."
        )
    if room_role(room, user_id) != role:
        changed = await app.storage.set_member_role(room_id, user_id, role)  # type: ignore[arg-type]
        if changed is None:
            raise not_found("This member")
        await rooms.announce(app, changed, changed.member_ids)
        await room_log.record(
            app,
            changed,
            actor_id=actor_id,
            action="member.role",
            target_id=user_id,
            details={"role": role},
        )
        await _audit(app, actor_id, "room.role", room_id, user_id, role=role)
    return await rooms.view(app, actor_id, room_id)


async def transfer_ownership(app: App, actor_id: str, room_id: str, user_id: object) -> RoomView:
    """The owner hands the room to another member; the owner before becomes an admin."""
    if not isinstance(user_id, str):
        raise bad_request("user_id must be the id of a member of this room.")
    room = await require_room_owner(app, actor_id, room_id)
    _member_of(room, user_id)
    if user_id != actor_id:
        changed = await app.storage.transfer_ownership(room_id, user_id)
        if changed is None:
            raise not_found("This member")
        await rooms.announce(app, changed, changed.member_ids)
        await room_log.record(
            app,
            changed,
            actor_id=actor_id,
            action="room.owner",
            target_id=user_id,
            details={"previous_owner_id": actor_id},
        )
        await _audit(app, actor_id, "room.owner", room_id, user_id)
    return await rooms.view(app, actor_id, room_id)


# --- mutes ----------------------------------------------------------------------------------


def mute_end(until_ts: object, minutes: object, now_ts: int) -> int:
    """When a mute asked for as `{"until_ts"}` or `{"minutes"}` (exactly one) ends."""
    if (until_ts is None) == (minutes is None):
        raise bad_request("Give until_ts (a time in ms) or minutes, not both.")
    if minutes is not None:
        if (
            not isinstance(minutes, int)
            or isinstance(minutes, bool)
            or not 1 <= minutes <= MUTE_MINUTES_MAX
        ):
            raise bad_request(f"minutes must be an integer from 1 to {MUTE_MINUTES_MAX}.")
        return now_ts + minutes * 60_000
    if not isinstance(until_ts, int) or isinstance(until_ts, bool):
        raise bad_request("until_ts must be a time in milliseconds since the epoch.")
    if not now_ts < until_ts <= now_ts + MUTE_MAX_MS:
        raise bad_request("until_ts must be in the future, at most a year (366 days) ahead.")
    return until_ts


async def mute(
    app: App, actor_id: str, room_id: str, user_id: str, until_ts: object, minutes: object
) -> int:
    """A moderator keeps a member below them from sending until a time; returns that time."""
    room = await require_room_admin(app, actor_id, room_id)
    _member_of(room, user_id)
    check_outranks(room, actor_id, user_id, "mute")
    end = mute_end(until_ts, minutes, now_ms())
    if not await app.storage.set_muted_until(room_id, user_id, end):
        raise not_found("This member")
    await room_log.record(
        app,
        room,
        actor_id=actor_id,
        action="member.mute",
        target_id=user_id,
        details={"until_ts": end},
    )
    await _audit(app, actor_id, "room.mute", room_id, user_id, until_ts=end)
    return end


async def unmute(app: App, actor_id: str, room_id: str, user_id: str) -> None:
    """Lift a member's mute; a member who is not muted (any more) stays as they are."""
    room = await require_room_admin(app, actor_id, room_id)
    _member_of(room, user_id)
    check_outranks(room, actor_id, user_id, "unmute")
    until = await app.storage.muted_until(room_id, user_id)
    if until is None:
        return
    await app.storage.set_muted_until(room_id, user_id, None)
    if until > now_ms():
        await room_log.record(
            app, room, actor_id=actor_id, action="member.unmute", target_id=user_id
        )
        await _audit(app, actor_id, "room.unmute", room_id, user_id)


# --- bans -----------------------------------------------------------------------------------


def check_reason(reason: object) -> str | None:
    if reason is None:
        return None
    if not isinstance(reason, str) or len(reason) > BAN_REASON_MAX:
        raise bad_request(f"reason must be a text of at most {BAN_REASON_MAX} characters.")
    if any(unicodedata.category(c) == "Cc" for c in reason):
        raise bad_request("A reason cannot contain control characters.")
    return reason.strip() or None


async def ban(app: App, actor_id: str, room_id: str, user_id: str, reason: object) -> RoomBan:
    """A moderator removes a user below them from the room (when a member) and keeps them
    out: only the owner or an admin may add them again, which lifts the ban."""
    room = await require_room_admin(app, actor_id, room_id)
    reason = check_reason(reason)
    if user_id == actor_id:
        raise bad_request("You cannot ban yourself; leave the room instead.")
    if await app.storage.get_user(user_id) is None:
        raise not_found("This user")
    check_outranks(room, actor_id, user_id, "ban")
    banned = RoomBan(room_id=room_id, user_id=user_id, by=actor_id, reason=reason, ts=now_ms())
    done = await app.storage.ban_member(banned)
    if done is None:
        raise not_found("This room")
    changed, was_member = done
    if was_member:
        await rooms.announce(app, changed, [*changed.member_ids, user_id])
    details = {"reason": reason} if reason is not None else {}
    await room_log.record(
        app,
        changed,
        actor_id=actor_id,
        action="member.ban",
        target_id=user_id,
        details=details,
        also=[user_id] if was_member else [],
    )
    await _audit(app, actor_id, "room.ban", room_id, user_id, was_member=was_member)
    return banned


async def unban(app: App, actor_id: str, room_id: str, user_id: str) -> None:
    """A moderator lifts a ban (`not_found` when there is none)."""
    room = await require_room_admin(app, actor_id, room_id)
    if await app.storage.get_ban(room_id, user_id) is None:
        raise not_found("This ban")
    await lift_ban(app, room, actor_id, user_id)


async def lift_ban(app: App, room: Room, actor_id: str, user_id: str) -> None:
    """Lift a ban (the actor is the room's owner or an admin: checked by the caller)."""
    if await app.storage.unban(room.id, user_id):
        await room_log.record(
            app, room, actor_id=actor_id, action="member.unban", target_id=user_id
        )
        await _audit(app, actor_id, "room.unban", room.id, user_id)


async def bans(app: App, actor_id: str, room_id: str) -> list[RoomBan]:
    """The room's bans, newest first: for its owner and admins."""
    await require_room_admin(app, actor_id, room_id)
    return await app.storage.list_bans(room_id)
