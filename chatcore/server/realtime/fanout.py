"""How events travel between nodes: broker channels and the envelope around an event.

An event is encoded once (`chatcore.protocol.frames.encode`); the envelope adds a small routing
header so
a receiving node can route the very same event bytes to its sessions without decoding them:

    {"room": ROOM_ID, "seq": SEQ, "skip_user": USER_ID, "members": [...]}\\n<event bytes>

Every header key is optional. orjson never writes a raw newline, so the first newline ends the
header.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

#: Events for the members of a room: messages (with their seq), updates, typing, receipts.
ROOM_CHANNEL = "chatcore.room."
#: Events for every session of one user: room changes, presence, contacts.
USER_CHANNEL = "chatcore.user."


def room_channel(room_id: str) -> str:
    return ROOM_CHANNEL + room_id


def user_channel(user_id: str) -> str:
    return USER_CHANNEL + user_id


class Envelope(NamedTuple):
    header: dict[str, Any]
    event: bytes

    @property
    def seq(self) -> int | None:
        seq = self.header.get("seq")
        return seq if isinstance(seq, int) else None


def pack(event: bytes, **header: Any) -> bytes:
    """The envelope of `event`; header keys whose value is None are left out."""
    return seal({k: v for k, v in header.items() if v is not None}, event)


def seal(header: dict[str, Any], event: bytes) -> bytes:
    """The envelope of `event` with this header, as it is (the hot path's `pack`)."""
    return orjson.dumps(header) + b"\n" + event


def unpack(data: bytes) -> Envelope:
    """Split an envelope; ValueError when it is not one."""
    head, sep, event = data.partition(b"\n")
    if not sep:
        raise ValueError("not an envelope")
    header = orjson.loads(head)
    if not isinstance(header, dict):
        raise ValueError("not an envelope")
    return Envelope(header, event)
