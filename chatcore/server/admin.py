"""Server administration: who is a server admin, and what admins do to users and rooms.

One place for the rules the admin API (`chatcore_rest.endpoints.admin`) and the console
(`chatcore user ...`) share. Every action is audited (`chatcore.server.audit`): `actor_id` is
the admin, or None for the console. The rules (docs/administration.md):

- promotion is the console's only (`chatcore user promote`), never the API's;
- over the API an admin cannot disable, demote or erase themselves (the console can);
- disabling ends every login of the user at once on every node (their sessions close with
  4401) and refuses their next login (403);
- erasure removes the account's personal data and leaves a tombstone ("Deleted user"), its
  messages kept or each made a deleted message (seq kept; members get `message_updated`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from chatcore.clock import now_ms
from chatcore.errors import ChatError, ErrorCode, bad_request, not_found
from chatcore.models import Identity
from chatcore.server import audit, room_log, rooms
from chatcore.server.accounts import check_password
from chatcore.server.messages import updated_event

if TYPE_CHECKING:
    from chatcore.models import AdminRoom, AdminUser, Erasure, LoginInfo, User
    from chatcore.server.app import App

NOT_ADMIN = "This needs a server admin."
#: The admin's lists (users, rooms): a page's default and largest size.
ADMIN_PAGE_DEFAULT, ADMIN_PAGE_MAX = 50, 200
#: The most logins a user's list shows (newest first).
LOGINS_MAX = 200
MessagesOnErase = Literal["keep", "remove"]


async def require_admin(app: App, user_id: str) -> User:
    """The user when they are a server admin (and not disabled); else ChatError forbidden."""
    user = await app.storage.get_user(user_id)
    if user is None or not user.is_admin or user.disabled or user.deleted:
        raise ChatError(ErrorCode.FORBIDDEN, NOT_ADMIN)
    return user


async def _user(app: App, user_id: str) -> User:
    user = await app.storage.get_user(user_id)
    if user is None or user.deleted:
        raise not_found("This user")
    return user


def _not_self(actor_id: str | None, user_id: str, what: str) -> None:
    if actor_id is not None and actor_id == user_id:
        raise bad_request(f"An admin cannot {what} themselves; ask another admin.")


def _via(actor_id: str | None) -> dict[str, str]:
    return {"via": "console" if actor_id is None else "api"}


async def end_logins(app: App, user_id: str, login_ids: list[str]) -> None:
    """Announce ended logins the way a logout does: their tokens stop working and their
    sessions close with 4401 on every node (`AuthBackend.logout` per login)."""
    expires = now_ms()
    for login_id in login_ids:
        await app.auth.logout(
            Identity(user_id=user_id, login_id=login_id, token_id="", expires_ts=expires)
        )


async def set_admin(app: App, actor_id: str | None, user_id: str, is_admin: bool) -> User:
    """Promote (console only: the API never calls this with True) or demote a user."""
    if not is_admin:
        _not_self(actor_id, user_id, "demote")
    user = await app.storage.set_admin(user_id, is_admin)
    if user is None:
        raise not_found("This user")
    action = "user.promote" if is_admin else "user.demote"
    await audit.record(
        app,
        actor_id=actor_id,
        action=action,
        target_kind="user",
        target_id=user_id,
        details=_via(actor_id),
    )
    return user


async def disable(app: App, actor_id: str | None, user_id: str) -> User:
    _not_self(actor_id, user_id, "disable")
    ended = await app.storage.disable_user(user_id, now_ms())
    if ended is None:
        raise not_found("This user")
    await end_logins(app, user_id, ended)
    await audit.record(
        app,
        actor_id=actor_id,
        action="user.disable",
        target_kind="user",
        target_id=user_id,
        details={**_via(actor_id), "logins_ended": len(ended)},
    )
    return await _user(app, user_id)


async def enable(app: App, actor_id: str | None, user_id: str) -> User:
    user = await app.storage.enable_user(user_id)
    if user is None:
        raise not_found("This user")
    await audit.record(
        app,
        actor_id=actor_id,
        action="user.enable",
        target_kind="user",
        target_id=user_id,
        details=_via(actor_id),
    )
    return user


async def reset_password(app: App, actor_id: str | None, user_id: str, password: object) -> None:
    """Set a new password. The user's logins stay (end them with `end_user_logins`)."""
    password = check_password(password)
    await _user(app, user_id)
    await app.storage.set_password_hash(user_id, await app.auth.hash_password(password))
    await audit.record(
        app,
        actor_id=actor_id,
        action="user.reset_password",
        target_kind="user",
        target_id=user_id,
        details=_via(actor_id),
    )


async def end_user_logins(
    app: App, actor_id: str | None, user_id: str, login_id: str | None
) -> list[str]:
    """End one login of the user (`login_id`) or all their live ones: the ids ended. An
    unknown login, or one of another user, is not_found; one that has ended already, []."""
    await _user(app, user_id)
    if login_id is not None:
        known = {login.id for login in await app.storage.user_logins(user_id, LOGINS_MAX)}
        if login_id not in known:
            raise not_found("This login")
    ended = await app.storage.end_user_logins(user_id, login_id, now_ms())
    await end_logins(app, user_id, ended)
    await audit.record(
        app,
        actor_id=actor_id,
        action="user.end_logins",
        target_kind="user",
        target_id=user_id,
        details={**_via(actor_id), "login_ids": ended},
    )
    return ended


async def erase(app: App, actor_id: str | None, user_id: str, messages: MessagesOnErase) -> Erasure:
    """Erase the user (docs/administration.md, Erasure) and tell those concerned: the rooms
    they left get `room` events, emptied messages `message_updated`, their logins end."""
    _not_self(actor_id, user_id, "erase")
    if messages not in ("keep", "remove"):
        raise bad_request("messages is 'keep' or 'remove'.")
    erasure = await app.storage.erase_user(user_id, messages == "remove", now_ms())
    if erasure is None:
        raise not_found("This user")
    await end_logins(app, user_id, list(erasure.ended_logins))
    for room in erasure.rooms:
        await rooms.announce(app, room, [*room.member_ids, user_id])
        await room_log.record(
            app,
            room,
            actor_id=actor_id,
            action="member.remove",
            target_id=user_id,
            details={"erased": True},
            also=[user_id],
        )
    for message in erasure.removed_messages:
        await app.hub.publish_room(message.room_id, updated_event(message))
    # The audit entry names the user by id only: their personal data is what was erased.
    await audit.record(
        app,
        actor_id=actor_id,
        action="user.erase",
        target_kind="user",
        target_id=user_id,
        details={
            **_via(actor_id),
            "messages": messages,
            "rooms_left": len(erasure.rooms),
            "messages_removed": len(erasure.removed_messages),
        },
    )
    return erasure


async def shutdown_room(app: App, actor_id: str | None, room_id: str) -> list[str]:
    """Remove every member of the room (each gets a `room` event and the room log's entry of
    their removal) so that nobody can send in it or add anyone to it any more; its messages
    stay stored, readable by nobody."""
    removed = await app.storage.shutdown_room(room_id)
    if removed is None:
        raise not_found("This room")
    room = await app.storage.get_room(room_id)
    if room is not None:
        await rooms.announce(app, room, removed)
        for user_id in removed:
            await room_log.record(
                app,
                room,
                actor_id=actor_id,
                action="member.remove",
                target_id=user_id,
                details={"shutdown": True},
                also=[user_id],  # each their own: nobody is left to see the others'
            )
    await audit.record(
        app,
        actor_id=actor_id,
        action="room.shutdown",
        target_kind="room",
        target_id=room_id,
        room_id=room_id,
        details={**_via(actor_id), "members_removed": len(removed)},
    )
    return removed


# --- the admin's lists ----------------------------------------------------------------------


def page_size(limit: int | None, largest: int = ADMIN_PAGE_MAX) -> int:
    """A page's size from a caller's `limit`: the default when absent, clamped to 1..largest."""
    return ADMIN_PAGE_DEFAULT if limit is None else max(1, min(limit, largest))


async def list_users(
    app: App, query: str, limit: int | None, offset: int
) -> tuple[list[AdminUser], bool]:
    """A page of users with their state and counts, and whether more follow."""
    size = page_size(limit)
    found = await app.storage.admin_users(query.strip(), size + 1, max(offset, 0))
    return found[:size], len(found) > size


async def user_view(app: App, user_id: str) -> AdminUser:
    found = await app.storage.admin_user(user_id)
    if found is None:
        raise not_found("This user")
    return found


async def list_rooms(app: App, limit: int | None, offset: int) -> tuple[list[AdminRoom], bool]:
    """A page of rooms (newest first) with their counts, and whether more follow."""
    size = page_size(limit)
    found = await app.storage.admin_rooms(size + 1, max(offset, 0))
    return found[:size], len(found) > size


async def list_logins(app: App, user_id: str) -> list[LoginInfo]:
    await _user(app, user_id)
    return await app.storage.user_logins(user_id, LOGINS_MAX)
