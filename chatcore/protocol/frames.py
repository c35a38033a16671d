"""WebSocket frames of docs/protocol.md as validated models, and the encoding of server events.

Client frames are parsed strictly (a string is not a number, a number is not a boolean) so a
mistyped field is a `bad_request`, as the contract says; unknown extra fields are ignored so
newer clients keep working. Server events are plain dicts encoded once with orjson.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from chatcore.errors import ChatError, ErrorCode, validation_message
from chatcore.models import Message

Ref = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Id = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Seq = Annotated[int, Field(ge=0)]


class ClientFrame(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)
    type: str


class AuthFrame(ClientFrame):
    type: Literal["auth"]
    token: Annotated[str, StringConstraints(min_length=1, max_length=8192)]


class PingFrame(ClientFrame):
    type: Literal["ping"]
    ref: Ref | None = None


class SendFrame(ClientFrame):
    type: Literal["send"]
    ref: Ref
    room_id: Id
    kind: Literal["text", "media", "sticker"] = "text"
    body: str | None = None
    media_id: Id | None = None
    sticker_id: Id | None = None
    reply_to: Id | None = None


class SyncFrame(ClientFrame):
    type: Literal["sync"]
    ref: Ref | None = None
    rooms: dict[Id, Seq] = Field(default_factory=dict)
    since_ts: Annotated[int, Field(ge=0)] | None = None


class TypingFrame(ClientFrame):
    type: Literal["typing"]
    room_id: Id
    active: bool


class ReadFrame(ClientFrame):
    type: Literal["read"]
    room_id: Id
    seq: Seq


CLIENT_FRAMES: dict[str, type[ClientFrame]] = {
    "auth": AuthFrame,
    "ping": PingFrame,
    "send": SendFrame,
    "sync": SyncFrame,
    "typing": TypingFrame,
    "read": ReadFrame,
}


class FrameError(ChatError):
    """A frame that could not be parsed; carries the `ref` when one could be read."""

    def __init__(self, message: str, ref: str | None = None) -> None:
        super().__init__(ErrorCode.BAD_REQUEST, message)
        self.ref = ref


def parse_frame(raw: str | bytes) -> ClientFrame:
    """Decode and validate one client frame, or raise FrameError saying what is wrong."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise FrameError("The frame is not valid JSON.") from None
    if not isinstance(data, dict):
        raise FrameError("A frame must be a JSON object with a 'type'.")
    ref = data.get("ref")
    ref = ref if isinstance(ref, str) and 0 < len(ref) <= 128 else None
    kind = data.get("type")
    model = CLIENT_FRAMES.get(kind) if isinstance(kind, str) else None
    if model is None:
        known = ", ".join(CLIENT_FRAMES)
        raise FrameError(f"Unknown frame type {kind!r}; expected one of: {known}.", ref)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise FrameError(validation_message(exc.errors()), ref) from None


def encode(event: dict[str, Any]) -> bytes:
    """Encode a server event once; the same bytes go to every recipient."""
    return orjson.dumps(event)


def message_event(message: Message) -> bytes:
    """The `message` event of a stored message, encoded (fan-out, catch-up and repair)."""
    return encode({"type": "message", "message": message.wire()})
