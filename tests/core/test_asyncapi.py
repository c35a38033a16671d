"""The AsyncAPI document of the WebSocket protocol is served and matches the frames."""

from __future__ import annotations

import httpx

from chatcore.protocol.frames import CLIENT_FRAMES

SERVER_EVENTS = {
    "ready", "ack", "message", "message_updated", "synced", "typing", "receipt", "presence",
    "room", "room_log", "contact", "pong", "error",
}


def test_asyncapi_document_lists_every_frame_and_event(server):
    reply = httpx.get(f"{server.api}/asyncapi.json")
    assert reply.status_code == 200
    doc = reply.json()
    assert doc["asyncapi"].startswith("3.")
    assert doc["servers"]["node"]["host"] == server.ws_url.removeprefix("ws://")
    messages = doc["channels"]["session"]["messages"]
    assert {m.removeprefix("client.") for m in messages if m.startswith("client.")} == set(
        CLIENT_FRAMES
    )
    assert {m.removeprefix("server.") for m in messages if m.startswith("server.")} == SERVER_EVENTS
    send = messages["client.send"]["payload"]
    assert {"type", "ref", "room_id"} <= set(send["required"])
    ack = messages["server.ack"]["payload"]
    assert ack["properties"]["message"] == {"$ref": "#/components/schemas/Message"}
    assert {"User", "Message", "RoomLogEntry"} <= set(doc["components"]["schemas"])
    room_log = messages["server.room_log"]["payload"]
    assert room_log["properties"]["entry"] == {"$ref": "#/components/schemas/RoomLogEntry"}
    entry = doc["components"]["schemas"]["RoomLogEntry"]
    assert {"id", "room_id", "ts", "actor_id", "action"} <= set(entry["required"])
