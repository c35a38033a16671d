"""The `chatcore.interfaces.Connection` a session writes to, on a `websockets` connection.

How writing works, and why (fan-out performance):

`websockets`' own `send()` is a coroutine: it frames the message, writes it to the asyncio
transport and then awaits `drain()` while the transport's buffer is above its high-water mark.
Awaiting it per event would need either a task per message or a queue plus a writer task per
connection, and the queue would hold a second copy of what the transport already buffers.

Instead we frame the bytes with the sans-I/O protocol (`protocol.send_text(data)`: UTF-8 JSON
bytes go out as a TEXT frame without being decoded), as `websockets.asyncio.server.broadcast()`
does, and write them to the transport at the end of the event loop's turn: every frame a
session got during one turn (an ack and its message event; a fan-out batch of several messages;
a catch-up page) leaves in one `transport.write`, one system call instead of one per frame.
There is no task and no queue of ours: the protocol's output buffer holds a turn's frames, the
transport's write buffer *is* the per-session buffer of unsent data, the kernel drains it in
order, and `send` never waits. After each write we look at
`transport.get_write_buffer_size()`: over `send_buffer_bytes` the client is not keeping up, and
the session is closed with 1013 (docs/protocol.md item 12; the client reconnects and syncs).

Ordering: every write, including the close frame, goes into the same buffer in call order, so
the answers to the frames a session handled before a close always precede that close.
One encoded event (`bytes`) is shared by all its recipients; only the few header bytes of the
frame are made per connection.

`close` is synchronous too: it queues the close frame behind whatever is unsent and arms a
timer that aborts the TCP connection when the client does not complete the closing handshake
in time (a client that stopped reading never will).

Framing: a server's TEXT frame without extensions is a 2, 4 or 10 byte header and the payload
as it is (RFC 6455 5.2: no mask, no transformation), and every event a busy node sends is one.
`protocol.send_text` makes a frame object, checks it and serializes it through a buffer for
each; we make the same bytes from a header table and queue them exactly where `send_text`
would (the protocol's pending writes), so their order against pongs and the close frame is the
protocol's own. With an extension negotiated (compression), or the protocol's debug logging
on, every frame goes through `send_text`.
"""

from __future__ import annotations

import asyncio
import logging

from websockets.asyncio.server import ServerConnection
from websockets.protocol import State

log = logging.getLogger(__name__)

CLOSE_TRY_AGAIN_LATER = 1013

#: FIN + TEXT, then the unmasked length: the header of every frame of under 126 bytes.
_SHORT_HEADERS = tuple(bytes((0x81, n)) for n in range(126))


def text_frame(data: bytes) -> bytes:
    """One unmasked, unfragmented TEXT frame of `data`, without extensions (RFC 6455 5.2):
    byte for byte what `websockets` serializes for a server's `send_text(data)`."""
    n = len(data)
    if n < 126:
        return _SHORT_HEADERS[n] + data
    if n < 65536:
        return b"\x81\x7e" + n.to_bytes(2, "big") + data
    return b"\x81\x7f" + n.to_bytes(8, "big") + data


class WsConnection:
    """One client connection as a session sees it: `send` never waits, `close` never waits."""

    __slots__ = (
        "_close_timeout",
        "_closing",
        "_flush_due",
        "_limit",
        "_plain",
        "_ws",
        "remote_address",
    )

    def __init__(self, ws: ServerConnection, send_buffer_bytes: int, close_timeout: float) -> None:
        self._ws = ws
        self._limit = send_buffer_bytes
        self._close_timeout = close_timeout
        self._closing = False
        self._flush_due = False
        # Whether our frames are framed here (see the module); the protocol queues its frames
        # in `writes`, a list it replaces each time its output is taken.
        protocol = ws.protocol
        self._plain = (
            not protocol.extensions
            and not protocol.debug
            and isinstance(getattr(protocol, "writes", None), list)
        )
        peer = ws.remote_address
        self.remote_address: str | None = str(peer[0]) if peer else None

    @property
    def closing(self) -> bool:
        """True once a close was queued (by the session, or for a full buffer)."""
        return self._closing

    @property
    def buffered(self) -> int:
        """Bytes written but not yet taken by the kernel."""
        return self._ws.transport.get_write_buffer_size()

    def send(self, data: bytes) -> None:
        """Queue one JSON event (UTF-8 bytes) as a TEXT frame; dropped once closing.

        The frame is written with the others of this turn of the event loop (see the module)."""
        ws = self._ws
        protocol = ws.protocol
        if self._closing or protocol.state is not State.OPEN:
            return
        if self._plain:
            protocol.writes.append(text_frame(data))
        else:
            try:
                protocol.send_text(data)
            except Exception as exc:  # a protocol that broke under us: end the connection
                self._abort(exc)
                return
        if not self._flush_due:
            self._flush_due = True
            asyncio.get_running_loop().call_soon(self._flush)

    async def drain(self) -> None:
        """Write what this turn queued, then wait while the transport is above its high-water
        mark (`websockets`' own flow control: it resumes below the low-water mark)."""
        if self._flush_due:
            self._flush()
        if self._closing or self._ws.protocol.state is not State.OPEN:
            return
        try:
            await self._ws.drain()
        except Exception:  # the connection was lost while waiting: nothing left to wait for
            return

    def _flush(self) -> None:
        """Write every frame queued since the last flush in one go; enforce the buffer bound."""
        self._flush_due = False
        if not self._write():
            return
        if not self._closing and self.buffered > self._limit:
            log.info("closing a session that does not read (%d bytes unsent)", self.buffered)
            self.close(CLOSE_TRY_AGAIN_LATER, "too much unsent data; reconnect and sync")

    def _write(self) -> bool:
        """Hand the protocol's pending output to the transport; False when the connection broke.

        Frames are joined into one write. An empty chunk is the protocol asking to end the TCP
        stream after a closing handshake, as `websockets`' own `send_data` handles it."""
        ws = self._ws
        transport = ws.transport
        if transport.is_closing():  # the peer is gone: writing would only log warnings
            ws.protocol.data_to_send()
            return False
        try:
            chunks = ws.protocol.data_to_send()
            if chunks and all(chunks):
                transport.write(chunks[0] if len(chunks) == 1 else b"".join(chunks))
            elif chunks:
                for chunk in chunks:
                    if chunk:
                        transport.write(chunk)
                    elif transport.can_write_eof():
                        transport.write_eof()
                    else:
                        transport.close()
        except Exception as exc:
            self._abort(exc)
            return False
        return True

    def _abort(self, exc: Exception) -> None:
        log.debug("write failed, aborting the connection: %r", exc)
        self._closing = True
        self._ws.transport.abort()

    def close(self, code: int, reason: str = "") -> None:
        """Queue a close frame after everything sent so far, and write it all now; idempotent."""
        if self._closing:
            return
        self._closing = True
        ws = self._ws
        if ws.protocol.state is not State.OPEN:
            return
        try:
            ws.protocol.send_close(code, reason)
        except Exception as exc:
            self._abort(exc)
            return
        if self._write():
            asyncio.get_running_loop().call_later(self._close_timeout, self._abort_if_open)

    def _abort_if_open(self) -> None:
        if self._ws.protocol.state is not State.CLOSED:
            self._ws.transport.abort()
