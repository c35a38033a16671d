"""The fault-injection proxy (`chatcore.testing.tcp_proxy`) in front of a real echo server:
bytes flow both ways; a freeze holds them with every socket open; a cut resets every
connection; a refusing proxy drops new connections at once."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import pytest

from chatcore.testing.tcp_proxy import TcpProxy

pytestmark = pytest.mark.anyio

WAIT = 5.0
#: How long a frozen proxy must show no traffic: absence can only be shown over a window.
QUIET = 0.3


class EchoServer:
    """Sends back every byte it gets; closes its side at end of file. Counts what it saw."""

    def __init__(self) -> None:
        self.received = 0
        self.open = 0
        self.ended = 0
        self.changed = asyncio.Condition()
        self.server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._count("open", 1)
        try:
            while data := await reader.read(65536):
                self.received += len(data)
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
            await self._count("ended", 1)

    async def _count(self, name: str, step: int) -> None:
        async with self.changed:
            setattr(self, name, getattr(self, name) + step)
            self.changed.notify_all()

    async def wait_ended(self, count: int) -> None:
        async with asyncio.timeout(WAIT), self.changed:
            await self.changed.wait_for(lambda: self.ended >= count)


@pytest.fixture
async def echo() -> AsyncIterator[EchoServer]:
    server = EchoServer()
    server.server = await asyncio.start_server(server._handle, "127.0.0.1", 0)
    async with server.server:
        yield server


@contextlib.asynccontextmanager
async def connection(
    port: int,
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def echoed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes) -> bytes:
    writer.write(data)
    await writer.drain()
    async with asyncio.timeout(WAIT):
        return await reader.readexactly(len(data))


async def dropped(reader: asyncio.StreamReader) -> bool:
    """True when the peer ended the connection (reset or end of file) before sending a byte."""
    try:
        async with asyncio.timeout(WAIT):
            return await reader.read(1) == b""
    except ConnectionResetError:
        return True


async def connections(proxy: TcpProxy, count: int) -> None:
    async with asyncio.timeout(WAIT):
        await proxy.wait_until(lambda p: p.connections == count)


async def test_bytes_flow_both_ways_and_a_close_passes_through(echo: EchoServer) -> None:
    async with TcpProxy("127.0.0.1", echo.port) as proxy:
        assert proxy.url("ws", "/x") == f"ws://127.0.0.1:{proxy.port}/x"
        async with connection(proxy.port) as (reader, writer):
            assert await echoed(reader, writer, b"hello") == b"hello"
            big = bytes(range(256)) * 8192  # 2 MiB: more than any buffer, so drains happen
            assert await echoed(reader, writer, big) == big
            assert proxy.connections == 1 and proxy.accepted == 1
            # A half-close reaches the server, whose close comes back as end of file.
            writer.write_eof()
            async with asyncio.timeout(WAIT):
                assert await reader.read() == b""
        await connections(proxy, 0)
        await echo.wait_ended(1)
        assert echo.received == 5 + len(big)


async def test_freeze_holds_every_byte_with_the_sockets_open(echo: EchoServer) -> None:
    async with TcpProxy("127.0.0.1", echo.port) as proxy:
        async with connection(proxy.port) as (reader, writer):
            assert await echoed(reader, writer, b"before") == b"before"
            await proxy.freeze()
            writer.write(b"during")
            await writer.drain()
            async with connection(proxy.port) as (reader2, writer2):  # accepted while frozen
                writer2.write(b"new")
                await writer2.drain()
                await connections(proxy, 2)

                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(QUIET):
                        await reader.read(1)
                assert echo.received == len(b"before"), "bytes went through a frozen proxy"
                assert proxy.frozen and proxy.connections == 2
                assert not reader.at_eof() and not writer.is_closing()
                assert echo.ended == 0

                await proxy.thaw()
                async with asyncio.timeout(WAIT):
                    assert await reader.readexactly(6) == b"during"
                    assert await reader2.readexactly(3) == b"new"
                assert await echoed(reader, writer, b"after") == b"after"


async def test_a_close_during_a_freeze_reaches_the_server_after_the_thaw(
    echo: EchoServer,
) -> None:
    async with TcpProxy("127.0.0.1", echo.port) as proxy:
        async with connection(proxy.port) as (reader, writer):
            assert await echoed(reader, writer, b"x") == b"x"
            await proxy.freeze()
        # The client is gone; the server cannot know: the path is dead, not closed.
        assert proxy.connections == 1 and echo.ended == 0
        await proxy.thaw()
        await echo.wait_ended(1)
        await connections(proxy, 0)


async def test_cut_resets_every_connection_and_new_ones_work(echo: EchoServer) -> None:
    async with TcpProxy("127.0.0.1", echo.port) as proxy:
        async with (
            connection(proxy.port) as (reader1, writer1),
            connection(proxy.port) as (reader2, writer2),
        ):
            assert await echoed(reader1, writer1, b"one") == b"one"
            assert await echoed(reader2, writer2, b"two") == b"two"
            await proxy.freeze()  # a cut also drops what a frozen proxy holds
            await proxy.cut()
            assert proxy.connections == 0
            assert await dropped(reader1)
            assert await dropped(reader2)
            await echo.wait_ended(2)  # the server's side is reset too
            await proxy.thaw()
        async with connection(proxy.port) as (reader, writer):
            assert await echoed(reader, writer, b"again") == b"again"
        assert proxy.accepted == 3


async def test_refuse_drops_new_connections_and_keeps_live_ones(echo: EchoServer) -> None:
    async with TcpProxy("127.0.0.1", echo.port) as proxy:
        async with connection(proxy.port) as (reader, writer):
            assert await echoed(reader, writer, b"live") == b"live"  # joined before the refusal
            proxy.refuse(True)
            async with connection(proxy.port) as (refused_reader, _):
                assert await dropped(refused_reader)
            assert await echoed(reader, writer, b"still") == b"still"
            assert proxy.accepted == 1 and echo.open == 1
            proxy.refuse(False)
            async with connection(proxy.port) as (reader2, writer2):
                assert await echoed(reader2, writer2, b"back") == b"back"


async def test_a_target_that_is_down_drops_the_connection_at_once() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    async with TcpProxy("127.0.0.1", port) as proxy:
        async with connection(proxy.port) as (reader, _):
            assert await dropped(reader)
        assert proxy.connections == 0 and proxy.accepted == 0
