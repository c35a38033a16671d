"""The engine's small parts on their own: the event stream, the reconnect backoff, the lock that
lets one process of a device hold the connection. (Everything else runs against real servers
in the other test_engine_* modules.)"""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import pytest

from chatcore.client.connection import Backoff
from chatcore.client.events import ClientEvent, ServerError, TypingChanged
from chatcore.client.lock import EngineLock, lock_path
from chatcore.client.stream import EventStream

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
