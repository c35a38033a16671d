"""The WebSocket server: its own listener on the `websockets` library (asyncio implementation).

This module owns the sockets only: the handshake (origin check), reading frames, the frame
size bound, the auth deadline and a graceful stop. What a frame means is decided by
`chatcore.server.realtime.session.Session`, so every transport behaves alike.

One task per connection (the handler `websockets` runs) reads frames and handles them one at
a time, in order; writing never needs a task (see `chatcore_ws.connection`).
"""

from __future__ import annotations

import asyncio
import http
import logging
import math
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from chatcore.failures import reason
from chatcore.server.app import StartupError
from chatcore.server.realtime.session import Session
from chatcore_ws.connection import WsConnection
from chatcore_ws.origins import OriginPolicy
from chatcore_ws.settings import WebSocketSettings

if TYPE_CHECKING:
    from chatcore.server.app import App

log = logging.getLogger(__name__)

CLOSE_GOING_AWAY = 1001
#: How long a client has to answer our close frame before the TCP connection is dropped.
CLOSE_TIMEOUT_SECONDS = 5.0
#: While stopping: a session keeps answering frames until none has arrived for this long.
#: Frames a client sent before the stop are already in this host's socket buffers and are read
#: within milliseconds; the window only has to outlast the event loop's turn-around.
DRAIN_IDLE_SECONDS = 0.1
#: ... and a client that keeps sending is cut off this long after the stop began.
DRAIN_MAX_SECONDS = 1.0
#: Upper bound of `stop()`: frames being handled, the drain and the closing handshakes.
STOP_TIMEOUT_SECONDS = 10.0


class _Link:
    """Per-connection state the transport needs to stop it: is it draining, and a handle on
    the deadline of the read it is waiting in (so `stop()` can shorten it)."""

    __slots__ = ("_deadline", "_drain_end", "_reading", "ws")

    def __init__(self, ws: ServerConnection, stopping: bool) -> None:
        self.ws = ws
        self._deadline: asyncio.Timeout | None = None
        self._drain_end: float | None = None
        self._reading = False  # waiting in `frames`' read (its deadline is armed only then)
        if stopping:
            self.begin_drain()

    @property
    def stopping(self) -> bool:
        return self._drain_end is not None

    async def receive(self, seconds: float | None) -> bytes | None:
        """The next frame's payload, or None when `seconds` passed (or, when stopping, when no
        frame came within the drain window). Raises ConnectionClosed at the end.

        `recv(decode=False)` hands text frames over as the UTF-8 bytes orjson parses directly.
        Cancelling `recv` is safe in websockets (a frame is never lost), so shortening the
        deadline from `stop()` cannot drop a frame that was already read.
        """
        loop = asyncio.get_running_loop()
        deadline = math.inf if seconds is None else loop.time() + seconds
        if self._drain_end is not None:
            deadline = min(deadline, loop.time() + DRAIN_IDLE_SECONDS, self._drain_end)
        try:
            async with asyncio.timeout_at(None if deadline == math.inf else deadline) as cm:
                self._deadline = cm
                return await self.ws.recv(decode=False)
        except TimeoutError:
            return None
        finally:
            self._deadline = None

    async def frames(
        self, handle: Callable[[bytes], Awaitable[None]], open_: Callable[[], bool]
    ) -> bool:
        """Read frames and `handle` each, one at a time, while `open_()`: the session's read
        loop. True when it ended because the server is stopping and no frame came within the
        drain window (everything received is answered); False when the session closed.
        Raises ConnectionClosed at the end of the connection.

        One deadline serves the whole loop, armed only while a read waits and only once the
        server is stopping: a frame costs no timer of its own, and handling a frame is never
        interrupted by the deadline (it can only fire inside the read, where cancelling is
        safe, see `receive`).
        """
        ws = self.ws
        try:
            async with asyncio.timeout(None) as cm:
                self._deadline = cm
                while open_():
                    if self._drain_end is not None:
                        cm.reschedule(self._drain_deadline())
                    self._reading = True
                    try:
                        raw = await ws.recv(decode=False)
                    finally:
                        self._reading = False
                    if self._drain_end is not None:
                        cm.reschedule(None)
                    await handle(raw)
        except TimeoutError:
            return True
        finally:
            self._deadline = None
        return False

    def _drain_deadline(self) -> float:
        assert self._drain_end is not None
        return min(asyncio.get_running_loop().time() + DRAIN_IDLE_SECONDS, self._drain_end)

    def begin_drain(self) -> None:
        """Answer what was already sent, then stop (see `DRAIN_IDLE_SECONDS`)."""
        now = asyncio.get_running_loop().time()
        self._drain_end = now + DRAIN_MAX_SECONDS
        cm = self._deadline
        if cm is not None and (self._reading or cm.when() is not None):
            soon = now + DRAIN_IDLE_SECONDS
            when = cm.when()
            cm.reschedule(soon if when is None else min(when, soon))


class WebSocketTransport:
    """`chatcore.interfaces.Transport` for `[websocket]`."""

    name = "websocket"

    def __init__(self, app: App) -> None:
        self.app = app
        self.settings = app.settings.section("websocket", WebSocketSettings)
        self.origins = OriginPolicy.build(self.settings.allowed_origins, app.settings.server.origin)
        self._server: Server | None = None
        self._port = self.settings.port
        self._links: set[_Link] = set()
        self._stopping = False

    @property
    def url(self) -> str:
        """`public_url`, else `ws://HOST:PORT` with the port actually bound."""
        if self.settings.public_url:
            return self.settings.public_url
        host = self.settings.host
        host = f"[{host}]" if ":" in host else host
        return f"ws://{host}:{self._port}"

    async def start(self) -> None:
        s = self.settings
        try:
            self._server = await serve(
                self._handle,
                s.host,
                s.port,
                process_request=self._check_origin,
                compression="deflate" if s.compression else None,
                max_size=self.app.settings.limits.frame_bytes,  # a bigger frame closes with 1009
                ping_interval=s.ping_interval_seconds,
                ping_timeout=s.ping_timeout_seconds,
                close_timeout=CLOSE_TIMEOUT_SECONDS,
                open_timeout=10,
                server_header=None,
            )
        except OSError as exc:
            raise StartupError(
                f"the WebSocket server cannot listen on {s.host}:{s.port} "
                f"([websocket] host/port): {reason(exc)}"
            ) from None
        sockets = self._server.sockets
        if sockets:
            self._port = int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop accepting; let each session finish the frame it is handling and answer what
        its client already sent; close every session with 1001; all within a bound."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping = True
        # Handshakes still in progress are refused with 503 by websockets from now on.
        server.close(close_connections=False)
        for link in list(self._links):
            link.begin_drain()
        try:
            async with asyncio.timeout(STOP_TIMEOUT_SECONDS):
                await server.wait_closed()
            return
        except TimeoutError:
            log.warning("sessions did not finish within %ss; dropping them", STOP_TIMEOUT_SECONDS)
        for link in list(self._links):
            link.ws.transport.abort()
        for task in list(server.handler_tasks):
            task.cancel()
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_SECONDS):
                await server.wait_closed()
        except TimeoutError:
            log.error("WebSocket connection handlers did not end")

    # --- handshake ----------------------------------------------------------------------------

    def _check_origin(self, ws: ServerConnection, request: Request) -> Response | None:
        if self.origins.allows(request.headers.get_all("Origin")):
            return None
        return ws.respond(http.HTTPStatus.FORBIDDEN, "This origin may not open a session.\n")

    # --- one connection -----------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        s = self.settings
        # The handshake is over and nothing reads its headers again (the origin was checked):
        # kept, they would stay for the life of the connection, a few KB of small objects.
        # (The request object itself stays: websockets tells the handshake from frames by it.)
        if ws.request is not None:
            ws.request.headers.clear()
        ws.response = None
        conn = WsConnection(ws, s.send_buffer_bytes, CLOSE_TIMEOUT_SECONDS)
        session = Session(
            self.app,
            conn,
            rate_per_second=s.rate_per_second,
            rate_burst=s.rate_burst,
            rate_close_after=s.rate_close_after,
        )
        link = _Link(ws, self._stopping)
        self._links.add(link)
        try:
            raw = await link.receive(s.auth_timeout_seconds)
            if raw is None:
                if link.stopping:
                    session.close(CLOSE_GOING_AWAY, "server stopping")
                else:
                    session.auth_timed_out()
            elif await session.authenticate(raw):
                if await link.frames(session.handle, lambda: session.closed_code is None):
                    # Stopping, and everything received is answered.
                    await session.drain()  # sends still waiting for their commit
                    session.close(CLOSE_GOING_AWAY, "server stopping")
            # The session closed the connection: discard what the client still sends until it
            # answers the close frame (or the close timer drops it). Reading on keeps the
            # receive buffer from filling up and hiding the client's close frame.
            while True:
                await ws.recv(decode=False)
        except ConnectionClosed:
            pass
        finally:
            self._links.discard(link)
            await session.closed()
