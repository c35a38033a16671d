"""One WebSocket session, free of I/O: frames in, events out through a `Connection`.

The transport plugin owns the socket: it reads frames, hands them to `authenticate` (the first)
and `handle` (the rest), enforces the frame size and the auth timeout, and calls `closed` at the
end. Everything the contract says about what a frame means lives here, so every transport
behaves the same.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import uuid
from typing import TYPE_CHECKING, Any

import orjson

from chatcore.errors import ChatError, ErrorCode
from chatcore.metrics import core_metrics
from chatcore.protocol.frames import AuthFrame, FrameError, ack_of, encode, parse_frame
from chatcore.ratelimit import TokenBucket
from chatcore.server.realtime.live import FRAME_HANDLERS, ack_event, typing_bucket

if TYPE_CHECKING:
    from chatcore.interfaces import Connection
    from chatcore.models import Draft, Identity, Stored
    from chatcore.server.app import App

log = logging.getLogger(__name__)

CLOSE_UNAUTHORIZED = 4401
CLOSE_AUTH_TIMEOUT = 4408
CLOSE_RATE_LIMITED = 4429
CLOSE_INTERNAL = 1011
CLOSE_TRY_AGAIN_LATER = 1013

#: Live message events a session holds back while it syncs; past this it is closed (1013).
SYNC_BUFFER_MAX = 10_000

FIRST_FRAME = 'The first frame must be {"type": "auth", "token": ACCESS_TOKEN}.'


class Session:
    """The state of one connection: unauthenticated, then ready.

    A node holds one per open connection, mostly idle, so a session is kept small: slots, and
    state that few sessions ever need (the typing bucket, what `drain` waits on) is made on
    first use.
    """

    __slots__ = (
        "_before_ready",
        "_bucket",
        "_close_after",
        "_commits",
        "_drained",
        "_refused_in_a_row",
        "_sync_buffer",
        "_synced_up_to",
        "_typing_bucket",
        "app",
        "closed_code",
        "conn",
        "id",
        "identity",
        "rooms",
    )

    def __init__(
        self,
        app: App,
        conn: Connection,
        *,
        rate_per_second: float = 20,
        rate_burst: float = 100,
        rate_close_after: int = 100,
    ) -> None:
        self.app = app
        self.conn = conn
        self.id = uuid.uuid4().hex
        self.identity: Identity | None = None
        self.closed_code: int | None = None
        self.rooms: set[str] = set()  # rooms whose events reach this session (kept by the hub)
        self._sync_buffer: list[tuple[str, int, bytes]] | None = None  # set while syncing
        # Per room, the highest seq a finished catch-up sent, until a live event passes it.
        self._synced_up_to: dict[str, int] | None = None
        self._before_ready: list[bytes] | None = []  # events that arrive before `ready` is sent
        self._bucket = TokenBucket(rate_per_second, rate_burst)
        self._typing_bucket: TokenBucket | None = None
        self._commits = 0  # sends queued for the group commit and not answered yet
        self._drained: asyncio.Future[None] | None = None  # made by `drain` while it waits
        self._refused_in_a_row = 0
        self._close_after = rate_close_after

    @property
    def typing_bucket(self) -> TokenBucket:
        """Flood control of `typing` frames, made by the first one (a new bucket is full, so
        making it late refuses nothing it would not have refused)."""
        bucket = self._typing_bucket
        if bucket is None:
            bucket = self._typing_bucket = typing_bucket()
        return bucket

    # --- output ---------------------------------------------------------------------------------

    def send(self, event: dict[str, Any]) -> None:
        self.conn.send(encode(event))

    def send_encoded(self, data: bytes) -> None:
        """Send an event already encoded by `chatcore.protocol.frames.encode`: fan-out encodes an
        event
        once and hands the same bytes to every recipient's session."""
        self.conn.send(data)

    @property
    def user_id(self) -> str:
        assert self.identity is not None, "the session is not authenticated"
        return self.identity.user_id

    def deliver(self, room_id: str | None, seq: int | None, data: bytes) -> None:
        """Send a fanned-out event. While a `sync` runs, message events (those with a seq)
        wait, so they can follow `synced` without repeating what the catch-up sent."""
        if self._before_ready is not None:
            self._before_ready.append(data)
            return
        if room_id is not None and seq is not None:
            if self._sync_buffer is not None:
                self._sync_buffer.append((room_id, seq, data))
                if len(self._sync_buffer) > SYNC_BUFFER_MAX:
                    self.close(CLOSE_TRY_AGAIN_LATER, "too far behind; reconnect and sync")
                return
            if self._synced_up_to is not None and self._already_synced(room_id, seq):
                return
        self.conn.send(data)

    def _already_synced(self, room_id: str, seq: int) -> bool:
        """True for a live message the last catch-up already sent. A catch-up reads storage,
        where a message is visible before its live event has crossed the broker, so that event
        may come after `synced`. Rooms release in seq order: the first live seq above the
        synced one ends the check for its room."""
        assert self._synced_up_to is not None
        floor = self._synced_up_to.get(room_id)
        if floor is None:
            return False
        if seq <= floor:
            return True
        del self._synced_up_to[room_id]
        if not self._synced_up_to:
            self._synced_up_to = None
        return False

    def begin_sync(self) -> None:
        self._sync_buffer = []

    def end_sync(self, synced: dict[str, int]) -> None:
        """Send the live message events held back during a sync, and from now on skip those
        whose seq the catch-up already covered (at or below the room's value in `synced`)."""
        held, self._sync_buffer = self._sync_buffer or [], None
        # Only rooms whose catch-up went past what this node has released live can still see
        # a live event the catch-up already sent (most rooms have nothing of the kind).
        released = self.app.hub.released_seq
        ahead = {room: seq for room, seq in synced.items() if seq > released(room)}
        if ahead:
            self._synced_up_to = {**(self._synced_up_to or {}), **ahead}
        for room_id, seq, data in held:
            if seq > synced.get(room_id, -1):
                self.deliver(room_id, seq, data)

    def commit(self, ref: str, draft: Draft) -> None:
        """Queue `draft` for the group commit; `ref` is answered with its ack (or error) once
        it is durable and published. The writer answers in queue order, so acks keep the order
        of the sends."""
        self.app.writer.enqueue_reply(draft, functools.partial(self._answer, ref))
        self._commits += 1

    def _answer(self, ref: str, result: Stored | ChatError, encoded: bytes | None) -> None:
        self._commits -= 1
        if isinstance(result, ChatError):
            self.send_error(result, ref)
        elif encoded is not None:
            self.conn.send(ack_of(ref, encoded))
        else:
            self.send(ack_event(ref, result))
        if not self._commits and self._drained is not None:
            self._drained.set_result(None)
            self._drained = None

    async def drain(self) -> None:
        """Wait until every send this session accepted is answered (graceful shutdown)."""
        if self._commits:
            if self._drained is None:
                self._drained = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._drained)

    def send_error(self, error: ChatError, ref: str | None = None) -> None:
        self.send(error.ws_event(ref))

    def close(self, code: int, reason: str = "") -> None:
        if self.closed_code is None:
            self.closed_code = code
            self.conn.close(code, reason)

    # --- input ----------------------------------------------------------------------------------

    async def authenticate(self, raw: str | bytes) -> bool:
        """Handle the first frame (docs/protocol.md item 1): `ready` and True, or False.

        A frame that is not a valid auth frame (invalid JSON, another type, a missing or bad
        token) gets `error unauthorized` and close 4401. When the server itself fails (storage
        down), the client is told so instead (`unavailable` and 1013, or `internal` and 1011),
        since its token may be fine.
        """
        try:
            frame = parse_frame(raw)
            if not isinstance(frame, AuthFrame):
                raise FrameError("The first frame must be 'auth'.")
            identity = await self.app.auth.authenticate(frame.token)
            user = await self.app.storage.get_user(identity.user_id)
            if user is None or user.deleted:
                raise ChatError(ErrorCode.UNAUTHORIZED, "This account no longer exists.")
            if user.disabled:  # its logins ended; this token was checked before the news came
                raise ChatError(ErrorCode.UNAUTHORIZED, "This account is disabled.")
        except FrameError:
            return self._refuse_auth(FIRST_FRAME)
        except ChatError as exc:
            if exc.code is ErrorCode.UNAUTHORIZED:
                return self._refuse_auth(exc.message)
            code = CLOSE_TRY_AGAIN_LATER if exc.code is ErrorCode.UNAVAILABLE else CLOSE_INTERNAL
            self.send_error(exc)
            self.close(code, exc.code.value)
            return False
        except Exception:
            log.exception("session %s: error authenticating", self.id)
            self.send_error(ChatError(ErrorCode.INTERNAL, "Something went wrong; try again."))
            self.close(CLOSE_INTERNAL, "internal error")
            return False
        # The login may have ended while we were verifying its token; the hub remembers
        # recently ended logins, and from `add` on it closes this session itself. Nothing
        # awaits between the check and `add`, so no logout can slip in between.
        if self.app.hub.login_ended_recently(identity.login_id):
            return self._refuse_auth("This login has ended; sign in again.")
        # The user record serves `ready` only; it is not kept (an idle session holds no copy).
        self.identity = identity
        self.app.hub.add(self)
        try:
            seqs = await self.app.storage.room_seqs(user.id)
        except Exception:
            log.exception("session %s: error reading rooms", self.id)
            core_metrics(self.app).storage_errors.labels("room_seqs").value += 1
            self.send_error(ChatError(ErrorCode.UNAVAILABLE, "Storage is unavailable; try again."))
            self.close(CLOSE_TRY_AGAIN_LATER, "unavailable")
            return False
        # Subscribe before `ready`, so an event sent to this user right after it (say, being
        # added to a room by someone on another node) cannot miss the subscription; events
        # arriving meanwhile wait and follow `ready`. Messages committed between reading the
        # seqs and subscribing are what the client's `sync` is for.
        await self.app.hub.attach(self, seqs)
        if self.closed_code is not None:  # its login ended meanwhile
            return False
        rooms = [{"room_id": room_id, "last_seq": seq} for room_id, seq in seqs.items()]
        self.send({"type": "ready", "user": user.wire(), "session_id": self.id, "rooms": rooms})
        held, self._before_ready = self._before_ready or [], None
        for data in held:
            self.conn.send(data)
        return True

    def _refuse_auth(self, message: str) -> bool:
        self.send_error(ChatError(ErrorCode.UNAUTHORIZED, message))
        self.close(CLOSE_UNAUTHORIZED, "unauthorized")
        return False

    def auth_timed_out(self) -> None:
        self.close(CLOSE_AUTH_TIMEOUT, "no auth frame in time")

    async def handle(self, raw: str | bytes) -> None:
        """Handle a frame after `ready`; bad input answers an error and the session goes on.

        Every frame, of any type, first passes the flood control (item 11). Frames that arrive
        after the session closed are ignored: nothing can be sent after a close frame.
        """
        if self.closed_code is not None:
            return
        wait = self._bucket.take()
        if wait:
            self._refused(raw, wait)
            return
        self._refused_in_a_row = 0
        ref = None
        try:
            frame = parse_frame(raw)
            ref = getattr(frame, "ref", None)
            handler = FRAME_HANDLERS.get(frame.type)
            if handler is None:
                if frame.type == "auth":
                    raise ChatError(ErrorCode.BAD_REQUEST, "This session is already authenticated.")
                raise ChatError(
                    ErrorCode.BAD_REQUEST, f"This server does not handle '{frame.type}' frames yet."
                )
            await handler(self, frame)
        except FrameError as exc:
            self.send_error(exc, exc.ref)
        except ChatError as exc:
            # Frame types without a `ref` field (typing, read, auth) still echo one a client put.
            self.send_error(exc, ref if ref is not None else _read_ref(raw))
        except Exception:
            log.exception("session %s: error handling a frame", self.id)
            self.send_error(
                ChatError(ErrorCode.INTERNAL, "Something went wrong; try again."),
                ref if ref is not None else _read_ref(raw),
            )

    def _refused(self, raw: str | bytes, wait: float) -> None:
        """Answer a frame refused by the flood control; close 4429 after too many in a row.

        The refused frame is answered before the close, so every frame read gets its answer.
        Only its `ref` is read (no validation): refusing must stay cheap under a flood.
        """
        self._refused_in_a_row += 1
        core_metrics(self.app).frames_refused.value += 1
        retry = max(1, math.ceil(wait * 1000))
        self.send_error(
            ChatError(ErrorCode.RATE_LIMITED, "Too many frames; slow down.", retry_after_ms=retry),
            _read_ref(raw),
        )
        if self._refused_in_a_row >= self._close_after:
            self.close(CLOSE_RATE_LIMITED, "rate limited")

    async def closed(self) -> None:
        """Called by the transport once the connection is gone."""
        if self.identity is not None:
            await self.app.hub.detach(self)


def _read_ref(raw: str | bytes) -> str | None:
    """The `ref` of a frame when one can be read (as `parse_frame` reads it), else None."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    ref = data.get("ref") if isinstance(data, dict) else None
    return ref if isinstance(ref, str) and 0 < len(ref) <= 128 else None
