"""The admin API of docs/protocol.md ("Administration"): users, their logins, rooms, the audit
log. Every route is a server admin's only: 401 without a token, 403 `forbidden` for anyone
else, checked before anything else is looked at (so a non-admin learns nothing, not even
whether a user exists).

The views stay thin: `chatcore.server.admin` holds the rules (no promotion here, no acting on
oneself), ends logins on every node and audits each action; the views only read the request
and shape the reply.
"""

from __future__ import annotations

from typing import Any

from quart import Response
from quart_schema import document_response, validate_querystring, validate_request

from chatcore.models import Identity
from chatcore.server import admin, audit
from chatcore_rest.auth import requires_admin
from chatcore_rest.endpoints.base import API_PREFIX, Area
from chatcore_rest.jsonio import empty_response, json_response
from chatcore_rest.openapi import Reply, api_doc
from chatcore_rest.schemas import (
    AdminRooms,
    AdminRoomsQuery,
    AdminUserBody,
    AdminUsers,
    AdminUsersQuery,
    AuditPage,
    AuditQuery,
    Erased,
    EraseQuery,
    Logins,
    PasswordRequest,
)
from chatcore_rest.state import rest_state

__all__ = ["ADMIN", "AREA"]

ADMIN = API_PREFIX + "/admin"
USER = ADMIN + "/users/<user_id>"


async def _user_reply(user_id: str) -> Response:
    return json_response((await admin.user_view(rest_state().app, user_id)).wire())


# --- users ---------------------------------------------------------------------------------


@requires_admin
@validate_querystring(AdminUsersQuery)
@document_response(AdminUsers)
@api_doc(errors=(400, 401, 403))
async def admin_list_users(identity: Identity, query_args: AdminUsersQuery) -> Response:
    """Users by username (those whose username or display name starts with `q`), each with
    admin and disabled flags, last seen time and counts (rooms, messages sent, live logins)."""
    users, more = await admin.list_users(
        rest_state().app, query_args.q, query_args.limit, query_args.offset
    )
    return json_response({"users": [u.wire() for u in users], "has_more": more})


@requires_admin
@document_response(AdminUserBody)
@api_doc(errors=(401, 403, 404))
async def admin_get_user(identity: Identity, user_id: str) -> Response:
    """One user as the list shows them."""
    return await _user_reply(user_id)


@requires_admin
@document_response(AdminUserBody)
@api_doc(errors=(400, 401, 403, 404))
async def admin_disable_user(identity: Identity, user_id: str) -> Response:
    """Disable a user: every login of theirs ends at once on every node (their WebSocket
    sessions close with 4401) and they cannot log in (403) until enabled. Not yourself (400)."""
    await admin.disable(rest_state().app, identity.user_id, user_id)
    return await _user_reply(user_id)


@requires_admin
@document_response(AdminUserBody)
@api_doc(errors=(401, 403, 404))
async def admin_enable_user(identity: Identity, user_id: str) -> Response:
    """Let a disabled user log in again (their ended logins stay ended)."""
    await admin.enable(rest_state().app, identity.user_id, user_id)
    return await _user_reply(user_id)


@requires_admin
@document_response(AdminUserBody)
@api_doc(errors=(400, 401, 403, 404))
async def admin_demote_user(identity: Identity, user_id: str) -> Response:
    """Make a server admin a plain user. Not yourself (400); promotion is the console's only
    (`chatcore user promote`)."""
    await admin.set_admin(rest_state().app, identity.user_id, user_id, False)
    return await _user_reply(user_id)


@requires_admin
@validate_request(PasswordRequest)
@api_doc(errors=(400, 401, 403, 404, 413), replies={204: Reply("The password is changed.")})
async def admin_set_password(identity: Identity, user_id: str, data: PasswordRequest) -> Response:
    """Set a user's password. Their logins stay; end them with `DELETE .../logins`."""
    await admin.reset_password(rest_state().app, identity.user_id, user_id, data.password)
    return empty_response(204)


@requires_admin
@validate_querystring(EraseQuery)
@document_response(Erased)
@api_doc(errors=(400, 401, 403, 404))
async def admin_erase_user(identity: Identity, user_id: str, query_args: EraseQuery) -> Response:
    """Erase a user (a data-erasure request): their account and personal data are removed and
    `GET /users/{id}` shows a deleted user; their messages are kept (`messages=keep`, the
    default) or each made a deleted message (`remove`). Cannot be undone. Not yourself (400)."""
    erasure = await admin.erase(rest_state().app, identity.user_id, user_id, query_args.messages)
    reply = {
        "user_id": user_id,
        "rooms_left": len(erasure.rooms),
        "messages_removed": len(erasure.removed_messages),
    }
    return json_response(reply)


# --- logins --------------------------------------------------------------------------------


@requires_admin
@document_response(Logins)
@api_doc(errors=(401, 403, 404))
async def admin_list_logins(identity: Identity, user_id: str) -> Response:
    """A user's logins (token families), newest first, live and ended."""
    logins = await admin.list_logins(rest_state().app, user_id)
    return json_response({"logins": [login.wire() for login in logins]})


@requires_admin
@api_doc(errors=(401, 403, 404), replies={204: Reply("The login has ended.")})
async def admin_end_login(identity: Identity, user_id: str, login_id: str) -> Response:
    """End one login of a user on every node (its sessions close with 4401); one that has
    ended already is 204 too."""
    await admin.end_user_logins(rest_state().app, identity.user_id, user_id, login_id)
    return empty_response(204)


@requires_admin
@api_doc(errors=(401, 403, 404), replies={204: Reply("Every login of the user has ended.")})
async def admin_end_logins(identity: Identity, user_id: str) -> Response:
    """End every live login of a user on every node (they may log in again)."""
    await admin.end_user_logins(rest_state().app, identity.user_id, user_id, None)
    return empty_response(204)


# --- rooms and the audit log ----------------------------------------------------------------


@requires_admin
@validate_querystring(AdminRoomsQuery)
@document_response(AdminRooms)
@api_doc(errors=(400, 401, 403))
async def admin_list_rooms(identity: Identity, query_args: AdminRoomsQuery) -> Response:
    """Every room, newest first, with member and message counts."""
    rooms, more = await admin.list_rooms(rest_state().app, query_args.limit, query_args.offset)
    return json_response({"rooms": [r.wire() for r in rooms], "has_more": more})


@requires_admin
@api_doc(errors=(401, 403, 404), replies={204: Reply("The room has no members any more.")})
async def admin_shutdown_room(identity: Identity, room_id: str) -> Response:
    """Shut a room down: every member is removed (each gets a `room` event), so nobody can
    send in it or add anyone to it again. Its messages stay stored, readable by nobody."""
    await admin.shutdown_room(rest_state().app, identity.user_id, room_id)
    return empty_response(204)


@requires_admin
@validate_querystring(AuditQuery)
@document_response(AuditPage)
@api_doc(errors=(400, 401, 403))
async def admin_audit(identity: Identity, query_args: AuditQuery) -> Response:
    """The audit log, newest first: who (null: the console) did what to what, and when. A
    page with `has_more` ends with `next`, the `before` of the next page."""
    entries, next_page = await audit.page(
        rest_state().app,
        query_args.limit,
        query_args.before,
        query_args.target_kind,
        query_args.target_id,
    )
    reply: dict[str, Any] = {"entries": [e.wire() for e in entries], "has_more": bool(next_page)}
    if next_page is not None:
        reply["next"] = next_page
    return json_response(reply)


AREA = Area(
    routes=[
        ("GET", ADMIN + "/users", admin_list_users),
        ("GET", USER, admin_get_user),
        ("DELETE", USER, admin_erase_user),
        ("POST", USER + "/disable", admin_disable_user),
        ("POST", USER + "/enable", admin_enable_user),
        ("POST", USER + "/demote", admin_demote_user),
        ("POST", USER + "/password", admin_set_password),
        ("GET", USER + "/logins", admin_list_logins),
        ("DELETE", USER + "/logins", admin_end_logins),
        ("DELETE", USER + "/logins/<login_id>", admin_end_login),
        ("GET", ADMIN + "/rooms", admin_list_rooms),
        ("POST", ADMIN + "/rooms/<room_id>/shutdown", admin_shutdown_room),
        ("GET", ADMIN + "/audit", admin_audit),
    ],
    features=("admin",),
)
