"""A TCP proxy for fault-injection tests: the network between a client and a server, breakable.

    async with TcpProxy("127.0.0.1", server_port) as proxy:
        client = connect_to(proxy.url("http"))   # or proxy.port
        await proxy.freeze()      # connections stay open, no byte moves either way
        await proxy.thaw()        # bytes flow again (what was held is delivered)
        await proxy.cut()         # every live connection reset at once (RST)
        proxy.refuse(True)        # new connections are reset as soon as they are accepted

It listens on a free loopback port and opens one connection to the target for every connection
it accepts, then copies bytes both ways. A frozen proxy is a half-dead network path (a NAT that
forgot the flow, a pulled cable): nothing is closed, nothing arrives, and only a peer's own
timeout can tell. Freezing covers connections accepted while frozen too. Pure asyncio streams:
it runs on the loop of the test that uses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable

__all__ = ["TcpProxy"]

CHUNK = 64 * 1024


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close the connection with a TCP reset (what a peer sees when a middlebox drops it), not
    an orderly FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            # Linger on with a zero timeout: close() discards unsent data and sends RST.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class _Link:
    """One proxied connection: the accepted (downstream) side and its upstream connection."""

    def __init__(self, down: asyncio.StreamWriter, up: asyncio.StreamWriter) -> None:
        self.down = down
        self.up = up
        self.pumps: list[asyncio.Task[None]] = []

    def reset(self) -> None:
        for writer in (self.down, self.up):
            _reset(writer)
        for pump in self.pumps:
            pump.cancel()


class TcpProxy:
    """A proxy on `host`:`port` (0: a free port) in front of `target_host`:`target_port`.

    `target_host` and `target_port` may be changed while it runs: each new connection goes to
    the target of the moment (a server that moved to other ports).
    """

    def __init__(
        self, target_host: str, target_port: int, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.host = host
        self._requested_port = port
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._refusing = False
        self._changed = asyncio.Condition()
        #: Connections accepted and joined to the target since the start (refused ones excluded).
        self.accepted = 0

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(
            self._handle, self.host, self._requested_port, limit=CHUNK
        )
        return self

    async def close(self) -> None:
        """Stop listening and reset every connection; safe to call twice."""
        if self._server is not None:
            self._server.close()
            await self.cut()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> TcpProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- where it is -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the proxy is not started")
        return int(self._server.sockets[0].getsockname()[1])

    def url(self, scheme: str = "http", path: str = "") -> str:
        """`scheme://host:port` + `path`: e.g. `proxy.url("ws")` for a WebSocket server."""
        return f"{scheme}://{self.host}:{self.port}{path}"

    @property
    def connections(self) -> int:
        """Live proxied connections."""
        return len(self._links)

    @property
    def frozen(self) -> bool:
        return not self._flowing.is_set()

    # --- faults ------------------------------------------------------------------------------

    async def freeze(self) -> None:
        """Stop forwarding bytes both ways on every connection, present and future, while
        keeping them open. Bytes already read are held, and delivered after `thaw`."""
        self._flowing.clear()

    async def thaw(self) -> None:
        """Forward bytes again."""
        self._flowing.set()

    async def cut(self) -> None:
        """Reset every live connection, both sides, at once; return when they are gone.
        New connections are accepted as before."""
        links = list(self._links)
        for link in links:
            link.reset()
        await self.wait_until(lambda proxy: not (proxy._links & set(links)))

    def refuse(self, refusing: bool = True) -> None:
        """Reset every new connection as soon as it is accepted (False: accept them again).
        Live connections are left alone; `cut` them to drop them too."""
        self._refusing = refusing

    async def wait_until(self, condition: Callable[[TcpProxy], bool]) -> None:
        """Return once `condition(proxy)` holds; checked whenever a connection opens or ends.
        Bound it with `asyncio.timeout`."""
        async with self._changed:
            await self._changed.wait_for(lambda: condition(self))

    # --- the copying -------------------------------------------------------------------------

    async def _handle(self, down_reader: asyncio.StreamReader, down: asyncio.StreamWriter) -> None:
        if self._refusing:
            _reset(down)
            return
        try:
            up_reader, up = await asyncio.open_connection(
                self.target_host, self.target_port, limit=CHUNK
            )
        except OSError:
            _reset(down)  # the target is down: the client sees its connection fail at once
            return
        if self._refusing:  # refused while connecting
            _reset(down)
            _reset(up)
            return
        link = _Link(down, up)
        link.pumps = [
            asyncio.create_task(self._pump(down_reader, up)),
            asyncio.create_task(self._pump(up_reader, down)),
        ]
        self.accepted += 1
        self._links.add(link)  # at once: a `cut` from now on sees it
        await self._notify()
        try:
            await self._carry(link)
        except BaseException:
            link.reset()  # cancelled (the loop is ending): leave nothing open
            raise
        finally:
            self._links.discard(link)
            await self._notify()

    async def _carry(self, link: _Link) -> None:
        """Wait for both directions to end; when one fails (a reset, a cut), reset the other
        too, also the pump still waiting for bytes that will never come."""
        pending = set(link.pumps)
        failed = False
        while pending and not failed:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            failed = any(task.cancelled() or task.exception() is not None for task in done)
        if failed:
            link.reset()
            await asyncio.wait(link.pumps)
        else:
            link.down.close()
            link.up.close()
        for task in link.pumps:  # retrieved, so none is logged as "never retrieved"
            if not task.cancelled():
                task.exception()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy `reader` to `writer` until end of file, which is passed on as a half-close (the
        other direction goes on until its own end). Waits at the gate while frozen, before
        reading and again before writing what was read."""
        while True:
            await self._flowing.wait()
            data = await reader.read(CHUNK)
            await self._flowing.wait()
            if not data:
                if writer.can_write_eof() and not writer.is_closing():
                    writer.write_eof()  # a half-close: the other direction goes on
                return
            writer.write(data)
            await writer.drain()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()
