"""The rooms endpoints of docs/protocol.md ("Rooms (dialogs)"): create, list, view, membership.

The views stay thin: `chatcore.server.rooms` checks membership (an outsider gets `not_found`), owner
powers and every value, and answers with its own errors; the views only read the request and
shape the reply.
"""

from __future__ import annotations

from quart import Response
from quart_schema import document_request, document_response, validate_request

from chatcore.errors import bad_request
from chatcore.models import Identity
from chatcore.server import rooms
from chatcore_rest.auth import requires_auth
from chatcore_rest.endpoints.base import API_PREFIX, Area, json_object, validated
from chatcore_rest.jsonio import empty_response, json_response
from chatcore_rest.openapi import Reply, api_doc
from chatcore_rest.schemas import (
    AddMemberRequest,
    CreateRoomRequest,
    DirectRoomRequest,
    GroupRoomRequest,
    RoomBody,
    RoomList,
)
from chatcore_rest.state import rest_state

__all__ = ["AREA", "ROOMS"]

ROOMS = API_PREFIX + "/rooms"


@requires_auth
@document_request(CreateRoomRequest)
@document_response(RoomBody, 201)
@document_response(RoomBody, 200)
@api_doc(errors=(400, 401, 403, 404, 413))
async def create_room(identity: Identity) -> Response:
    """Open a direct room (200 with the existing one for the same pair) or create a group room.

    `{"kind": "direct", "user_id"}` or `{"kind": "group", "name", "member_ids"}`; the caller
    owns a group room it creates.
    """
    data = await json_object()
    # Told apart here rather than by validating the union model, so that a missing field is
    # named plainly (`user_id: Field required`) and an unknown kind gets a sentence of its own.
    app = rest_state().app
    kind = data.get("kind")
    if kind == "direct":
        direct = validated(DirectRoomRequest, data)
        view, created = await rooms.open_direct(app, identity.user_id, direct.user_id)
        return json_response(view.wire(), 201 if created else 200)
    if kind == "group":
        group = validated(GroupRoomRequest, data)
        view = await rooms.create_group(app, identity.user_id, group.name, group.member_ids)
        return json_response(view.wire(), 201)
    raise bad_request('kind must be "direct" or "group".')


@requires_auth
@document_response(RoomList)
@api_doc(errors=(401,))
async def list_rooms(identity: Identity) -> Response:
    """The caller's rooms, most recently active first (last message, else creation)."""
    views = await rooms.list_rooms(rest_state().app, identity.user_id)
    return json_response({"rooms": [view.wire() for view in views]})


@requires_auth
@document_response(RoomBody)
@api_doc(errors=(401, 404))
async def get_room(identity: Identity, room_id: str) -> Response:
    """One of the caller's rooms, with its last message and the caller's unread count."""
    view = await rooms.view(rest_state().app, identity.user_id, room_id)
    return json_response(view.wire())


@requires_auth
@validate_request(AddMemberRequest)
@api_doc(
    errors=(400, 401, 403, 404, 413),
    replies={204: Reply("The user is a member (now or already).")},
)
async def add_member(identity: Identity, room_id: str, data: AddMemberRequest) -> Response:
    """Add a user to a group room; any member may, but not across a block with them."""
    await rooms.add_member(rest_state().app, identity.user_id, room_id, data.user_id)
    return empty_response(204)


@requires_auth
@api_doc(errors=(400, 401, 403, 404), replies={204: Reply("The user is no longer a member.")})
async def remove_member(identity: Identity, room_id: str, user_id: str) -> Response:
    """Leave a group room (your own id), or, as its owner, remove another member."""
    await rooms.remove_member(rest_state().app, identity.user_id, room_id, user_id)
    return empty_response(204)


AREA = Area(
    routes=[
        ("POST", ROOMS, create_room),
        ("GET", ROOMS, list_rooms),
        ("GET", ROOMS + "/<room_id>", get_room),
        ("POST", ROOMS + "/<room_id>/members", add_member),
        ("DELETE", ROOMS + "/<room_id>/members/<user_id>", remove_member),
    ],
    features=("rooms",),
)
