"""The `send` frame's fast path (`chatcore.protocol.frames.parse_frame`) applies exactly the
rules of `SendFrame`: whatever it accepts the model accepts with the same values, and whatever
the model refuses comes back as the model's own error. Also: an ack and a message event built
around a message encoded once are the bytes `encode` makes of the same dicts."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from chatcore.errors import validation_message
from chatcore.models import Message
from chatcore.protocol.frames import (
    FrameError,
    SendFrame,
    ack_of,
    encode,
    message_event,
    message_event_of,
    message_json,
    parse_frame,
)

BASE: dict[str, Any] = {"type": "send", "ref": "r-1", "room_id": "room-1", "body": "hello"}

#: Values for every field of the frame: valid ones, edges and wrong types.
VALUES: dict[str, list[Any]] = {
    "ref": ["x", "r" * 128, "r" * 129, "", 5, None, True, ["r"], {"r": 1}, "é" * 128],
    "room_id": ["room", "i" * 128, "i" * 129, "", 7, None, False, [], 1.5],
    "kind": ["text", "media", "sticker", "system", "Text", "", None, 1, ["text"], {"k": 1}],
    "body": ["", "hi", "x" * 10_000, None, 3, True, ["b"], {"b": 1}, "a\nb"],
    "media_id": ["m", "m" * 128, "m" * 129, "", None, 5, False, ["m"]],
    "sticker_id": ["s", "s" * 129, "", None, 0],
    "reply_to": ["msg", "m" * 128, "m" * 129, "", None, 1.0, True],
}

ABSENT = object()


def cases() -> list[dict[str, Any]]:
    found = [dict(BASE), {"type": "send", "ref": "r", "room_id": "x"}]
    for field, values in VALUES.items():
        for value in [*values, ABSENT]:
            frame = dict(BASE)
            if value is ABSENT:
                frame.pop(field, None)
            else:
                frame[field] = value
            found.append(frame)
    found.append({**BASE, "unknown": [1, 2], "another": None})  # extra fields are ignored
    return found


def model_outcome(data: dict[str, Any]) -> SendFrame | str:
    try:
        return SendFrame.model_validate(data)
    except ValidationError as exc:
        return validation_message(exc.errors())


def parsed_outcome(data: dict[str, Any]) -> SendFrame | str:
    try:
        frame = parse_frame(orjson.dumps(data))
    except FrameError as exc:
        return exc.message
    assert isinstance(frame, SendFrame)
    return frame


@pytest.mark.parametrize("data", cases(), ids=lambda d: orjson.dumps(d).decode()[:80])
def test_a_send_frame_is_accepted_or_refused_as_the_model_does(data: dict[str, Any]) -> None:
    expected, got = model_outcome(data), parsed_outcome(data)
    if isinstance(expected, str):
        assert got == expected, "refused, with the model's own words"
        return
    assert isinstance(got, SendFrame)
    assert got == expected
    assert got.model_dump() == expected.model_dump()
    assert got.model_fields_set == expected.model_fields_set


def test_an_accepted_send_frame_is_a_frozen_model() -> None:
    frame = parse_frame(orjson.dumps(BASE))
    assert isinstance(frame, SendFrame)
    with pytest.raises(ValidationError):
        frame.body = "changed"  # type: ignore[misc]


MESSAGE = Message(
    id="m-1",
    room_id="room-1",
    seq=42,
    sender_id="u-1",
    ref='r "quoted" é \n',
    body="line one\nline two \u2028 é 😀",
    ts=1_765_000_000_000,
    reply_to="m-0",
)


def test_a_message_event_around_its_encoding_is_what_encode_makes() -> None:
    encoded = message_json(MESSAGE)
    expected = encode({"type": "message", "message": MESSAGE.wire()})
    assert message_event_of(encoded) == expected
    assert message_event(MESSAGE) == expected


@pytest.mark.parametrize("ref", ["r-1", 'with "quotes" and \\ and \n', "é😀"])
def test_an_ack_around_the_message_encoding_is_what_encode_makes(ref: str) -> None:
    ack = ack_of(ref, message_json(MESSAGE))
    assert ack == encode({"type": "ack", "ref": ref, "message": MESSAGE.wire()})
    assert orjson.loads(ack) == {"type": "ack", "ref": ref, "message": MESSAGE.wire()}
