"""Kept-alive HTTP connections for pushes, on asyncio's own transports: `Pool`.

A push is one small POST and a short answer, hundreds per second to a handful of services. A
general client (httpx) spends about 1.7 ms of CPU on each, more than the rest of a push
together; here a request is one `transport.write` of what `h11` (HTTP/1.1) or `h2` (HTTP/2)
made of it, and the answer is parsed by them as it arrives: no stream layers, no task per
connection, no scan of the pool per request (bench/push_clients_bench.py compares them).

The protocol work is theirs, never hand-written: `h11` frames and parses HTTP/1.1, `h2` HTTP/2.
A `Pool` serves one destination (what `chatcore.server.push.endpoint.EndpointClient` decides:
one scheme, host name, port and checked address): over https it offers `h2` and `http/1.1` by
ALPN and, when the server takes `h2`, sends every request as a stream of one connection (more
connections only once the server's stream limit is reached); otherwise one request at a time
per connection, up to `max_connections`, idle connections reused newest first.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import h11

__all__ = ["Answer", "ExchangeError", "Link", "Pool"]

#: Idle connections older than this are closed instead of reused: servers drop idle
#: connections after a while (often 60 s or more), a request on one that was just dropped fails.
IDLE_SECONDS = 30.0
#: Longest run of request bytes handed to `h2` at once: its frames, not our buffers, bound it.
_H2_CHUNK = 16_384


class ExchangeError(Exception):
    """The exchange failed on the network or in the protocol: the connection could not be
    made, was reset, or the server spoke something else. Worth a retry.

    `kind` names it as the log and `PushResult.detail` show it ("ConnectError", "ReadError",
    "RemoteProtocolError"); `unsent` says the connection ended before any byte of an answer
    came, as a kept connection the server had just closed does: on such a connection the
    request is sent once more on a new one (pushes are sent at least once)."""

    def __init__(self, kind: str, message: str, *, unsent: bool = False) -> None:
        super().__init__(message)
        self.kind = kind
        self.unsent = unsent

    def __str__(self) -> str:
        return f"{self.kind}: {self.args[0]}".strip().rstrip(":")


@dataclass(slots=True)
class Answer:
    """A response: status, headers (names in lower case, the last of a repeated one), and at
    most the pool's `body_limit` bytes of its body."""

    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(slots=True)
class _Exchange:
    """One request under way: where its answer is collected."""

    future: asyncio.Future[Answer]
    limit: int
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)
    answered: bool = False  # response headers came: the server had the request

    def finish(self) -> None:
        if not self.future.done():
            self.future.set_result(
                Answer(self.status, self.headers, bytes(self.body[: self.limit]))
            )

    def fail(self, error: ExchangeError) -> None:
        if not self.future.done():
            self.future.set_exception(error)

    def take(self, data: bytes) -> bool:
        """Keep `data` of the body up to the limit; False once past it (stop reading)."""
        self.body += data[: self.limit + 1 - len(self.body)]
        return len(self.body) <= self.limit


def _headers(raw: Sequence[tuple[bytes, bytes]], *, skip_pseudo: bool = False) -> dict[str, str]:
    return {
        name.decode("latin-1").lower(): value.decode("latin-1")
        for name, value in raw
        if not (skip_pseudo and name.startswith(b":"))
    }


class Link(asyncio.Protocol):
    """One connection: HTTP/2 when TLS's ALPN chose `h2`, else HTTP/1.1 (see the module)."""

    def __init__(self, on_lost: Callable[[Link], None]) -> None:
        self._on_lost = on_lost
        self._transport: asyncio.Transport | None = None
        self.is_h2 = False
        self.closed = False
        self.uses = 0
        self.idle_since = time.monotonic()
        # HTTP/1.1: one exchange at a time.
        self._h11 = h11.Connection(h11.CLIENT)
        self._current: _Exchange | None = None
        # HTTP/2: many streams.
        self._h2: h2.connection.H2Connection | None = None
        self._streams: dict[int, _Exchange] = {}
        self._window = asyncio.Event()  # flow-control window grew
        self._going_away = False

    # --- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        tls = transport.get_extra_info("ssl_object")
        if tls is not None and tls.selected_alpn_protocol() == "h2":
            self.is_h2 = True
            config = h2.config.H2Configuration(client_side=True, header_encoding=None)
            self._h2 = h2.connection.H2Connection(config=config)
            self._h2.initiate_connection()
            transport.write(self._h2.data_to_send())

    def data_received(self, data: bytes) -> None:
        if self._h2 is not None:
            self._h2_received(data)
        else:
            self._h11_received(data)

    def eof_received(self) -> bool | None:
        if self._h2 is None:
            self._h11_received(b"")
        if not self.busy:  # a kept connection the server closed: never to be used again
            self.closed = True
            self._on_lost(self)
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed and self._current is None and not self._streams:
            return  # said at the end of the stream already (eof_received)
        self.closed = True
        why = f"{type(exc).__name__}: {exc}" if exc else "the server closed the connection"
        for exchange in [self._current, *self._streams.values()]:
            if exchange is not None:
                exchange.fail(ExchangeError("ReadError", why, unsent=not exchange.answered))
        self._current = None
        self._streams.clear()
        self._window.set()
        self._on_lost(self)

    # --- what the pool asks --------------------------------------------------------------------

    @property
    def reusable(self) -> bool:
        """Free for another request now (HTTP/1.1), or able to take more streams (HTTP/2)."""
        if self.closed:
            return False
        if self._h2 is not None:
            if self._going_away:
                return False
            limit = self._h2.remote_settings.max_concurrent_streams
            return self._h2.open_outbound_streams < limit
        return self._current is None and self._h11.our_state is h11.IDLE

    @property
    def busy(self) -> bool:
        return self._current is not None or bool(self._streams)

    def close(self) -> None:
        if self._transport is not None and not self.closed:
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None and not self.closed:
            self._transport.abort()

    async def request(
        self,
        target: str,
        authority: str,
        scheme: str,
        headers: list[tuple[str, str]],
        body: bytes,
        limit: int,
    ) -> Answer:
        """POST `body` to `target` on this connection; the answer, or ExchangeError."""
        if self.closed:
            raise ExchangeError("WriteError", "the connection was closed", unsent=True)
        self.uses += 1
        exchange = _Exchange(asyncio.get_running_loop().create_future(), limit)
        if self._h2 is not None:
            return await self._h2_request(exchange, target, authority, scheme, headers, body)
        return await self._h11_request(exchange, target, authority, headers, body)

    # --- HTTP/1.1 ------------------------------------------------------------------------------

    async def _h11_request(
        self,
        exchange: _Exchange,
        target: str,
        authority: str,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> Answer:
        assert self._transport is not None and self._current is None
        sent = [("Host", authority), *headers, ("Content-Length", str(len(body)))]
        try:
            data = self._h11.send(h11.Request(method="POST", target=target, headers=sent))
            data = (data or b"") + (self._h11.send(h11.Data(data=body)) or b"")
            data += self._h11.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError as exc:  # a target or header value h11 refuses
            self.abort()
            raise ValueError(str(exc)) from None
        self._current = exchange
        self._transport.write(data)
        try:
            answer = await exchange.future
        except BaseException:
            self.abort()  # cancelled mid-exchange (the timeout): its state is unknown
            raise
        self.idle_since = time.monotonic()
        return answer

    def _h11_received(self, data: bytes) -> None:
        try:
            self._h11.receive_data(data)
            while self._current is not None:
                event = self._h11.next_event()
                if event is h11.NEED_DATA or event is h11.PAUSED:
                    return
                self._h11_event(event)
        except h11.RemoteProtocolError as exc:
            exchange, self._current = self._current, None
            if exchange is not None:  # closed before answering: it may never have had it
                unsent = not exchange.answered
                exchange.fail(ExchangeError("RemoteProtocolError", str(exc), unsent=unsent))
            self.abort()

    def _h11_event(self, event: object) -> None:
        exchange = self._current
        assert exchange is not None
        if isinstance(event, h11.Response):
            exchange.answered = True
            exchange.status = event.status_code
            exchange.headers = _headers(event.headers)
        elif isinstance(event, h11.Data):
            if not exchange.take(event.data):  # a long body: not read to its end
                self._current = None
                exchange.finish()
                self.abort()
        elif isinstance(event, h11.EndOfMessage):
            self._current = None
            exchange.finish()
            if self._h11.our_state is h11.DONE and self._h11.their_state is h11.DONE:
                self._h11.start_next_cycle()
            else:  # "Connection: close", or an answer before the request was complete
                self.close()
        elif isinstance(event, h11.ConnectionClosed):
            self._current = None
            exchange.fail(ExchangeError("ReadError", "the server closed the connection"))
            self.close()
        # h11.InformationalResponse (1xx): the final answer follows.

    # --- HTTP/2 --------------------------------------------------------------------------------

    async def _h2_request(
        self,
        exchange: _Exchange,
        target: str,
        authority: str,
        scheme: str,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> Answer:
        conn, transport = self._h2, self._transport
        assert conn is not None and transport is not None
        stream_id = conn.get_next_available_stream_id()
        sent = [
            (":method", "POST"), (":scheme", scheme), (":authority", authority),
            (":path", target), *((k.lower(), v) for k, v in headers if k.lower() != "host"),
            ("content-length", str(len(body))),
        ]  # fmt: skip
        self._streams[stream_id] = exchange
        try:
            try:
                conn.send_headers(stream_id, sent, end_stream=not body)
            except h2.exceptions.ProtocolError as exc:
                raise ValueError(str(exc)) from None
            await self._h2_send_body(stream_id, body)
            transport.write(conn.data_to_send())
            answer = await exchange.future
        except BaseException:
            if self._streams.pop(stream_id, None) is not None and not self.closed:
                try:  # cancelled (the timeout): the other streams go on
                    conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
                    transport.write(conn.data_to_send())
                except h2.exceptions.ProtocolError:
                    pass
            raise
        self.idle_since = time.monotonic()
        return answer

    async def _h2_send_body(self, stream_id: int, body: bytes) -> None:
        conn, transport = self._h2, self._transport
        assert conn is not None and transport is not None
        view = memoryview(body)
        while view:
            if self.closed:
                raise ExchangeError("WriteError", "the connection was lost")
            size = min(conn.local_flow_control_window(stream_id), conn.max_outbound_frame_size)
            if size <= 0:  # the window is full: wait for the server's WINDOW_UPDATE
                transport.write(conn.data_to_send())
                self._window.clear()
                await self._window.wait()
                continue
            chunk, view = view[: min(size, _H2_CHUNK)], view[min(size, _H2_CHUNK) :]
            conn.send_data(stream_id, bytes(chunk), end_stream=not view)

    def _h2_received(self, data: bytes) -> None:
        conn, transport = self._h2, self._transport
        assert conn is not None and transport is not None
        try:
            events = conn.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            for exchange in self._streams.values():
                exchange.fail(ExchangeError("RemoteProtocolError", str(exc)))
            self._streams.clear()
            transport.write(conn.data_to_send())
            self.abort()
            return
        for event in events:
            self._h2_event(event)
        if not self.closed:
            transport.write(conn.data_to_send())
        if self._going_away:
            self.close()

    def _h2_event(self, event: h2.events.Event) -> None:
        conn = self._h2
        assert conn is not None
        if isinstance(event, h2.events.ResponseReceived):
            exchange = self._streams.get(event.stream_id)
            if exchange is not None:
                exchange.answered = True
                raw = event.headers or []
                status = next((v for k, v in raw if k == b":status"), b"0")
                exchange.status = int(status)
                exchange.headers = _headers(raw, skip_pseudo=True)
        elif isinstance(event, h2.events.DataReceived):
            conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            exchange = self._streams.get(event.stream_id)
            if exchange is not None and not exchange.take(event.data or b""):
                del self._streams[event.stream_id]
                exchange.finish()
                conn.reset_stream(event.stream_id, h2.errors.ErrorCodes.CANCEL)
        elif isinstance(event, h2.events.StreamEnded):
            exchange = self._streams.pop(event.stream_id, None)
            if exchange is not None:
                exchange.finish()
        elif isinstance(event, h2.events.StreamReset):
            exchange = self._streams.pop(event.stream_id, None)
            if exchange is not None:
                refused = event.error_code == h2.errors.ErrorCodes.REFUSED_STREAM
                why = f"the server reset the stream ({event.error_code!r})"
                exchange.fail(ExchangeError("RemoteProtocolError", why, unsent=refused))
        elif isinstance(event, h2.events.WindowUpdated):
            self._window.set()
        elif isinstance(event, h2.events.ConnectionTerminated):
            # `h2` takes no frame after a GOAWAY, so the answers of the streams the server
            # still serves could not be read: they fail (a retry) with the rest, and the
            # connection closes. Streams past `last_stream_id` were never processed.
            self._going_away = True
            last = event.last_stream_id if event.last_stream_id is not None else 0
            why = f"the server closed the connection (GOAWAY {event.error_code!r})"
            for stream_id, exchange in self._streams.items():
                exchange.fail(ExchangeError("ReadError", why, unsent=stream_id > last))
            self._streams.clear()


class Pool:
    """Kept-alive connections to one destination (see the module docstring).

    `connect` makes one new connected `Link` (TLS done); `request` raises `ExchangeError`
    for what went wrong on the network, `ValueError` for a request `h11`/`h2` refuse to send
    (nothing was sent), and is cancelled from outside for a timeout.
    """

    def __init__(
        self,
        connect: Callable[[Callable[[Link], None]], Awaitable[Link]],
        *,
        max_connections: int = 32,
        body_limit: int = 256,
    ) -> None:
        self._connect = connect
        self.max_connections = max_connections
        self.body_limit = body_limit
        self._links: list[Link] = []  # every open connection
        self._idle: list[Link] = []  # HTTP/1.1 connections free for a request, newest last
        self._connecting = 0
        self._changed = asyncio.Event()  # a connection was freed, made or lost
        self._h2: bool | None = None  # unknown until the first connection says
        self._closed = False

    async def request(
        self,
        target: str,
        authority: str,
        scheme: str,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> Answer:
        link = await self._acquire()
        try:
            return await link.request(target, authority, scheme, headers, body, self.body_limit)
        except ExchangeError as exc:
            if not (exc.unsent and link.uses > 1):
                raise
            # A kept connection the server had just dropped (it ended without a byte of an
            # answer): the request goes once more, on a new connection.
        finally:
            self._release(link)
        link = await self._acquire(fresh=True)
        try:
            return await link.request(target, authority, scheme, headers, body, self.body_limit)
        finally:
            self._release(link)

    def close(self) -> None:
        """Close every connection; requests under way fail with ExchangeError."""
        self._closed = True
        for link in list(self._links):
            link.abort()
        self._links.clear()
        self._idle.clear()
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _acquire(self, *, fresh: bool = False) -> Link:
        while True:
            if self._closed:
                raise ExchangeError("ConnectError", "the client is closed")
            if not fresh:
                link = self._free_link()
                if link is not None:
                    return link
            # A first https connection tells whether the server takes HTTP/2: until it
            # does, the others wait for it rather than open a connection each. Over HTTP/2
            # one connection at a time is made, when the others' streams are all taken (or
            # the server closed them): it takes every waiting request.
            one_at_a_time = self._h2 is None or self._h2
            waiting = one_at_a_time and self._connecting > 0
            if not waiting and len(self._links) + self._connecting < self.max_connections:
                return await self._new_link()
            await self._changed.wait()
            fresh = False

    def _free_link(self) -> Link | None:
        if self._h2:
            return next((link for link in self._links if link.reusable), None)
        while self._idle:
            link = self._idle.pop()
            if link.reusable and time.monotonic() - link.idle_since < IDLE_SECONDS:
                return link
            link.close()
        return None

    async def _new_link(self) -> Link:
        self._connecting += 1
        try:
            link = await self._connect(self._lost)
        finally:
            self._connecting -= 1
            self._notify()
        if self._closed:
            link.close()
            raise ExchangeError("ConnectError", "the client is closed")
        self._h2 = link.is_h2
        self._links.append(link)
        return link

    def _release(self, link: Link) -> None:
        if not link.is_h2 and link.reusable:
            self._idle.append(link)
        elif not link.is_h2 and not link.closed:
            link.abort()
        self._notify()

    def _lost(self, link: Link) -> None:
        if link in self._links:
            self._links.remove(link)
        if link in self._idle:
            self._idle.remove(link)
        self._notify()


async def connect_link(
    on_lost: Callable[[Link], None],
    address: str,
    port: int,
    *,
    tls: ssl.SSLContext | None,
    server_name: str | None,
) -> Link:
    """A `Link` connected to `address` (an IP address, or a name when nothing was pinned); with
    `tls`, TLS with `server_name` as SNI and the name its certificate is verified against."""
    loop = asyncio.get_running_loop()
    try:
        _, link = await loop.create_connection(
            lambda: Link(on_lost),
            host=address,
            port=port,
            ssl=tls,
            server_hostname=server_name if tls is not None else None,
        )
    except (OSError, ssl.SSLError) as exc:  # refused, unreachable, a certificate refused
        raise ExchangeError("ConnectError", str(exc) or type(exc).__name__, unsent=True) from None
    return link
