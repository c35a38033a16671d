"""`chatcore.server.realtime.fanout`: the envelope routes an encoded event between nodes without
touching it."""

from __future__ import annotations

import orjson
import pytest

from chatcore.protocol.frames import encode
from chatcore.server.realtime.fanout import pack, room_channel, unpack, user_channel

#: Every header the hub writes: room events, user events, and block notes between nodes.
HEADERS = {
    "room": "r-1",
    "seq": 42,
    "skip_user": "u-1",
    "hide": ["u-2", "u-3"],
    "user": "u-4",
    "members": ["u-1", "u-4"],
    "block": "u-5",
    "blocked": True,
}


@pytest.mark.parametrize(("key", "value"), HEADERS.items())
def test_every_header_survives_the_round_trip(key, value):
    """Each routing header comes back as it was packed."""
    envelope = unpack(pack(b"{}", **{key: value}))
    assert envelope.header == {key: value}


def test_all_headers_together_survive_the_round_trip():
    """A header with every key comes back whole."""
    assert unpack(pack(b"{}", **HEADERS)).header == HEADERS


def test_headers_without_a_value_are_left_out():
    """None means "not set": such keys are not written at all."""
    data = pack(b"{}", room="r-1", seq=None, skip_user=None)
    assert unpack(data).header == {"room": "r-1"}
    assert data.startswith(b'{"room":"r-1"}\n')


def test_the_seq_of_an_envelope():
    """`seq` is the header's integer seq, or None when absent or not an integer."""
    assert unpack(pack(b"{}", room="r", seq=7)).seq == 7
    assert unpack(pack(b"{}", room="r")).seq is None
    assert unpack(pack(b"{}", room="r", seq="7")).seq is None


@pytest.mark.parametrize(
    "event",
    [
        encode({"type": "message", "body": "line one\nline two", "seq": 1}),
        b'{"type":"typing"}\n{"second": "line"}\n',  # raw newlines after the header's
        bytes(range(256)),  # any bytes at all, not even UTF-8
        b"",
    ],
    ids=["encoded", "newlines", "binary", "empty"],
)
def test_the_event_is_passed_through_byte_for_byte(event):
    """Whatever the event's bytes, the receiver gets exactly them back."""
    assert unpack(pack(event, **HEADERS)).event == event


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b'{"room":"r-1"}',  # no newline: no event part
        b"not json\n{}",
        b'{"room":\n{}',  # the header cut at a newline
        b'["room","r-1"]\n{}',  # JSON, but not an object
        b"42\n{}",
        b"\n{}",
    ],
    ids=["empty", "no-newline", "not-json", "cut", "array", "number", "no-header"],
)
def test_a_malformed_envelope_is_a_value_error(data):
    """What is not an envelope raises ValueError, which the hub catches and logs."""
    with pytest.raises(ValueError):
        unpack(data)


def test_room_and_user_events_travel_on_their_own_channels():
    """Each room and each user has a channel of its own, in the documented namespaces."""
    assert room_channel("r-1") == "chatcore.room.r-1"
    assert user_channel("u-1") == "chatcore.user.u-1"
    assert room_channel("x") != user_channel("x")


def test_the_header_is_plain_json():
    """Another implementation can read the header with any JSON parser."""
    head, _, _ = pack(b"{}", **HEADERS).partition(b"\n")
    assert orjson.loads(head) == HEADERS
