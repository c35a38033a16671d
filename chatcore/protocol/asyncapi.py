"""The AsyncAPI document of the WebSocket protocol, built from the frame models.

Served at `GET /api/v1/asyncapi.json` (no auth) by the core plugin. Client frames come from the
strict models in `chatcore.protocol.frames`, so the document cannot drift from what the server
accepts;
server events are described from the domain models they carry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, TypeAdapter

import chatcore
from chatcore.models import Message, RoomLogEntry, User
from chatcore.protocol.frames import CLIENT_FRAMES

if TYPE_CHECKING:
    from chatcore.server.app import App

ERROR_CODES = [
    "bad_request",
    "unauthorized",
    "forbidden",
    "not_found",
    "conflict",
    "too_large",
    "unsupported_media_type",
    "rate_limited",
    "internal",
    "unavailable",
]


def _obj(required: list[str], **props: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": props}


STR = {"type": "string"}
INT = {"type": "integer"}
SEQS = {"type": "object", "additionalProperties": INT}


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return TypeAdapter(model).json_schema(ref_template="#/components/schemas/{model}")


def server_events() -> dict[str, dict[str, Any]]:
    message = {"$ref": "#/components/schemas/Message"}
    user = {"$ref": "#/components/schemas/User"}
    return {
        "ready": _obj(
            ["type", "user", "session_id", "rooms"],
            type={"const": "ready"},
            user=user,
            session_id=STR,
            rooms={
                "type": "array",
                "items": _obj(["room_id", "last_seq"], room_id=STR, last_seq=INT),
            },
        ),
        "ack": _obj(["type", "ref", "message"], type={"const": "ack"}, ref=STR, message=message),
        "message": _obj(["type", "message"], type={"const": "message"}, message=message),
        "message_updated": _obj(
            ["type", "message"], type={"const": "message_updated"}, message=message
        ),
        "synced": _obj(
            ["type", "rooms", "has_more"],
            type={"const": "synced"},
            ref=STR,
            rooms=SEQS,
            has_more={"type": "object", "additionalProperties": {"type": "boolean"}},
            first_seq=SEQS,
        ),
        "typing": _obj(
            ["type", "room_id", "user_id", "active"],
            type={"const": "typing"},
            room_id=STR,
            user_id=STR,
            active={"type": "boolean"},
        ),
        "receipt": _obj(
            ["type", "room_id", "user_id", "seq"],
            type={"const": "receipt"},
            room_id=STR,
            user_id=STR,
            seq=INT,
        ),
        "presence": _obj(
            ["type", "user_id", "status"],
            type={"const": "presence"},
            user_id=STR,
            status={"enum": ["online", "offline"]},
        ),
        "room": _obj(["type", "room"], type={"const": "room"}, room={"type": "object"}),
        # Room administration: one change to a room, as its log keeps it (docs/protocol.md).
        "room_log": _obj(
            ["type", "entry"],
            type={"const": "room_log"},
            entry={"$ref": "#/components/schemas/RoomLogEntry"},
        ),
        "contact": _obj(
            ["type", "event"],
            type={"const": "contact"},
            event={"enum": ["invited", "accepted", "removed"]},
            invitation={"type": "object"},
            user=user,
        ),
        "pong": _obj(["type"], type={"const": "pong"}, ref=STR),
        "error": _obj(
            ["type", "code", "message"],
            type={"const": "error"},
            ref=STR,
            code={"enum": ERROR_CODES},
            message=STR,
            retry_after_ms=INT,
        ),
    }


def document(app: App) -> dict[str, Any]:
    """The AsyncAPI 3.0 document for this node's WebSocket server."""
    schemas: dict[str, Any] = {"User": _schema(User), "Message": _schema(Message)}
    schemas["RoomLogEntry"] = _schema(RoomLogEntry)
    messages: dict[str, Any] = {}
    for name, model in CLIENT_FRAMES.items():
        schema = _schema(model)
        schemas.update(schema.pop("$defs", {}))
        messages[f"client.{name}"] = {"name": name, "payload": schema}
    for name, payload in server_events().items():
        messages[f"server.{name}"] = {"name": name, "payload": payload}
    client = [{"$ref": f"#/channels/session/messages/{m}"} for m in messages if m[0] == "c"]
    server = [{"$ref": f"#/channels/session/messages/{m}"} for m in messages if m[0] == "s"]
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "chatcore WebSocket protocol",
            "version": chatcore.__version__,
            "description": "JSON text frames, one object each; see docs/protocol.md (version 1).",
        },
        "servers": {"node": {"host": (app.ws_url or "").split("://", 1)[-1], "protocol": "ws"}},
        "channels": {"session": {"address": "/", "messages": messages}},
        "operations": {
            "clientSends": {
                "action": "receive",
                "channel": {"$ref": "#/channels/session"},
                "messages": client,
            },
            "serverSends": {
                "action": "send",
                "channel": {"$ref": "#/channels/session"},
                "messages": server,
            },
        },
        "components": {"schemas": schemas},
    }
