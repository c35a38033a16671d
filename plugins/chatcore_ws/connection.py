"""The `chatcore.interfaces.Connection` a session writes to, on a `websockets` connection.

How writing works, and why (fan-out performance):

`websockets`' own `send()` is a coroutine: it frames the message, writes it to the asyncio
transport and then awaits `drain()` while the transport's buffer is above its high-water mark.
Awaiting it per event would need either a task per message or a queue plus a writer task per
connection, and the queue would hold a second copy of what the transport already buffers.

Instead we do what `websockets.asyncio.server.broadcast()` does: frame the bytes with the
sans-I/O protocol (`protocol.send_text(data)`: UTF-8 JSON bytes go out as a TEXT frame
without being decoded) and hand them to the transport at once (`connection.send_data()`).
There is no task and no queue of ours: the transport's write buffer *is* the per-session buffer
of unsent data, the kernel drains it in order, and `send` never waits. After each write we
look at `transport.get_write_buffer_size()`: over `send_buffer_bytes` the client is not keeping
up, and the session is closed with 1013 (PROTOCOL.md item 12; the client reconnects and syncs).

Ordering: every write, including the close frame, goes into the same buffer in call order, so
the answers to the frames a session handled before a close always precede that close.
One encoded event (`bytes`) is shared by all its recipients; only the few header bytes of the
frame are made per connection.

`close` is synchronous too: it queues the close frame behind whatever is unsent and arms a
timer that aborts the TCP connection when the client does not complete the closing handshake
in time (a client that stopped reading never will).
"""

from __future__ import annotations

import asyncio
import logging

from websockets.asyncio.server import ServerConnection
from websockets.protocol import State

log = logging.getLogger("chatcore_ws")

CLOSE_TRY_AGAIN_LATER = 1013


class WsConnection:
    """One client connection as a session sees it: `send` never waits, `close` never waits."""

    __slots__ = ("_close_timeout", "_closing", "_limit", "_ws", "remote_address")

    def __init__(self, ws: ServerConnection, send_buffer_bytes: int, close_timeout: float) -> None:
        self._ws = ws
        self._limit = send_buffer_bytes
        self._close_timeout = close_timeout
        self._closing = False
        peer = ws.remote_address
        self.remote_address: str | None = str(peer[0]) if peer else None

    @property
    def buffered(self) -> int:
        """Bytes written but not yet taken by the kernel."""
        return self._ws.transport.get_write_buffer_size()

    def send(self, data: bytes) -> None:
        """Queue one JSON event (UTF-8 bytes) as a TEXT frame; dropped once closing."""
        ws = self._ws
        if self._closing or ws.protocol.state is not State.OPEN:
            return
        try:
            ws.protocol.send_text(data)
            ws.send_data()
        except Exception as exc:  # a transport that broke under us: end the connection
            log.debug("write failed, aborting the connection: %r", exc)
            self._closing = True
            ws.transport.abort()
            return
        if self.buffered > self._limit:
            log.info("closing a session that does not read (%d bytes unsent)", self.buffered)
            self.close(CLOSE_TRY_AGAIN_LATER, "too much unsent data; reconnect and sync")

    def close(self, code: int, reason: str = "") -> None:
        """Queue a close frame after everything sent so far; idempotent."""
        if self._closing:
            return
        self._closing = True
        ws = self._ws
        if ws.protocol.state is not State.OPEN:
            return
        try:
            ws.protocol.send_close(code, reason)
            ws.send_data()
        except Exception as exc:
            log.debug("close failed, aborting the connection: %r", exc)
            ws.transport.abort()
            return
        asyncio.get_running_loop().call_later(self._close_timeout, self._abort_if_open)

    def _abort_if_open(self) -> None:
        if self._ws.protocol.state is not State.CLOSED:
            self._ws.transport.abort()
