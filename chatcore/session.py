"""One WebSocket session, free of I/O: frames in, events out through a `Connection`.

The transport plugin owns the socket: it reads frames, hands them to `authenticate` (the first)
and `handle` (the rest), enforces the frame size and the auth timeout, and calls `closed` at the
end. Everything the contract says about what a frame means lives here, so every transport
behaves the same.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from chatcore.errors import ChatError, ErrorCode
from chatcore.ratelimit import TokenBucket
from chatcore.wire import AuthFrame, ClientFrame, FrameError, PingFrame, encode, parse_frame

if TYPE_CHECKING:
    from chatcore.app import App
    from chatcore.interfaces import Connection
    from chatcore.models import Identity, User

log = logging.getLogger("chatcore.session")

CLOSE_UNAUTHORIZED = 4401
CLOSE_AUTH_TIMEOUT = 4408
CLOSE_RATE_LIMITED = 4429

FrameHandler = Callable[["Session", Any], Awaitable[None]]


class Session:
    """The state of one connection: unauthenticated, then ready."""

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
        self.user: User | None = None
        self.closed_code: int | None = None
        self._bucket = TokenBucket(rate_per_second, rate_burst)
        self._refused_in_a_row = 0
        self._close_after = rate_close_after

    # --- output ---------------------------------------------------------------------------------

    def send(self, event: dict[str, Any]) -> None:
        self.conn.send(encode(event))

    def send_error(self, error: ChatError, ref: str | None = None) -> None:
        self.send(error.ws_event(ref))

    def close(self, code: int, reason: str = "") -> None:
        if self.closed_code is None:
            self.closed_code = code
            self.conn.close(code, reason)

    # --- input ----------------------------------------------------------------------------------

    async def authenticate(self, raw: str | bytes) -> bool:
        """Handle the first frame: `ready` and True, or `error unauthorized`, close 4401, False."""
        try:
            frame = parse_frame(raw)
            if not isinstance(frame, AuthFrame):
                raise ChatError(ErrorCode.UNAUTHORIZED, "The first frame must be 'auth'.")
            identity = await self.app.auth.authenticate(frame.token)
            user = await self.app.storage.get_user(identity.user_id)
            if user is None:
                raise ChatError(ErrorCode.UNAUTHORIZED, "This account no longer exists.")
        except ChatError as exc:
            message = exc.message if exc.code is ErrorCode.UNAUTHORIZED else (
                "The first frame must be {\"type\": \"auth\", \"token\": ACCESS_TOKEN}."
            )
            self.send_error(ChatError(ErrorCode.UNAUTHORIZED, message))
            self.close(CLOSE_UNAUTHORIZED, "unauthorized")
            return False
        self.identity, self.user = identity, user
        self.app.hub.add(self)
        self.send({"type": "ready", "user": user.wire(), "session_id": self.id, "rooms": []})
        return True

    def auth_timed_out(self) -> None:
        self.close(CLOSE_AUTH_TIMEOUT, "no auth frame in time")

    async def handle(self, raw: str | bytes) -> None:
        """Handle a frame after `ready`; bad input answers an error and the session goes on."""
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
                raise ChatError(
                    ErrorCode.BAD_REQUEST, f"This server does not handle '{frame.type}' frames yet."
                )
            await handler(self, frame)
        except FrameError as exc:
            self.send_error(exc, exc.ref)
        except ChatError as exc:
            self.send_error(exc, ref)
        except Exception:
            log.exception("session %s: error handling a frame", self.id)
            self.send_error(ChatError(ErrorCode.INTERNAL, "Something went wrong; try again."), ref)

    def _refused(self, raw: str | bytes, wait: float) -> None:
        self._refused_in_a_row += 1
        if self._refused_in_a_row >= self._close_after:
            self.close(CLOSE_RATE_LIMITED, "rate limited")
            return
        try:
            ref = getattr(parse_frame(raw), "ref", None)
        except FrameError as exc:
            ref = exc.ref
        retry = max(1, int(wait * 1000))
        self.send_error(
            ChatError(ErrorCode.RATE_LIMITED, "Too many frames; slow down.", retry_after_ms=retry),
            ref,
        )

    def closed(self) -> None:
        """Called by the transport once the connection is gone."""
        self.app.hub.remove(self)


async def _ping(session: Session, frame: ClientFrame) -> None:
    assert isinstance(frame, PingFrame)
    event: dict[str, Any] = {"type": "pong"}
    if frame.ref is not None:
        event["ref"] = frame.ref
    session.send(event)


#: What each frame type does after `ready`. Features register their frame types here.
FRAME_HANDLERS: dict[str, FrameHandler] = {"ping": _ping}
