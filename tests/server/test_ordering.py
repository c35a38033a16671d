"""`chatcore.server.realtime.ordering.RoomOrder`: a room's message events reach its sessions in seq
order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from chatcore.server.realtime import ordering
from chatcore.server.realtime.ordering import RoomOrder

pytestmark = pytest.mark.anyio

#: Every wait of these tests; far above the repair delay, so only a broken order times out.
TIMEOUT = 5.0


class Room:
    """A RoomOrder with what it released and a fake storage holding `stored` seqs."""

    def __init__(self, stored: dict[int, bytes] | None = None) -> None:
        self.stored = stored or {}
        self.released: list[tuple[int, bytes]] = []
        self.fetches: list[tuple[int, int]] = []
        self.fetched_at: list[float] = []
        self._wanted: tuple[int, asyncio.Event] | None = None
        self._tasks_before: set[asyncio.Task[object]] | None = None  # taken in the test's task
        self.order = RoomOrder(self._release, self._fetch)

    def _release(self, seq: int, event: bytes) -> None:
        self.released.append((seq, event))
        if self._wanted is not None and seq >= self._wanted[0]:
            self._wanted[1].set()

    async def _fetch(self, after_seq: int, limit: int) -> list[tuple[int, bytes]]:
        self.fetches.append((after_seq, limit))
        self.fetched_at.append(asyncio.get_running_loop().time())
        seqs = sorted(s for s in self.stored if s > after_seq)[:limit]
        return [(s, self.stored[s]) for s in seqs]

    def receive(self, *seqs: int) -> None:
        if self._tasks_before is None:
            self._tasks_before = asyncio.all_tasks()
        for seq in seqs:
            self.order.receive(seq, event(seq))

    async def released_up_to(self, seq: int) -> None:
        """Wait (at most TIMEOUT) until `seq` or a later one is released."""
        if any(s >= seq for s, _ in self.released):
            return
        self._wanted = (seq, asyncio.Event())
        await asyncio.wait_for(self._wanted[1].wait(), TIMEOUT)

    async def repairs_finished(self) -> None:
        """Wait (at most TIMEOUT) until the tasks started since this room was made have ended."""
        started = asyncio.all_tasks() - (self._tasks_before or set())
        if started:
            _, pending = await asyncio.wait(started, timeout=TIMEOUT)
            assert not pending, "a repair is still running"

    def seqs(self) -> list[int]:
        return [s for s, _ in self.released]


def event(seq: int, source: str = "broker") -> bytes:
    return f'{{"type":"message","seq":{seq},"from":"{source}"}}'.encode()


@pytest.fixture
async def room() -> AsyncIterator[Room]:
    room = Room()
    yield room
    room.order.close()


async def test_events_in_order_are_released_at_once(room: Room) -> None:
    """Consecutive seqs are released as they arrive, from whatever seq comes first."""
    room.receive(41)
    assert room.released == [(41, event(41))]
    room.receive(42, 43)
    assert room.seqs() == [41, 42, 43]
    assert room.order.last == 43
    await room.repairs_finished()
    assert room.fetches == []


async def test_an_event_ahead_of_a_gap_waits_until_the_gap_fills(
    room: Room, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A later seq is held while an earlier one is missing; the missing one releases both."""
    monkeypatch.setattr(ordering, "REPAIR_DELAY_SECONDS", 0)  # the repair finds nothing to do
    room.receive(1, 3, 4)
    assert room.seqs() == [1]
    room.receive(2)
    assert room.released == [(1, event(1)), (2, event(2)), (3, event(3)), (4, event(4))]
    await room.repairs_finished()
    assert room.fetches == []


async def test_a_gap_that_does_not_fill_is_read_from_storage_after_the_delay() -> None:
    """A lost event is read from storage once REPAIR_DELAY_SECONDS pass; the held ones follow."""
    room = Room(stored={2: event(2, "storage"), 3: event(3, "storage")})
    received_at = asyncio.get_running_loop().time()
    room.receive(1, 4, 5)
    await room.released_up_to(5)
    assert room.released == [
        (1, event(1)),
        (2, event(2, "storage")),
        (3, event(3, "storage")),
        (4, event(4)),
        (5, event(5)),
    ]
    assert room.fetches == [(1, 2)]  # only the missing seqs
    # Not before the delay: most gaps fill by themselves (a small margin for the clock).
    assert room.fetched_at[0] - received_at >= ordering.REPAIR_DELAY_SECONDS - 0.01


async def test_a_gap_storage_lacks_does_not_stall_the_room() -> None:
    """When storage does not have the missing seqs either, the held events are released."""
    room = Room()
    room.receive(1, 3)
    await room.released_up_to(3)
    assert room.seqs() == [1, 3]
    room.receive(4)
    assert room.seqs() == [1, 3, 4]


async def test_seqs_already_released_are_dropped() -> None:
    """A duplicate, or a lost event arriving after storage filled its gap, is not released again."""
    room = Room(stored={2: event(2, "storage")})
    room.receive(1, 3)
    await room.released_up_to(3)
    room.receive(2, 1, 3)
    assert room.released == [(1, event(1)), (2, event(2, "storage")), (3, event(3))]
    room.receive(4)
    assert room.seqs() == [1, 2, 3, 4]
    await room.repairs_finished()


async def test_too_many_held_events_are_repaired_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past HELD_MAX held events the gap is read from storage without waiting out the delay."""
    monkeypatch.setattr(ordering, "HELD_MAX", 3)
    # A delay far beyond the test's timeout: only HELD_MAX can start the repair in time.
    monkeypatch.setattr(ordering, "REPAIR_DELAY_SECONDS", 3600)
    room = Room(stored={2: event(2, "storage")})
    try:
        room.receive(1, 3, 4, 5)  # three held: at the bound, still waiting
        assert room.seqs() == [1]
        room.receive(6)  # four held: past it
        await room.released_up_to(6)
        assert room.seqs() == [1, 2, 3, 4, 5, 6]
        assert room.fetches == [(1, 1)]
    finally:
        room.order.close()
