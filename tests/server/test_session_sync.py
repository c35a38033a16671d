"""A session's side of catch-up (`chatcore.server.realtime.session.Session`): live message events
around a
`sync`. The catch-up reads storage, where a message is visible before its live event has
crossed the broker, so that event can reach the session after `synced`; it must not be sent
twice (docs/protocol.md: after `synced`, only seqs above the room's synced value)."""

from __future__ import annotations

from types import SimpleNamespace

from chatcore.server.realtime.session import Session


class RecordingConnection:
    """The connection end of a session: keeps what is sent."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send(self, data: bytes) -> None:
        self.sent.append(data)


def ready_session(released: dict[str, int]) -> tuple[Session, RecordingConnection]:
    """A session past `ready`, on a node that has released `released[room]` live so far."""
    hub = SimpleNamespace(released_seq=lambda room: released.get(room, -1))
    conn = RecordingConnection()
    session = Session(SimpleNamespace(hub=hub), conn)  # type: ignore[arg-type]
    session._before_ready = None  # what sending `ready` does
    return session, conn


def live(room: str, seq: int) -> tuple[str, int, bytes]:
    return room, seq, f"{room}:{seq}".encode()


def test_a_live_event_the_catch_up_already_sent_is_not_sent_after_synced() -> None:
    session, conn = ready_session({"r": 6})
    session.begin_sync()
    session.deliver(*live("r", 6))  # held during the sync; the catch-up covers it
    session.end_sync({"r": 8})  # storage already had 7 and 8; their live events are late
    for seq in (7, 8, 9, 10):
        session.deliver(*live("r", seq))
    assert conn.sent == [b"r:9", b"r:10"]


def test_events_held_during_the_sync_follow_it_above_the_synced_seq() -> None:
    session, conn = ready_session({"r": 8})
    session.begin_sync()
    for seq in (7, 8, 9):
        session.deliver(*live("r", seq))
    assert conn.sent == []
    session.end_sync({"r": 8})
    assert conn.sent == [b"r:9"]


def test_other_rooms_and_events_without_a_seq_are_untouched() -> None:
    session, conn = ready_session({})
    session.begin_sync()
    session.end_sync({"r": 5})
    session.deliver("r", None, b"typing")
    session.deliver(*live("other", 1))
    session.deliver(*live("r", 5))
    session.deliver(*live("r", 6))
    session.deliver(*live("r", 3))  # rooms release in seq order: this cannot come; not filtered
    assert conn.sent == [b"typing", b"other:1", b"r:6", b"r:3"]
