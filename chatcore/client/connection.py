"""The connection: one WebSocket to the server, kept up until the client closes or logs out.

States (`chatcore.client.events.ConnectionState`), each change published as
`ConnectionChanged`: *connecting* (discovery, opening, `auth`), *catching_up* (room metadata,
contacts and invitations read over REST, then the catch-up; the outbox is sent meanwhile),
*ready* (live), *offline* (waiting `retry_in` seconds before the next attempt), *logged_out*
(the login ended: nothing reconnects until the next login).

Each attempt reads `/api/v1/info` for `ws_url` and the limits (again after every failure: the
server may have moved), opens the WebSocket with the `websockets` library (frames up to the
server's `max_frame_bytes`; the library's own keepalive off), and authenticates with a fresh
access token. The engine pings every `ping_interval_seconds`; when neither the pong nor any
other frame arrived `ping_timeout_seconds` after a ping, the connection is dead though its
socket may look open (a NAT that forgot it, a pulled cable): it is aborted and replaced. Any
frame counts as an answer because the server answers frames in order: a long catch-up delays
the pong, while its own frames show that the connection lives.

Reconnects wait with exponential backoff (`reconnect_min_seconds`, doubled up to
`reconnect_max_seconds`), each wait drawn uniformly between half and all of it; the backoff
starts over once a connection reached *ready*. Close code 4401 or a refused `auth` means the
login may have ended: the tokens are refreshed once; a refused refresh ends the login.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Callable
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from chatcore.client.api import Api
from chatcore.client.errors import ApiError, ApiUnavailable, LoggedOut
from chatcore.client.events import ConnectionChanged, ConnectionState, RoomChanged
from chatcore.client.flood import FloodFloor
from chatcore.client.inbox import Inbox
from chatcore.client.interfaces import DeviceStore
from chatcore.client.live import PING_REF_PREFIX, LiveFrames, announce_failed, refresh_contacts
from chatcore.client.media import MediaClient
from chatcore.client.models import Room, ServerInfo
from chatcore.client.outbox import Outbox, Signal
from chatcore.client.sender import Sender, paced_below
from chatcore.client.stream import EventStream
from chatcore.client.sync import CatchUp
from chatcore.failures import reason
from chatcore.settings import ClientSettings

__all__ = ["Backoff", "Connection"]

log = logging.getLogger(__name__)

#: Close codes of the protocol this engine tells apart.
CLOSE_LOGIN_ENDED = 4401
#: Frames read ahead of the engine at most, and handled in one go at most.
INBOUND_FRAMES = 2000
HANDLED_AT_ONCE = 500
#: How long the frames read before a connection ended may take to be handled.
DRAIN_SECONDS = 10.0
#: How long closing a healthy WebSocket may wait for the server's close frame.
CLOSE_TIMEOUT_SECONDS = 2.0


#: The largest frame taken from the server (bytes): far above any frame it sends.
MAX_INCOMING_FRAME_BYTES = 16 * 1024 * 1024


class Backoff:
    """Waits between reconnects: `minimum` doubling up to `maximum`, each drawn uniformly in
    [delay / 2, delay] so that clients cut off together do not come back together."""

    def __init__(self, minimum: float, maximum: float) -> None:
        self.minimum = minimum
        self.maximum = max(maximum, minimum)
        self._delay = minimum

    def reset(self) -> None:
        self._delay = self.minimum

    def next(self) -> float:
        delay = self._delay
        self._delay = min(delay * 2, self.maximum)
        return random.uniform(delay / 2, delay)


class Disconnected(Exception):
    """The connection ended or could not be made; its message says why, for a person."""


class AuthRefused(Disconnected):
    """The server refused the access token, or closed with 4401: the login may have ended."""


class Connection:
    """Keeps one WebSocket up in the background and hands its frames to the engine."""

    def __init__(
        self,
        *,
        settings: ClientSettings,
        api: Api,
        store: DeviceStore,
        stream: EventStream,
        inbox: Inbox,
        outbox: Outbox,
        media: MediaClient,
        me: Callable[[], str],
    ) -> None:
        self.settings = settings
        self.api = api
        self.store = store
        self.stream = stream
        self.inbox = inbox
        self.outbox = outbox
        self.media = media
        self._me = me
        self.state: ConnectionState = "offline"
        self.detail = ""
        self._changed = Signal()
        self._task: asyncio.Task[None] | None = None
        self._link: Link | None = None

    # --- control -----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def connected(self) -> bool:
        """A WebSocket is up and authenticated (catching up or ready)."""
        return self._link is not None and self.state in ("catching_up", "ready")

    def start(self) -> None:
        """Connect in the background (and reconnect) until `stop`."""
        if not self.running:
            self._task = asyncio.create_task(self._run(), name="client-connection")

    async def stop(self, state: ConnectionState = "offline", detail: str = "") -> None:
        """Close the WebSocket and stop reconnecting; the state becomes `state`."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.set_state(state, detail)

    def set_state(
        self, state: ConnectionState, detail: str = "", retry_in: float | None = None
    ) -> None:
        if (state, detail) == (self.state, self.detail) and retry_in is None:
            return
        self.state, self.detail = state, detail
        self.stream.publish(ConnectionChanged(state, detail, retry_in))
        self._changed.notify()

    async def wait_for(self, *states: ConnectionState) -> ConnectionState:
        """Return the state once it is one of `states` (at once when it is)."""
        while True:
            changed = self._changed.current()
            if self.state in states:
                return self.state
            await changed.wait()

    async def send_frame(self, frame: dict[str, Any]) -> bool:
        """Write `frame` when a connection is up; False (nothing sent) otherwise."""
        link = self._link
        if link is None or not self.connected:
            return False
        try:
            await link.write(frame)
        except ConnectionClosed:
            return False
        return True

    # --- the loop ----------------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = Backoff(self.settings.reconnect_min_seconds, self.settings.reconnect_max_seconds)
        while True:
            self.set_state("connecting")
            reached_ready = False
            try:
                info = await self.api.info()
                link = Link(self, info)
                self._link = link
                try:
                    await link.run()
                finally:
                    self._link = None
                    reached_ready = link.reached_ready
                    await link.close()
                    # What was on the wire goes again, with the same refs, on the next one.
                    await self.store.outbox_reset_sending()
            except AuthRefused as exc:
                detail = str(exc)
                try:
                    await self.api.refresh()
                except LoggedOut:
                    self.set_state("logged_out", "The login ended; log in again.")
                    return
                except (ApiError, ApiUnavailable) as refresh_error:
                    detail = str(refresh_error)
            except LoggedOut as exc:
                self.set_state("logged_out", str(exc))
                return
            except (Disconnected, ApiUnavailable, ApiError) as exc:
                detail = str(exc)
            except Exception as exc:  # a bug must not stop the engine for good: log, go on
                log.exception("the connection failed")
                detail = f"Internal error: {exc!r}"
            if reached_ready:
                backoff.reset()
            delay = backoff.next()
            log.info("connection lost (%s); next attempt in %.2fs", detail, delay)
            self.set_state("offline", detail, retry_in=delay)
            await asyncio.sleep(delay)

    def _caught_up(self, link: Link) -> None:
        if link.ended:
            return  # the last frames of a connection that is gone: not ready
        link.reached_ready = True
        self.set_state("ready")

    async def _refresh_metadata(self) -> None:
        """Rooms (a room left while away is forgotten), contacts and invitations, over REST."""
        before = {summary.room.id: summary.room for summary in await self.store.list_rooms()}
        queued = await self.store.outbox()
        rooms = await self.api.rooms()
        await self.store.save_rooms(rooms, complete=True)
        self.inbox.forget()  # rooms left meanwhile are gone, with their messages
        for room in rooms:
            if not _same_room(before.get(room.id), room):
                self.stream.publish(RoomChanged(room))
        now = {room.id for room in rooms}
        for room_id, room in before.items():
            if room_id not in now:
                self.stream.publish(RoomChanged(room, left=True))
        left = [e.ref for e in queued if e.room_id not in now and e.state != "failed"]
        await announce_failed(self.store, self.outbox, left)
        await refresh_contacts(self.store, self.api)


class Link:
    """One open WebSocket: authentication, the reader, the pinger and the sender."""

    def __init__(self, connection: Connection, info: ServerInfo) -> None:
        self.connection = connection
        self.info = info
        self.settings = connection.settings
        self.reached_ready = False
        self._ws: ClientConnection | None = None
        self._dead = False
        self._last_rx = 0.0
        self._catchup: CatchUp | None = None
        #: Frames read and not handled yet; bounded: when the engine lags this far behind,
        #: reading waits and the server's own bound on what it queues takes over.
        self._inbound: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(INBOUND_FRAMES)
        #: Set once the connection is going: what is handled after that changes no state.
        self.ended = False
        #: Every frame written is counted here, for the sender to stay under flood control.
        self.flood = FloodFloor.for_limits(info.limits)

    async def write(self, frame: dict[str, Any]) -> int:
        """Write `frame`; its position among the frames written on this connection.

        `websockets` queues a text frame before its first await, so frames go on the wire in
        the order of these calls, and the count matches what the server reads.
        """
        assert self._ws is not None
        data = orjson.dumps(frame).decode()
        position = self.flood.wrote()
        await self._ws.send(data)
        return position

    async def run(self) -> None:
        """Open, authenticate, catch up, then carry frames until the connection ends (raises
        `Disconnected`, `AuthRefused` or `LoggedOut`)."""
        conn = self.connection
        token = await conn.api.access_token()
        self._ws = await self._open()
        try:
            await self.write({"type": "auth", "token": token})
            async with asyncio.timeout(self.settings.request_timeout_seconds):
                first = _decode(await self._ws.recv())
        except TimeoutError:
            raise Disconnected("The server did not answer the login in time.") from None
        except ConnectionClosed as exc:
            raise _closed(exc) from None
        if first is None or first.get("type") != "ready":
            raise _refused_auth(first)
        self._last_rx = asyncio.get_running_loop().time()
        me = conn._me()
        await conn._refresh_metadata()
        conn.set_state("catching_up")
        # What an earlier connection (or a process that died) left on the wire goes again.
        await conn.store.outbox_reset_sending()
        sender = Sender(
            conn.outbox,
            conn.media,
            self.write,
            window=self.settings.send_window,
            retry_min=self.settings.reconnect_min_seconds,
            retry_max=self.settings.reconnect_max_seconds,
            pace=paced_below(self.info.limits),
            flood=self.flood,
        )
        self._catchup = catchup = CatchUp(conn.store, conn.inbox, conn.stream, self.write)
        frames = LiveFrames(
            store=conn.store,
            api=conn.api,
            stream=conn.stream,
            inbox=conn.inbox,
            outbox=conn.outbox,
            catchup=catchup,
            sender=sender,
            me=me,
            caught_up=lambda: conn._caught_up(self),
        )
        try:
            await catchup.begin()
            await self._carry(frames, sender)
        except ConnectionClosed as exc:
            raise _closed(exc) from None

    async def _carry(self, frames: LiveFrames, sender: Sender) -> None:
        """Read, handle, ping and send until one of them ends; raise why it ended.

        Reading, pinging and sending are cancelled at once. The handler is not: it finishes
        the frames already read (cancelled in the middle of a store write, the write would be
        committed and never announced); it gets `DRAIN_SECONDS` for that.
        """
        tasks = [asyncio.create_task(c) for c in (self._read(), self._ping(), sender.run())]
        handler = asyncio.create_task(self._handle(frames))
        try:
            done, _ = await asyncio.wait([*tasks, handler], return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.ended = True
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._drain(handler)
        for task in [*tasks, handler]:
            if task in done and not task.cancelled():
                error = task.exception()
                if error is not None:
                    raise error
        raise Disconnected("The connection ended.")

    async def _drain(self, handler: asyncio.Task[None]) -> None:
        if not handler.done():
            try:
                async with asyncio.timeout(DRAIN_SECONDS):
                    await self._inbound.put(None)  # after the frames read: the end
                    await asyncio.wait([handler])
            except TimeoutError:
                log.warning("the frames read before the connection ended took too long")
        if not handler.done():
            handler.cancel()
        await asyncio.gather(handler, return_exceptions=True)

    async def close(self) -> None:
        if self._catchup is not None:
            self._catchup.close()
        ws, self._ws = self._ws, None
        if ws is None:
            return
        if self._dead:
            ws.transport.abort()  # no close handshake on a connection that carries nothing
        else:
            await ws.close()

    async def _open(self) -> ClientConnection:
        url = self.info.ws_url
        try:
            return await connect(
                url,
                # The server bounds what clients send; what it sends (a `ready` listing
                # thousands of rooms) is taken up to a generous cap of our own.
                max_size=max(
                    MAX_INCOMING_FRAME_BYTES, int(self.info.limits.get("max_frame_bytes", 0))
                ),
                ping_interval=None,  # the engine pings itself (see the module's doc)
                ping_timeout=None,
                open_timeout=self.settings.request_timeout_seconds,
                close_timeout=CLOSE_TIMEOUT_SECONDS,
            )
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            raise Disconnected(f"Cannot open the WebSocket at {url}: {reason(exc)}.") from None

    async def _read(self) -> None:
        """Take frames off the socket as they come (so pings see them at once)."""
        assert self._ws is not None
        loop = asyncio.get_running_loop()
        while True:
            raw = await self._ws.recv()
            self._last_rx = loop.time()
            frame = _decode(raw)
            if frame is None:
                log.warning("ignored a frame from the server that is not a JSON object")
                continue
            await self._inbound.put(frame)

    async def _handle(self, frames: LiveFrames) -> None:
        """Hand the frames read to the engine, all those waiting at once, until the None that
        `_drain` puts after the last one."""
        while True:
            batch = [await self._inbound.get()]
            while not self._inbound.empty() and len(batch) < HANDLED_AT_ONCE:
                batch.append(self._inbound.get_nowait())
            end = None in batch
            await frames.handle([frame for frame in batch if frame is not None])
            if end:
                return

    async def _ping(self) -> None:
        """Ping every interval; dead when a ping sees no frame arrive within the timeout."""
        loop = asyncio.get_running_loop()
        interval = self.settings.ping_interval_seconds
        timeout = self.settings.ping_timeout_seconds
        next_ping = loop.time() + interval
        unanswered: list[float] = []  # when pings went out that no frame followed yet
        while True:
            deadline = min(next_ping, unanswered[0] + timeout) if unanswered else next_ping
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            now = loop.time()
            unanswered = [sent for sent in unanswered if sent >= self._last_rx]
            if unanswered and now >= unanswered[0] + timeout:
                self._dead = True
                raise Disconnected(
                    f"No answer from the server for {timeout:g} s; the connection is dead."
                )
            if now >= next_ping:
                ping = {"type": "ping", "ref": PING_REF_PREFIX + uuid.uuid4().hex}
                try:
                    async with asyncio.timeout(timeout):
                        await self.write(ping)
                except TimeoutError:
                    self._dead = True
                    raise Disconnected("The connection takes no more data; it is dead.") from None
                unanswered.append(now)
                next_ping = now + interval


def _same_room(before: Room | None, after: Room) -> bool:
    if before is None:
        return False
    fields = ("kind", "name", "member_ids", "owner_id")
    return all(getattr(before, name) == getattr(after, name) for name in fields)


def _decode(raw: str | bytes) -> dict[str, Any] | None:
    try:
        frame = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return frame if isinstance(frame, dict) else None


def _refused_auth(frame: dict[str, Any] | None) -> Disconnected:
    if frame is not None and frame.get("type") == "error":
        message = str(frame.get("message") or "The server refused the login.")
        if frame.get("code") == "unauthorized":
            return AuthRefused(message)
        return Disconnected(message)
    return Disconnected("The server did not answer the login as a chatcore server does.")


def _closed(exc: ConnectionClosed) -> Disconnected:
    code = exc.rcvd.code if exc.rcvd is not None else 1006
    why = exc.rcvd.reason if exc.rcvd is not None and exc.rcvd.reason else ""
    if code == CLOSE_LOGIN_ENDED:
        return AuthRefused(f"The server ended this session ({code}: {why or 'unauthorized'}).")
    if exc.rcvd is None:
        return Disconnected("The connection was lost.")
    return Disconnected(f"The server closed the connection ({code}{': ' + why if why else ''}).")
