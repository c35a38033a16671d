"""The retention endpoints of docs/protocol.md ("Retention"): a room's own setting.

`chatcore.server.retention` checks membership (an outsider gets `not_found`), who may change
the setting and its bounds; the views only read the request and shape the reply.
"""

from __future__ import annotations

from quart import Response
from quart_schema import document_request, document_response

from chatcore.errors import bad_request
from chatcore.models import Identity
from chatcore.server import retention
from chatcore_rest.auth import requires_auth
from chatcore_rest.endpoints.base import API_PREFIX, Area, json_object
from chatcore_rest.jsonio import json_response
from chatcore_rest.openapi import api_doc
from chatcore_rest.schemas import RetentionBody, RetentionRequest
from chatcore_rest.state import rest_state

__all__ = ["AREA"]

RETENTION = API_PREFIX + "/rooms/<room_id>/retention"


@requires_auth
@document_response(RetentionBody)
@api_doc(errors=(401, 404))
async def get_retention(identity: Identity, room_id: str) -> Response:
    """How long the room keeps its messages (any member may read it)."""
    setting = await retention.get_setting(rest_state().app, identity.user_id, room_id)
    return json_response(setting)


@requires_auth
@document_request(RetentionRequest)
@document_response(RetentionBody)
@api_doc(errors=(400, 401, 403, 404, 413))
async def put_retention(identity: Identity, room_id: str) -> Response:
    """Set the room's own retention in days (1 to 36500), or null for the server's default:
    a group's owner or admins, either member of a direct room."""
    data = await json_object()
    if "days" not in data:
        raise bad_request("days is required: a number of days from 1 to 36500, or null.")
    setting = await retention.set_setting(rest_state().app, identity.user_id, room_id, data["days"])
    return json_response(setting)


AREA = Area(
    routes=[
        ("GET", RETENTION, get_retention),
        ("PUT", RETENTION, put_retention),
    ],
    features=("retention",),
)
