"""The in-process broker (`chatcore_memory`): fan-out within one node."""

from __future__ import annotations

import asyncio
import logging

import pytest

import chatcore_memory
from chatcore.interfaces import Broker, Subscription
from chatcore.server.app import App
from chatcore_memory import MemoryBroker


def run(coro):
    return asyncio.run(coro)


def test_it_implements_the_broker_interface():
    """A MemoryBroker and its subscriptions satisfy the core's protocols."""

    async def main():
        broker = MemoryBroker()
        await broker.start()
        subscription = await broker.subscribe("c", lambda data: None)
        assert isinstance(broker, Broker)
        assert isinstance(subscription, Subscription)
        await broker.close()

    run(main())


def test_every_subscriber_of_the_channel_receives_it_and_only_that_channel():
    """Sync and async handlers receive the bytes before publish returns; other channels don't."""

    async def main():
        broker = MemoryBroker()
        got: list[tuple[str, bytes]] = []

        async def async_handler(data: bytes) -> None:
            await asyncio.sleep(0)
            got.append(("async", data))

        await broker.subscribe("rooms", lambda data: got.append(("sync", data)))
        await broker.subscribe("rooms", async_handler)
        await broker.subscribe("other", lambda data: got.append(("other", data)))
        await broker.publish("rooms", b'{"x": 1}')
        assert got == [("sync", b'{"x": 1}'), ("async", b'{"x": 1}')]
        await broker.publish("nobody-listens", b"lost")  # no error, nobody called
        assert len(got) == 2

    run(main())


def test_unsubscribe_removes_only_that_subscription():
    """After unsubscribe() the handler is no longer called; a second call is harmless."""

    async def main():
        broker = MemoryBroker()
        got: list[str] = []

        def handler(data: bytes) -> None:
            got.append(data.decode())

        first = await broker.subscribe("c", handler)
        await broker.subscribe("c", handler)  # the same function twice: two subscriptions
        await broker.publish("c", b"a")
        await first.unsubscribe()
        await first.unsubscribe()
        await broker.publish("c", b"b")
        assert got == ["a", "a", "b"]
        assert broker.subscriber_count("c") == 1

    run(main())


def test_a_failing_handler_is_logged_and_the_others_still_run(caplog):
    """An exception in one handler never reaches the publisher nor stops the next handler."""

    async def main():
        broker = MemoryBroker()
        got: list[bytes] = []

        def broken(data: bytes) -> None:
            raise ValueError("boom")

        async def broken_async(data: bytes) -> None:
            raise RuntimeError("async boom")

        await broker.subscribe("c", broken)
        await broker.subscribe("c", broken_async)
        await broker.subscribe("c", got.append)
        with caplog.at_level(logging.ERROR, logger="chatcore_memory.broker"):
            await broker.publish("c", b"still delivered")
        assert got == [b"still delivered"]
        assert len([r for r in caplog.records if "failed" in r.getMessage()]) == 2

    run(main())


def test_a_handler_may_unsubscribe_itself_while_being_called():
    """Changing subscriptions from inside a handler does not disturb the ongoing publish."""

    async def main():
        broker = MemoryBroker()
        got: list[str] = []
        subscription: Subscription | None = None

        async def once(data: bytes) -> None:
            got.append("once")
            assert subscription is not None
            await subscription.unsubscribe()

        subscription = await broker.subscribe("c", once)
        await broker.subscribe("c", lambda data: got.append("always"))
        await broker.publish("c", b"1")
        await broker.publish("c", b"2")
        assert got == ["once", "always", "always"]

    run(main())


@pytest.mark.parametrize(
    ("url", "answers"),
    [
        ("memory://", True),
        ("MEMORY://", True),
        ("redis://127.0.0.1:6379", False),
        ("nats://127.0.0.1:4222", False),
    ],
)
def test_the_provider_answers_only_for_memory_urls(url, answers):
    """chatcore_broker builds a MemoryBroker for memory:// and leaves other schemes to others."""
    app = App.from_config(None, overrides={"broker": {"url": url}}, entry_points=False)
    broker = chatcore_memory.chatcore_broker(app)
    assert isinstance(broker, MemoryBroker) is answers
    if not answers:
        assert broker is None
