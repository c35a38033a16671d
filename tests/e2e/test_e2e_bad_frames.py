"""Bad frames after `ready` (docs/protocol.md WebSocket item 10) in the messaging frame types:
each answers `error` `bad_request` (with the ref when one could be read), stores nothing, and
the session goes on."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from e2e_support import Crowd

from chatcore.testing.server import ServerProcess

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

Frame = Callable[[str], Any]  # room_id -> the frame (a dict, or raw text)

#: (frame builder, the ref the error must carry, or None when the frame has no readable ref)
CASES: list[Any] = [
    pytest.param(lambda r: {"type": "send", "room_id": r, "body": "x"}, None, id="send-no-ref"),
    pytest.param(
        lambda r: {"type": "send", "ref": "b-num", "room_id": r, "body": 5},
        "b-num",
        id="send-numeric-body",
    ),
    pytest.param(
        lambda r: {"type": "send", "ref": "b-kind", "room_id": r, "kind": "hologram", "body": "x"},
        "b-kind",
        id="send-unknown-kind",
    ),
    pytest.param(
        lambda r: {"type": "send", "ref": "x" * 129, "room_id": r, "body": "x"},
        None,
        id="send-ref-129-chars",
    ),
    pytest.param(
        lambda r: {"type": "send", "ref": "x" * 10_000, "room_id": r, "body": "x"},
        None,
        id="send-huge-ref",
    ),
    pytest.param(
        lambda r: {"type": "send", "ref": "", "room_id": r, "body": "x"}, None, id="send-empty-ref"
    ),
    pytest.param(
        lambda r: {"type": "send", "ref": 12, "room_id": r, "body": "x"}, None, id="send-ref-int"
    ),
    pytest.param(
        lambda r: {"type": "send", "ref": "b-room", "room_id": 17, "body": "x"},
        "b-room",
        id="send-room-id-int",
    ),
    pytest.param(
        lambda r: {"type": "send", "ref": "b-noroom", "body": "x"}, "b-noroom", id="send-no-room"
    ),
    pytest.param(lambda r: {"type": "teleport", "ref": "b-type"}, "b-type", id="unknown-type"),
    pytest.param(lambda r: {"ref": "b-notype"}, "b-notype", id="no-type"),
    pytest.param(
        lambda r: {"type": "sync", "ref": "b-seq", "rooms": {r: "5"}}, "b-seq", id="sync-seq-str"
    ),
    pytest.param(
        lambda r: {"type": "sync", "ref": "b-fseq", "rooms": {r: 1.5}},
        "b-fseq",
        id="sync-seq-float",
    ),
    pytest.param(
        lambda r: {"type": "sync", "ref": "b-list", "rooms": [r]}, "b-list", id="sync-rooms-list"
    ),
    pytest.param(
        lambda r: {"type": "sync", "ref": "b-ts", "rooms": {}, "since_ts": "yesterday"},
        "b-ts",
        id="sync-since-ts-str",
    ),
    pytest.param(
        lambda r: {"type": "read", "ref": "b-neg", "room_id": r, "seq": -1},
        "b-neg",
        id="read-negative-seq",
    ),
    pytest.param(
        lambda r: {"type": "read", "ref": "b-rstr", "room_id": r, "seq": "2"},
        "b-rstr",
        id="read-seq-str",
    ),
    pytest.param(
        lambda r: {"type": "read", "ref": "b-rnone", "room_id": r}, "b-rnone", id="read-no-seq"
    ),
    pytest.param(
        lambda r: {"type": "typing", "ref": "b-act", "room_id": r, "active": "yes"},
        "b-act",
        id="typing-active-str",
    ),
    pytest.param(lambda r: "{not json", None, id="invalid-json"),
    pytest.param(lambda r: json.dumps([{"type": "send"}]), None, id="array"),
    pytest.param(lambda r: "null", None, id="null"),
]


@pytest.mark.parametrize(("build", "ref"), CASES)
async def test_bad_frame_answers_bad_request_stores_nothing_and_the_session_goes_on(
    server: ServerProcess, build: Frame, ref: str | None
) -> None:
    """A malformed messaging frame after ready answers `error` `bad_request` (echoing a
    readable ref), stores nothing, and the same session then sends and reads normally."""
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.group("g", [bob])
        rid = room["id"]
        await alice.send_rest(rid, "before")
        ws, alice_ws = await crowd.sessions_of(bob, alice)

        await ws.send_frame(build(rid))
        error = await ws.recv("error")
        assert error["code"] == "bad_request", error
        assert isinstance(error["message"], str) and error["message"], error
        assert "Traceback" not in error["message"]
        assert error.get("ref") == ref, error

        await ws.ping()
        assert (await alice.room(rid))["last_seq"] == 1, "a bad frame stored a message"
        after = await ws.send_message(rid, "after")
        assert after["seq"] == 2
        await alice_ws.messages_until(rid, 2)
        assert await bob.unread(rid) == 1, "a bad read frame moved the read position"
