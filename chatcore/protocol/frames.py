"""WebSocket frames of docs/protocol.md as validated models, and the encoding of server events.

Client frames are parsed strictly (a string is not a number, a number is not a boolean) so a
mistyped field is a `bad_request`, as the contract says; unknown extra fields are ignored so
newer clients keep working. Server events are plain dicts encoded once with orjson.

`send` is the frame a busy node parses most, so it has a fast path: the same rules as
`SendFrame`, checked by hand, and the model built without validating again. A frame the fast
path does not accept goes to pydantic, which accepts it or words the error; either way the
outcome is the model's.
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


_SEND_KINDS = frozenset(("text", "media", "sticker"))
_SEND_FIELDS = frozenset(SendFrame.model_fields)
_setattr = object.__setattr__  # past the frozen model's own __setattr__


def _is_id(value: object) -> bool:
    """`Id` / `Ref` in strict mode: exactly a `str` (JSON gives no subclass) of 1 to 128."""
    return type(value) is str and 0 < len(value) <= 128


def _valid_send(data: dict[str, Any]) -> SendFrame | None:
    """The `SendFrame` of `data` when it passes `SendFrame`'s rules, else None (let pydantic
    decide, and word the error)."""
    ref, room_id = data.get("ref"), data.get("room_id")
    if not (_is_id(ref) and _is_id(room_id)):
        return None
    kind, body = data.get("kind", "text"), data.get("body")
    if type(kind) is not str or kind not in _SEND_KINDS:
        return None
    if body is not None and type(body) is not str:
        return None
    media_id, sticker_id, reply_to = (
        data.get("media_id"),
        data.get("sticker_id"),
        data.get("reply_to"),
    )
    for value in (media_id, sticker_id, reply_to):
        if value is not None and not _is_id(value):
            return None
    frame = SendFrame.__new__(SendFrame)
    # What pydantic's own validation sets on a model, for fields valid already.
    _setattr(
        frame,
        "__dict__",
        {
            "type": "send",
            "ref": ref,
            "room_id": room_id,
            "kind": kind,
            "body": body,
            "media_id": media_id,
            "sticker_id": sticker_id,
            "reply_to": reply_to,
        },
    )
    _setattr(frame, "__pydantic_fields_set__", _SEND_FIELDS & data.keys())
    _setattr(frame, "__pydantic_extra__", None)
    _setattr(frame, "__pydantic_private__", None)
    return frame


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
    if kind == "send" and (frame := _valid_send(data)) is not None:
        return frame
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


def message_json(message: Message) -> bytes:
    """A stored message as the wire shows it, encoded: the part its `message` event and its
    `ack` share, so a send encodes its message once for both."""
    return orjson.dumps(message.wire())


def message_event(message: Message) -> bytes:
    """The `message` event of a stored message, encoded (fan-out, catch-up and repair)."""
    return message_event_of(message_json(message))


def message_event_of(encoded: bytes) -> bytes:
    """The `message` event around a `message_json`: the bytes `encode` makes of
    `{"type": "message", "message": ...}`."""
    return b'{"type":"message","message":' + encoded + b"}"


def ack_of(ref: str, encoded: bytes) -> bytes:
    """The `ack` of a send around its message's `message_json`: the bytes `encode` makes of
    `{"type": "ack", "ref": ref, "message": ...}`."""
    return b'{"type":"ack","ref":' + orjson.dumps(ref) + b',"message":' + encoded + b"}"
