"""`chatcore_ws.connection` frames a session's events itself when no extension is negotiated:
the bytes must be those `websockets` makes, at every length boundary of the frame header, and
clients must read them (with compression on, `websockets` frames them)."""

from __future__ import annotations

import asyncio

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.protocol import State
from websockets.server import ServerProtocol

from chatcore_ws.connection import WsConnection, text_frame

WAIT = 5.0
#: Payload lengths around the header's three forms (7-bit, 16-bit and 64-bit lengths).
LENGTHS = [0, 1, 125, 126, 127, 65_535, 65_536, 70_000]


@pytest.mark.parametrize("length", LENGTHS)
def test_a_text_frame_is_the_bytes_websockets_makes(length: int) -> None:
    data = b"x" * length
    protocol = ServerProtocol()
    protocol.state = State.OPEN
    protocol.send_text(data)
    assert [text_frame(data)] == protocol.data_to_send()


@pytest.mark.anyio
@pytest.mark.parametrize("compression", [None, "deflate"])
async def test_clients_read_every_event_in_order_framed_either_way(compression: str | None) -> None:
    events = [b'{"n":%d,"pad":"%s"}' % (n, b"y" * length) for n, length in enumerate(LENGTHS)]

    async def handler(ws: ServerConnection) -> None:
        conn = WsConnection(ws, send_buffer_bytes=1 << 24, close_timeout=WAIT)
        for event in events:
            conn.send(event)
        await conn.drain()
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, compression=compression, max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        url = f"ws://127.0.0.1:{port}"
        async with connect(url, compression=compression, max_size=None) as ws:
            negotiated = [extension.name for extension in ws.protocol.extensions]
            assert bool(negotiated) is (compression is not None)
            received = [await asyncio.wait_for(ws.recv(decode=False), WAIT) for _ in events]
    assert received == events
