"""The WebSocket transport's own parts, in process on real loopback sockets: config, origins,
listening, and the bounded per-session send buffer (docs/protocol.md item 12)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from chatcore.server import accounts
from chatcore.server.app import App, StartupError
from chatcore.settings import ConfigError
from chatcore.testing.server import FAST_AUTH
from chatcore_ws.connection import WsConnection
from chatcore_ws.origins import OriginPolicy, default_origins, normalize_origin
from chatcore_ws.settings import WebSocketSettings
from chatcore_ws.transport import WebSocketTransport

WAIT = 5.0


def app_with(**overrides: object) -> App:
    return App.from_config(None, overrides=overrides)


# --- config -------------------------------------------------------------------------------------


def test_defaults_match_the_contract() -> None:
    ws = app_with().settings.section("websocket", WebSocketSettings)
    assert (ws.host, ws.port, ws.public_url, ws.allowed_origins) == ("127.0.0.1", 8081, None, None)
    assert (ws.rate_per_second, ws.rate_burst, ws.rate_close_after) == (20, 100, 100)
    assert ws.auth_timeout_seconds == 10
    assert ws.compression is False
    assert ws.send_buffer_bytes == 1024 * 1024


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("public_url", "http://chat.example.com"),
        ("allowed_origins", ["https://chat.example.com/app"]),
        ("allowed_origins", ["chat.example.com"]),
        ("rate_per_second", 0),
        ("port", 70000),
        ("colour", "blue"),
    ],
)
def test_a_bad_websocket_key_is_a_config_error_naming_it(key: str, value: object) -> None:
    with pytest.raises(ConfigError) as bad:
        app_with(websocket={key: value})
    assert any(p.startswith(f"websocket.{key}") for p in bad.value.problems), bad.value.problems


# --- origins ------------------------------------------------------------------------------------


def test_origins_compare_scheme_host_and_port() -> None:
    assert normalize_origin("https://Chat.Example.com") == ("https", "chat.example.com", 443)
    assert normalize_origin("https://chat.example.com:443/") == ("https", "chat.example.com", 443)
    assert normalize_origin("http://[::1]:8080") == ("http", "::1", 8080)
    for not_an_origin in ("null", "chat.example.com", "https://x.example/path", "http://a:b@x"):
        assert normalize_origin(not_an_origin) is None


def test_default_origins_add_loopback_forms_only_for_a_loopback_host() -> None:
    assert set(default_origins("http://127.0.0.1:8080")) == {
        ("http", "127.0.0.1", 8080),
        ("http", "localhost", 8080),
    }
    assert set(default_origins("http://localhost:9000")) == {
        ("http", "localhost", 9000),
        ("http", "127.0.0.1", 9000),
    }
    assert default_origins("https://chat.example.com") == [("https", "chat.example.com", 443)]


def test_origin_policy() -> None:
    policy = OriginPolicy.build(None, "http://127.0.0.1:8080")
    assert policy.allows([])  # no Origin: not a browser
    assert policy.allows(["http://localhost:8080"])
    assert not policy.allows(["http://localhost:8081"])
    assert not policy.allows(["https://localhost:8080"])
    assert not policy.allows(["null"])
    assert not policy.allows(["http://localhost:8080", "http://localhost:8080"])
    listed = OriginPolicy.build(["https://chat.example.com"], "http://127.0.0.1:8080")
    assert listed.allows(["https://chat.example.com"])
    assert not listed.allows(["http://127.0.0.1:8080"])


def test_the_default_origin_follows_server_public_url() -> None:
    app = app_with(server={"public_url": "https://chat.example.com/"})
    transport = WebSocketTransport(app)
    assert transport.origins.allows(["https://chat.example.com"])
    assert not transport.origins.allows(["http://127.0.0.1:8080"])


# --- listening ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_start_fails_clearly_when_the_port_is_taken(busy_port: int) -> None:
    transport = WebSocketTransport(app_with(websocket={"port": busy_port}))
    with pytest.raises(StartupError, match=rf"cannot listen on 127\.0\.0\.1:{busy_port}"):
        await transport.start()


@pytest.mark.anyio
async def test_url_reports_the_bound_port_or_public_url() -> None:
    transport = WebSocketTransport(app_with(websocket={"port": 0}))
    await transport.start()
    try:
        port = int(transport.url.rsplit(":", 1)[1])
        assert transport.url == f"ws://127.0.0.1:{port}" and port != 0
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT):
            pass  # it listens there
    finally:
        await transport.stop()
    public = WebSocketTransport(app_with(websocket={"public_url": "wss://chat.example.com/ws"}))
    assert public.url == "wss://chat.example.com/ws"


# --- the bounded send buffer (item 12) ----------------------------------------------------------


@pytest.mark.anyio
async def test_a_client_that_does_not_read_is_closed_1013_after_everything_in_order() -> None:
    """A client stops reading; the server keeps sending. Once more than `send_buffer_bytes`
    are unsent the connection closes with 1013, and the client, reading again, gets every
    event that was queued, in order, as text frames, and then the close."""
    limit = 256 * 1024
    event = b"x" * 16 * 1024
    overflowed = asyncio.Event()
    sent: list[int] = []

    async def handler(ws: ServerConnection) -> None:
        conn = WsConnection(ws, send_buffer_bytes=limit, close_timeout=WAIT)
        for index in range(10_000):  # at most 160 MiB: far beyond any socket buffer
            conn.send(b'{"i": %d, "pad": "%s"}' % (index, event))
            sent.append(index)
            # Frames are written at the end of the event loop's turn; the bound is checked
            # there, and closes the connection after the frame that overflowed it.
            await asyncio.sleep(0)  # let the kernel take what it can, as between events
            if conn.closing:
                break
        assert conn.buffered > limit
        conn.send(b'{"i": -1}')  # after the close: dropped
        overflowed.set()
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, compression=None, max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        # max_queue=1: the client stops reading from its socket until we call recv().
        async with connect(f"ws://127.0.0.1:{port}", max_queue=1, max_size=None) as ws:
            await asyncio.wait_for(overflowed.wait(), 60)
            received = []
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    raw = await asyncio.wait_for(ws.recv(), WAIT)
                    assert isinstance(raw, str)
                    received.append(json.loads(raw)["i"])
    assert received == sent
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013


@pytest.mark.anyio
async def test_drain_waits_for_a_slow_reader_so_bulk_sends_never_overflow_the_buffer() -> None:
    """A bulk sender (catch-up) that awaits `drain` after every few KB never queues much more
    than that ahead of the client: with a client that reads late, `drain` waits instead of the
    buffer overflowing, and once the client reads, everything arrives in order, with no 1013."""
    limit = 64 * 1024
    event = b"y" * 8 * 1024
    count = 320  # 2.5 MiB in all: far over the bound
    blocked = asyncio.Event()
    finished = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        # Small kernel buffers on both ends, so the client's not reading shows within KBs.
        ws.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32768)
        conn = WsConnection(ws, send_buffer_bytes=limit, close_timeout=WAIT)
        for index in range(count):
            conn.send(b'{"i": %d, "pad": "%s"}' % (index, event))
            if index % 2:  # every 16 KiB, as live.sync does every SYNC_DRAIN_BYTES
                drained = asyncio.ensure_future(conn.drain())
                done, _ = await asyncio.wait({drained}, timeout=0.01)
                if not done:
                    blocked.set()  # the client is not reading: drain holds the sender back
                await drained
                assert not conn.closing, "the bound was never crossed"
        conn.send(b'{"i": -1}')
        finished.set()
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, compression=None, max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
        client.connect(("127.0.0.1", port))
        url = f"ws://127.0.0.1:{port}"
        async with connect(url, sock=client, max_queue=1, max_size=None) as ws:
            await asyncio.wait_for(blocked.wait(), WAIT)  # the client has read nothing yet
            received = []
            while True:
                raw = await asyncio.wait_for(ws.recv(), WAIT)
                assert isinstance(raw, str)
                received.append(json.loads(raw)["i"])
                if received[-1] == -1:
                    break
            await asyncio.wait_for(finished.wait(), WAIT)
    assert received == [*range(count), -1]


# --- graceful stop --------------------------------------------------------------------------------


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[App]:
    """A started node in this process (real SQLite storage, memory broker, auth), serving the
    WebSocket transport alone."""
    app = App.from_config(
        None,
        overrides={
            "disabled_plugins": ["chatcore_rest"],
            "websocket": {"port": 0},
            "storage": {"url": f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}"},
            "media": {"url": f"file://{tmp_path / 'media'}"},
            "auth": {"secret": "test-secret-" + "x" * 40, **FAST_AUTH},
        },
    )
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


@pytest.mark.anyio
async def test_stop_answers_frames_not_yet_read_then_closes_1001(node: App) -> None:
    """`stop()` comes while the client's frames are still unread in the server's socket:
    every one of them is answered, in order, before the 1001."""
    await accounts.register(node, "stopper", "correct horse battery")
    tokens = await node.auth.login("stopper", "correct horse battery", None)
    transport = next(t for t in node.transports if isinstance(t, WebSocketTransport))
    async with connect(transport.url) as ws:
        await ws.send(json.dumps({"type": "auth", "token": tokens.access_token}))
        assert json.loads(await asyncio.wait_for(ws.recv(), WAIT))["type"] == "ready"
        refs = [f"s{i}" for i in range(50)]
        for ref in refs:
            await ws.send(json.dumps({"type": "ping", "ref": ref}))
        # Client and server share this event loop: the server has read none of them yet.
        stopping = asyncio.create_task(transport.stop())
        answers = []
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                answers.append(json.loads(await asyncio.wait_for(ws.recv(), WAIT)))
        await asyncio.wait_for(stopping, WAIT)
    assert answers == [{"type": "pong", "ref": ref} for ref in refs]
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    # It no longer accepts connections.
    with pytest.raises(OSError):
        async with connect(transport.url, open_timeout=WAIT):
            pass
