"""The messages endpoints of docs/protocol.md ("Messages"): history, send, edit, delete, read.

The views stay thin: `chatcore.server.messages` checks membership (an outsider gets `not_found`),
who may edit or delete, every value and the idempotency of sends (the same path the WebSocket
`send` takes); the views only read the request and shape the reply.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quart import Response
from quart_schema import document_response, validate_querystring, validate_request

from chatcore.models import Identity
from chatcore.server import messages
from chatcore_rest.auth import requires_auth
from chatcore_rest.endpoints.base import Area
from chatcore_rest.endpoints.rooms import ROOMS
from chatcore_rest.jsonio import empty_response, json_response
from chatcore_rest.openapi import Reply, api_doc
from chatcore_rest.request import JSON_BODY_LIMIT, BodyLimit
from chatcore_rest.schemas import (
    EditMessageRequest,
    HistoryQuery,
    MessageBody,
    MessagePage,
    ReadRequest,
    SendMessageRequest,
)
from chatcore_rest.state import rest_state

if TYPE_CHECKING:
    from chatcore.settings import LimitsSettings

__all__ = ["AREA", "MESSAGES", "body_limits"]

MESSAGES = ROOMS + "/<room_id>/messages"
#: Room in a send's JSON body for everything but the message body: ref, ids, escapes, spaces.
SEND_SLACK_BYTES = 64 * 1024
#: A body of max_message_bytes of UTF-8 may take up to three times as many bytes once a client
#: escapes it as JSON ASCII (`\ud83d\ude00` for a 4-byte emoji, `\u00e9` for a 2-byte letter),
#: as Python's json.dumps does by default. Such a message is the service's to judge.
JSON_ESCAPE_FACTOR = 3


@requires_auth
@validate_querystring(HistoryQuery)
@document_response(MessagePage)
@api_doc(errors=(400, 401, 404))
async def list_messages(identity: Identity, room_id: str, query_args: HistoryQuery) -> Response:
    """A page of a room's history.

    `after_seq=N`: the messages after N, oldest first; `before_seq=N`: those before N, newest
    first; neither: the newest, newest first. Both at once is a bad request.
    """
    page, has_more = await messages.history(
        rest_state().app,
        identity.user_id,
        room_id,
        after_seq=query_args.after_seq,
        before_seq=query_args.before_seq,
        limit=query_args.limit,
    )
    return json_response({"messages": [m.wire() for m in page], "has_more": has_more})


@requires_auth
@validate_request(SendMessageRequest)
@document_response(MessageBody, 201)
@document_response(MessageBody, 200)
@api_doc(errors=(400, 401, 403, 404, 413, 503))
async def send_message(identity: Identity, room_id: str, data: SendMessageRequest) -> Response:
    """Send a message: 201 when stored now, 200 with the stored message when `ref` was used.

    The key (sender, room, ref) is shared with the WebSocket `send`: a repeat returns the stored
    message unchanged, whatever its new content. A refused send stores nothing and leaves its
    ref unused.
    """
    stored = await messages.send(
        rest_state().app, identity.user_id, room_id, data.model_dump(exclude_unset=True)
    )
    return json_response(stored.message.wire(), 201 if stored.created else 200)


@requires_auth
@validate_request(EditMessageRequest)
@document_response(MessageBody)
@api_doc(errors=(400, 401, 403, 404, 409, 413))
async def edit_message(
    identity: Identity, room_id: str, message_id: str, data: EditMessageRequest
) -> Response:
    """Replace the body of a text message you sent; members receive `message_updated`."""
    message = await messages.edit(
        rest_state().app, identity.user_id, room_id, message_id, data.body
    )
    return json_response(message.wire())


@requires_auth
@api_doc(errors=(401, 403, 404), replies={204: Reply("The message is deleted (now or already).")})
async def delete_message(identity: Identity, room_id: str, message_id: str) -> Response:
    """Delete a message you sent, or any message of a group room you own.

    It keeps its seq, with `body` "" and `deleted` true; members receive `message_updated`.
    """
    await messages.delete(rest_state().app, identity.user_id, room_id, message_id)
    return empty_response(204)


@requires_auth
@validate_request(ReadRequest)
@api_doc(errors=(400, 401, 404, 413), replies={204: Reply("The read seq is recorded.")})
async def mark_read(identity: Identity, room_id: str, data: ReadRequest) -> Response:
    """A read receipt: clamped to the room's last seq, it never moves backwards."""
    await messages.mark_read(rest_state().app, identity.user_id, room_id, data.seq)
    return empty_response(204)


def send_body_limit(limits: LimitsSettings) -> int:
    """The largest JSON body of a send or an edit: room for the largest message body the service
    accepts, also when escaped as JSON ASCII (control characters aside, at 6 bytes each)."""
    return max(JSON_BODY_LIMIT, JSON_ESCAPE_FACTOR * limits.max_message_bytes + SEND_SLACK_BYTES)


def body_limits(limits: LimitsSettings) -> list[BodyLimit]:
    """Routes whose body may exceed the app's JSON limit: a message over the limit must get
    the service's own 413 (`A message body is at most N bytes`), not the transport's."""
    return [
        BodyLimit("POST", MESSAGES, send_body_limit(limits)),
        BodyLimit("PATCH", MESSAGES + "/<message_id>", send_body_limit(limits)),
    ]


AREA = Area(
    routes=[
        ("GET", MESSAGES, list_messages),
        ("POST", MESSAGES, send_message),
        ("PATCH", MESSAGES + "/<message_id>", edit_message),
        ("DELETE", MESSAGES + "/<message_id>", delete_message),
        ("POST", ROOMS + "/<room_id>/read", mark_read),
    ],
    features=("messages",),
    body_limits=body_limits,
)
