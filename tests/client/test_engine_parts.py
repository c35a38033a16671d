"""The engine's small parts on their own: the event stream, the reconnect backoff, the lock that
lets one process of a device hold the connection, the floor under the server's flood control.
(Everything else runs against real servers in the other test_engine_* modules.)"""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import pytest

from chatcore.client.connection import Backoff
from chatcore.client.events import ClientEvent, ServerError, TypingChanged
from chatcore.client.flood import FloodFloor
from chatcore.client.lock import EngineLock, lock_path
from chatcore.client.stream import EventStream
from chatcore.ratelimit import TokenBucket

pytestmark = pytest.mark.anyio


def typing(n: int) -> TypingChanged:
    return TypingChanged("room", f"user{n}", True)


async def test_every_subscriber_gets_every_event_in_order_and_ends_at_close() -> None:
    hooked: list[ClientEvent] = []

    async def dispatch(event: ClientEvent) -> None:
        await asyncio.sleep(0)
        hooked.append(event)

    stream = EventStream(dispatch)
    stream.start()
    first, second = stream.subscribe(), stream.subscribe()
    events = [typing(n) for n in range(5)]
    for event in events:
        stream.publish(event)
    await stream.close()

    assert [e async for e in first] == events
    assert [e async for e in second] == events
    assert hooked == events
    assert [e async for e in stream.subscribe()] == []  # made after the end: ends at once


async def test_a_subscriber_that_leaves_its_loop_receives_nothing_more() -> None:
    async def dispatch(event: ClientEvent) -> None:
        pass

    stream = EventStream(dispatch)
    stream.start()
    stream.publish(typing(0))  # before: not seen
    staying, leaving = stream.subscribe(), stream.subscribe()
    stream.publish(typing(1))
    async for event in leaving:
        assert event == typing(1)
        break
    del leaving
    gc.collect()  # not needed on CPython (reference counting); says what is meant
    assert stream.subscribers == 1
    stream.publish(typing(2))
    await stream.close()
    assert [e async for e in staying] == [typing(1), typing(2)]


async def test_a_failing_hook_does_not_stop_the_stream(caplog: pytest.LogCaptureFixture) -> None:
    hooked: list[ClientEvent] = []

    async def dispatch(event: ClientEvent) -> None:
        if isinstance(event, ServerError):
            raise RuntimeError("the hook broke")
        hooked.append(event)

    stream = EventStream(dispatch)
    stream.start()
    stream.publish(ServerError("internal", "boom"))
    stream.publish(typing(1))
    await stream.close()
    assert hooked == [typing(1)]
    assert "the hook broke" in caplog.text


def test_backoff_doubles_up_to_its_maximum_with_jitter_and_starts_over() -> None:
    backoff = Backoff(0.5, 3.0)
    ceilings = [0.5, 1.0, 2.0, 3.0, 3.0]
    for ceiling in ceilings:
        wait = backoff.next()
        assert ceiling / 2 <= wait <= ceiling
    backoff.reset()
    assert 0.25 <= backoff.next() <= 0.5


async def test_one_holder_of_the_engine_lock_at_a_time(tmp_path: Path) -> None:
    path = lock_path(tmp_path / "device" / "client.db")
    assert path == tmp_path / "device" / "client.db.lock"
    app, handler = EngineLock(path), EngineLock(path)
    assert await app.acquire()
    assert await app.acquire()  # held already
    assert not await handler.acquire()
    await app.release()
    assert await handler.acquire()
    await handler.release()
    await handler.release()  # harmless


def test_the_flood_floor_starts_at_the_burst_and_counts_every_frame_written() -> None:
    floor = FloodFloor.for_limits({"ws_rate_per_second": 10, "ws_rate_burst": 5})
    for position in range(1, 6):
        assert floor.sure(now=100.0)  # time alone refills nothing: no answer came
        assert floor.wrote() == position
    assert not floor.sure(now=1000.0)
    assert floor.sure(now=0.0, ahead=-1) and not floor.sure(now=0.0, ahead=0)


def test_the_flood_floor_refills_only_from_answers_and_never_above_the_burst() -> None:
    floor = FloodFloor(rate=10, burst=5)
    for _ in range(8):
        floor.wrote()
    floor.answered(6, now=1.0)  # 2 frames written after the 6th: one token takes 0.3 s
    assert not floor.sure(now=1.25)
    assert floor.sure(now=1.3)
    assert floor.floor(now=60.0) == 5 - 2  # capped at the burst, less the two after it
    floor.answered(5, now=1.5)  # an earlier frame's answer, read later: bounds worse
    assert floor.floor(now=60.0) == 5 - 2
    floor.answered(8, now=2.0)  # the last frame answered: nothing written after it
    assert floor.floor(now=2.1) == pytest.approx(3)  # still the 6th's answer, a full refill
    assert floor.floor(now=60.0) == 5


def test_the_flood_floor_never_lets_through_what_a_server_bucket_refuses() -> None:
    """A server reading each frame at any time after it was written (here: all at the end,
    after a stall), with answers read when it says: every frame the floor called sure is
    accepted, whatever the delays."""
    server = TokenBucket(rate=10, burst=5, now=0.0)
    floor = FloodFloor(rate=10, burst=5)
    written: list[tuple[int, bool]] = []
    for step in range(40):
        now = step * 0.05
        sure = floor.sure(now)
        written.append((floor.wrote(), sure))
        if step % 10 == 9:  # the server catches up, all at once, and its answers arrive
            for position, was_sure in written:
                accepted = server.take(now) == 0.0
                assert accepted or not was_sure, f"frame {position} was sure and refused"
                floor.answered(position, now)
            written.clear()


def test_without_flood_control_every_frame_is_sure() -> None:
    floor = FloodFloor.for_limits({})
    for _ in range(1000):
        floor.wrote()
    floor.answered(10, now=0.0)
    assert floor.sure(now=0.0, ahead=10_000)
