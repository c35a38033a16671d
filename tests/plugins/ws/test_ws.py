"""End-to-end tests of the WebSocket server (docs/protocol.md, "WebSocket protocol", items 1, 9-13,
and "Running a server"), against real `chatcore serve` processes with the `websockets` client."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from chatcore.settings import LimitsSettings
from chatcore.testing.server import TIMEOUT_SCALE, ServerProcess, start_server
from chatcore.testing.users import new_user

if TYPE_CHECKING:  # imported here only: pytest would try to collect a class named Test*
    from chatcore.testing.users import TestUser

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

WAIT = 5 * TIMEOUT_SCALE  # seconds to wait for an event that should come at once

#: A second node with tight settings, shared by the tests of limits. Flood control is per
#: session, so tests on it that send at most two quick frames per session are not affected.
TIGHT = {
    "websocket": {
        "auth_timeout_seconds": 1,
        "rate_per_second": 1,
        "rate_burst": 2,
        "rate_close_after": 5,
        "allowed_origins": ["https://chat.example.com"],
        "compression": True,
    },
    "limits": {"max_message_bytes": 100},
}


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with start_server(tmp_path_factory.mktemp("tight"), TIGHT) as running:
        yield running


# --- helpers ------------------------------------------------------------------------------------


async def recv_event(ws: ClientConnection) -> dict[str, Any]:
    """The next event; every server frame must be a TEXT frame holding one JSON object."""
    raw = await asyncio.wait_for(ws.recv(), WAIT)
    assert isinstance(raw, str), f"expected a text frame, got {type(raw).__name__}"
    event = json.loads(raw)
    assert isinstance(event, dict)
    return event


async def events_until_close(ws: ClientConnection) -> tuple[list[dict[str, Any]], int | None]:
    """Every event up to the server's close frame, and that frame's code."""
    events = []
    while True:
        try:
            events.append(await recv_event(ws))
        except ConnectionClosed as exc:
            return events, exc.rcvd.code if exc.rcvd else None


async def user_in_thread(server: ServerProcess) -> TestUser:
    return await asyncio.to_thread(new_user, server.api)


@asynccontextmanager
async def session(
    server: ServerProcess, token: str, **kwargs: Any
) -> AsyncIterator[tuple[ClientConnection, dict[str, Any]]]:
    """An authenticated session: the connection and its `ready` event."""
    async with connect(server.ws_url, **kwargs) as ws:
        await ws.send(json.dumps({"type": "auth", "token": token}))
        ready = await recv_event(ws)
        assert ready["type"] == "ready", ready
        yield ws, ready


async def ping(ws: ClientConnection, ref: str = "still-there") -> None:
    await ws.send(json.dumps({"type": "ping", "ref": ref}))
    assert await recv_event(ws) == {"type": "pong", "ref": ref}


def origin_of(server: ServerProcess, host: str) -> str:
    return f"http://{host}:{server.config['server']['port']}"


# --- item 1: auth -------------------------------------------------------------------------------


async def test_auth_answers_ready_with_user_session_and_rooms(server: ServerProcess) -> None:
    user = await user_in_thread(server)
    async with session(server, user.access_token) as (_, ready):
        assert set(ready) == {"type", "user", "session_id", "rooms"}
        assert ready["user"] == user.user
        assert set(ready["user"]) <= {"id", "username", "display_name", "avatar_media_id"}
        assert isinstance(ready["session_id"], str) and ready["session_id"]
        assert isinstance(ready["rooms"], list)


async def test_each_session_has_its_own_id(server: ServerProcess) -> None:
    user = await user_in_thread(server)
    async with session(server, user.access_token) as (_, one):
        async with session(server, user.access_token) as (_, two):
            assert one["session_id"] != two["session_id"]


@pytest.mark.parametrize(
    "first_frame",
    [
        pytest.param(json.dumps({"type": "auth", "token": "not-a-token"}), id="bad-token"),
        pytest.param(json.dumps({"type": "ping", "ref": "p"}), id="not-auth"),
        pytest.param("{not json", id="invalid-json"),
        pytest.param(json.dumps({"type": "auth"}), id="missing-token"),
        pytest.param(json.dumps({"type": "auth", "token": 42}), id="token-not-a-string"),
        pytest.param(json.dumps(["auth"]), id="not-an-object"),
    ],
)
async def test_a_first_frame_that_is_not_a_valid_auth_closes_4401(
    server: ServerProcess, first_frame: str
) -> None:
    async with connect(server.ws_url) as ws:
        await ws.send(first_frame)
        events, code = await events_until_close(ws)
    assert len(events) == 1
    assert events[0]["type"] == "error"
    assert events[0]["code"] == "unauthorized"
    assert events[0]["message"]
    assert code == 4401


async def test_no_auth_in_time_closes_4408_and_spares_authenticated_sessions(
    tight: ServerProcess,
) -> None:
    user = await user_in_thread(tight)
    async with session(tight, user.access_token) as (authenticated, _):
        async with connect(tight.ws_url) as silent:
            events, code = await events_until_close(silent)
        assert events == []
        assert code == 4408
        # The authenticated session is now past its own auth deadline, and still served.
        await ping(authenticated)


# --- item 9: ping -------------------------------------------------------------------------------


async def test_ping_answers_pong_with_the_same_ref(server: ServerProcess) -> None:
    user = await user_in_thread(server)
    async with session(server, user.access_token) as (ws, _):
        await ping(ws, "7f0c1c4e-ref")
        await ws.send(json.dumps({"type": "ping"}))
        assert await recv_event(ws) == {"type": "pong"}


async def test_frames_are_answered_in_order(server: ServerProcess) -> None:
    user = await user_in_thread(server)
    async with session(server, user.access_token) as (ws, _):
        refs = [f"r{i}" for i in range(30)]
        for ref in refs:
            await ws.send(json.dumps({"type": "ping", "ref": ref}))
        assert [(await recv_event(ws))["ref"] for _ in refs] == refs


# --- item 10: bad input after ready --------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "ref"),
    [
        pytest.param("{not json", None, id="invalid-json"),
        pytest.param(json.dumps([1, 2]), None, id="array"),
        pytest.param("42", None, id="number"),
        pytest.param(json.dumps({"ref": "r1"}), "r1", id="no-type"),
        pytest.param(json.dumps({"type": "shout", "ref": "r2"}), "r2", id="unknown-type"),
        pytest.param(
            json.dumps({"type": "typing", "active": True, "ref": "r3"}), "r3", id="missing-field"
        ),
        pytest.param(
            json.dumps({"type": "typing", "room_id": "x", "active": "yes", "ref": "r4"}),
            "r4",
            id="mistyped-field",
        ),
        pytest.param(json.dumps({"type": "ping", "ref": 5}), None, id="mistyped-ref"),
        pytest.param(
            json.dumps({"type": "auth", "token": "t", "ref": "r5"}), "r5", id="auth-again"
        ),
    ],
)
async def test_bad_input_after_ready_answers_bad_request_and_goes_on(
    server: ServerProcess, frame: str, ref: str | None
) -> None:
    user = await user_in_thread(server)
    async with session(server, user.access_token) as (ws, _):
        await ws.send(frame)
        error = await recv_event(ws)
        assert error["type"] == "error"
        assert error["code"] == "bad_request"
        assert isinstance(error["message"], str) and error["message"]
        assert "Traceback" not in error["message"]
        assert error.get("ref") == ref
        await ping(ws)


async def test_auth_after_ready_says_already_authenticated(server: ServerProcess) -> None:
    user = await user_in_thread(server)
    async with session(server, user.access_token) as (ws, _):
        await ws.send(json.dumps({"type": "auth", "token": user.access_token, "ref": "again"}))
        error = await recv_event(ws)
        assert error["code"] == "bad_request" and error["ref"] == "again"
        assert "already authenticated" in error["message"]


async def test_a_binary_frame_holding_json_is_read_like_text(server: ServerProcess) -> None:
    user = await user_in_thread(server)
    async with session(server, user.access_token) as (ws, _):
        await ws.send(json.dumps({"type": "ping", "ref": "bin"}).encode())
        assert await recv_event(ws) == {"type": "pong", "ref": "bin"}


async def test_a_frame_over_max_frame_bytes_closes_1009(tight: ServerProcess) -> None:
    server = tight
    frame_bytes = LimitsSettings(**TIGHT["limits"]).frame_bytes
    user = await user_in_thread(server)

    def padded_ping(size: int) -> str:
        frame = json.dumps({"type": "ping", "ref": "big", "pad": ""})
        return frame.replace('"pad": ""', '"pad": "' + "x" * (size - len(frame)) + '"')

    async with session(server, user.access_token) as (ws, _):
        exactly = padded_ping(frame_bytes)
        assert len(exactly.encode()) == frame_bytes
        await ws.send(exactly)
        assert await recv_event(ws) == {"type": "pong", "ref": "big"}
        await ws.send(padded_ping(frame_bytes + 1))
        events, code = await events_until_close(ws)
    assert events == []
    assert code == 1009


# --- item 11: flood control ---------------------------------------------------------------------


async def test_a_flood_is_refused_then_closed_4429(tight: ServerProcess) -> None:
    server = tight  # 1 frame a second, a burst of 2, closed after 5 refused in a row
    user = await user_in_thread(server)
    async with session(server, user.access_token) as (ws, _):
        refs = [f"f{i}" for i in range(7)]
        for ref in refs:  # quickly, without waiting for answers
            await ws.send(json.dumps({"type": "ping", "ref": ref}))
        events, code = await events_until_close(ws)
    assert events[:2] == [{"type": "pong", "ref": "f0"}, {"type": "pong", "ref": "f1"}]
    refused = events[2:]
    assert [e["ref"] for e in refused] == refs[2:]
    for error in refused:
        assert error["type"] == "error" and error["code"] == "rate_limited"
        assert isinstance(error["retry_after_ms"], int) and error["retry_after_ms"] > 0
    assert code == 4429


# --- item 13: origins ---------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_the_server_origin_is_allowed_by_default(server: ServerProcess, host: str) -> None:
    user = await user_in_thread(server)
    async with session(server, user.access_token, origin=origin_of(server, host)) as (ws, _):
        await ping(ws)


async def test_a_handshake_without_origin_is_allowed(server: ServerProcess) -> None:
    user = await user_in_thread(server)
    async with session(server, user.access_token) as (ws, _):
        await ping(ws)


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example",
        "https://127.0.0.1:{server_port}",  # another scheme
        "http://127.0.0.1:{ws_port}",  # another port
        "http://127.0.0.2:{server_port}",  # another host
        "null",
    ],
)
async def test_another_origin_is_refused_with_403(server: ServerProcess, origin: str) -> None:
    origin = origin.format(
        server_port=server.config["server"]["port"], ws_port=server.config["websocket"]["port"]
    )
    with pytest.raises(InvalidStatus) as refused:
        async with connect(server.ws_url, origin=origin):  # type: ignore[arg-type]
            pass
    assert refused.value.response.status_code == 403


async def test_allowed_origins_replace_the_default(tight: ServerProcess) -> None:
    server = tight
    user = await user_in_thread(server)
    async with session(server, user.access_token, origin="https://chat.example.com") as (ws, _):
        await ping(ws)
    with pytest.raises(InvalidStatus) as refused:
        async with connect(server.ws_url, origin=origin_of(server, "127.0.0.1")):  # type: ignore[arg-type]
            pass
    assert refused.value.response.status_code == 403


# --- compression ----------------------------------------------------------------------------------


async def test_compression_is_off_by_default_and_offered_when_enabled(
    server: ServerProcess, tight: ServerProcess
) -> None:
    for node, enabled in ((server, False), (tight, True)):
        user = await user_in_thread(node)
        async with session(node, user.access_token) as (ws, _):
            names = [extension.name for extension in ws.protocol.extensions]
            assert ("permessage-deflate" in names) is enabled, names
            await ping(ws)


# --- logout closes the login's sessions -----------------------------------------------------------


async def test_logout_closes_that_logins_sessions_with_4401(server: ServerProcess) -> None:
    user = await user_in_thread(server)
    other_login = await asyncio.to_thread(
        httpx.post,
        f"{server.api}/auth/login",
        json={"username": user.username, "password": user.password},
    )
    assert other_login.status_code == 200, other_login.text
    other_token = other_login.json()["access_token"]

    async with session(server, user.access_token) as (ws, _):
        async with session(server, other_token) as (other_ws, _):
            reply = await asyncio.to_thread(
                httpx.post, f"{server.api}/auth/logout", headers=user.headers
            )
            assert reply.status_code == 204, reply.text
            events, code = await events_until_close(ws)
            assert events == []
            assert code == 4401
            await ping(other_ws)  # another login of the same user stays open

    # The ended login's token no longer opens a session.
    async with connect(server.ws_url) as ws:
        await ws.send(json.dumps({"type": "auth", "token": user.access_token}))
        events, code = await events_until_close(ws)
    assert [e["code"] for e in events] == ["unauthorized"]
    assert code == 4401


# --- graceful stop ------------------------------------------------------------------------------


async def test_sigterm_answers_what_was_sent_then_closes_1001(
    server_factory: Callable[..., ServerProcess],
) -> None:
    """The contract's graceful stop, seen from a client. (That frames still unread when the
    transport stops get answered too is tested in process, in test_ws_transport.py.)"""
    server = server_factory()
    user = await user_in_thread(server)
    async with session(server, user.access_token) as (ws, _):
        refs = [f"s{i}" for i in range(50)]
        for ref in refs:
            await ws.send(json.dumps({"type": "ping", "ref": ref}))
        # Every frame is written to the socket before the signal: each must get its answer.
        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)
        exiting = asyncio.create_task(asyncio.to_thread(server.process.wait, 20 * TIMEOUT_SCALE))
        events, code = await events_until_close(ws)
        exit_code = await exiting
    assert events == [{"type": "pong", "ref": ref} for ref in refs]
    assert code == 1001
    assert exit_code == 0
