"""The broker contract: what every `chatcore.interfaces.Broker` must do.

A backend runs this suite by subclassing `BrokerContract` and implementing `make_broker`: a new,
not yet started broker of one node whose channels live in the private space `prefix` (a key or
subject prefix; a fresh one per test, from `unique_name`). The fixtures `broker` and
`second_broker` (another node on the same server and prefix) start and close them::

    class TestMyBroker(BrokerContract):
        def make_broker(self, prefix: str) -> Broker:
            return MyBroker(url=..., prefix=prefix)

A broker without other nodes (the in-process one) sets `shared = False`: the tests between
nodes are then skipped. The tests are async on anyio's pytest plugin; they wait on events with
timeouts, never on sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from chatcore.interfaces import Broker, Subscription
from chatcore.testing.services import unique_name

#: Longest wait for one delivery; a healthy broker on loopback needs milliseconds.
TIMEOUT = 5.0


class Inbox:
    """A handler that collects payloads; `await inbox.wait(n)` until n arrived (or fail)."""

    def __init__(self) -> None:
        self.items: list[bytes] = []
        self._changed = asyncio.Event()

    def __call__(self, data: bytes) -> None:
        self.items.append(data)
        self._changed.set()

    async def arrived(self, count: int = 1, within: float = TIMEOUT) -> bool:
        """True once `count` publications arrived; False when `within` seconds pass first."""

        async def until() -> None:
            while len(self.items) < count:
                self._changed.clear()
                await self._changed.wait()

        try:
            await asyncio.wait_for(until(), within)
        except TimeoutError:
            return False
        return True

    async def wait(self, count: int = 1, within: float = TIMEOUT) -> list[bytes]:
        """The publications once `count` arrived; the test fails after `within` seconds."""
        if not await self.arrived(count, within):
            pytest.fail(f"got {len(self.items)} of {count} publications within {within} s")
        return self.items


async def barrier(broker: Broker, publisher: Broker, channel: str) -> None:
    """Wait until a marker published by `publisher` on `channel` reached `broker`: everything
    published before it on that channel by the same publisher was delivered (or never will)."""
    marker = Inbox()
    subscription = await broker.subscribe(channel, marker)
    await publisher.publish(channel, b"-barrier-")
    await marker.wait()
    await subscription.unsubscribe()


class BrokerContract:
    #: False for a broker that reaches its own process only (no second node).
    shared: bool = True

    def make_broker(self, prefix: str) -> Broker:
        """A new, unstarted broker of one node over the private space `prefix`."""
        raise NotImplementedError

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    @pytest.fixture
    def prefix(self) -> str:
        return unique_name("bk")

    async def started(self, prefix: str) -> Broker:
        broker = self.make_broker(prefix)
        await broker.start()
        return broker

    @pytest.fixture
    async def broker(self, prefix: str) -> AsyncIterator[Broker]:
        broker = await self.started(prefix)
        try:
            yield broker
        finally:
            await broker.close()

    @pytest.fixture
    async def second_broker(self, broker: Broker, prefix: str) -> AsyncIterator[Broker]:
        if not self.shared:
            pytest.skip("this broker reaches its own process only")
        other = await self.started(prefix)
        try:
            yield other
        finally:
            await other.close()

    # --- one node ------------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_it_implements_the_interface(self, broker: Broker) -> None:
        subscription = await broker.subscribe("chatcore.logins", Inbox())
        assert isinstance(broker, Broker)
        assert isinstance(subscription, Subscription)
        await subscription.unsubscribe()

    @pytest.mark.anyio
    async def test_a_started_broker_answers_ping(self, broker: Broker) -> None:
        await broker.ping()
        await broker.ping()  # cheap enough for every health check

    @pytest.mark.anyio
    async def test_a_closed_broker_fails_ping(self, prefix: str) -> None:
        if not self.shared:
            pytest.skip("an in-process broker has no connection to lose")
        broker = await self.started(prefix)
        await broker.ping()
        await broker.close()
        with pytest.raises(ConnectionError):
            await broker.ping()

    @pytest.mark.anyio
    async def test_a_subscriber_gets_publications_including_its_own_nodes(
        self, broker: Broker
    ) -> None:
        inbox = Inbox()
        await broker.subscribe("chatcore.room.ab12", inbox)
        await broker.publish("chatcore.room.ab12", b"hello")
        assert await inbox.wait() == [b"hello"]

    @pytest.mark.anyio
    async def test_channels_are_separate(self, broker: Broker) -> None:
        room, user = Inbox(), Inbox()
        await broker.subscribe("chatcore.room.ab12", room)
        await broker.subscribe("chatcore.user.ab12", user)
        await broker.publish("chatcore.user.ab12", b"for the user")
        await broker.publish("chatcore.room.ab12", b"for the room")
        assert await room.wait() == [b"for the room"]
        assert await user.wait() == [b"for the user"]

    @pytest.mark.anyio
    async def test_order_per_channel_holds_for_1000_messages(self, broker: Broker) -> None:
        inbox = Inbox()
        await broker.subscribe("chatcore.room.order", inbox)
        sent = [str(i).encode() for i in range(1000)]
        for data in sent:
            await broker.publish("chatcore.room.order", data)
        assert await inbox.wait(len(sent), within=4 * TIMEOUT) == sent

    @pytest.mark.anyio
    async def test_several_handlers_on_one_channel(self, broker: Broker) -> None:
        first, second, third = Inbox(), Inbox(), Inbox()
        for inbox in (first, second, third):
            await broker.subscribe("chatcore.room.many", inbox)
        await broker.publish("chatcore.room.many", b"x")
        for inbox in (first, second, third):
            assert await inbox.wait() == [b"x"]

    @pytest.mark.anyio
    async def test_unsubscribe_stops_delivery_to_that_handler_only(self, broker: Broker) -> None:
        kept, dropped = Inbox(), Inbox()
        await broker.subscribe("chatcore.room.u", kept)
        subscription = await broker.subscribe("chatcore.room.u", dropped)
        await broker.publish("chatcore.room.u", b"1")
        await kept.wait(1)
        await dropped.wait(1)
        await subscription.unsubscribe()
        await subscription.unsubscribe()  # twice is harmless
        await broker.publish("chatcore.room.u", b"2")
        assert await kept.wait(2) == [b"1", b"2"]
        # `kept` got "2", so "2" was dispatched; the same handler twice is two subscriptions.
        await barrier(broker, broker, "chatcore.room.u")
        assert dropped.items == [b"1"]

    @pytest.mark.anyio
    async def test_the_last_unsubscribe_ends_the_channel_and_it_can_come_back(
        self, broker: Broker
    ) -> None:
        gone = Inbox()
        subscription = await broker.subscribe("chatcore.room.again", gone)
        await subscription.unsubscribe()
        await broker.publish("chatcore.room.again", b"nobody listens")
        back = Inbox()
        await broker.subscribe("chatcore.room.again", back)
        await broker.publish("chatcore.room.again", b"back")
        assert await back.wait() == [b"back"]
        assert gone.items == []

    @pytest.mark.anyio
    async def test_an_async_handler_is_awaited(self, broker: Broker) -> None:
        done = Inbox()

        async def handler(data: bytes) -> None:
            await asyncio.sleep(0)  # a real suspension point: only an awaited handler finishes
            done(data)

        await broker.subscribe("chatcore.room.async", handler)
        await broker.publish("chatcore.room.async", b"a")
        await broker.publish("chatcore.room.async", b"b")
        assert await done.wait(2) == [b"a", b"b"]

    @pytest.mark.anyio
    async def test_a_failing_handler_stops_neither_others_nor_later_messages(
        self, broker: Broker
    ) -> None:
        def broken(data: bytes) -> None:
            raise RuntimeError("handler bug")

        async def broken_async(data: bytes) -> None:
            raise RuntimeError("async handler bug")

        inbox = Inbox()
        await broker.subscribe("chatcore.room.f", broken)
        await broker.subscribe("chatcore.room.f", broken_async)
        await broker.subscribe("chatcore.room.f", inbox)
        await broker.publish("chatcore.room.f", b"1")
        await broker.publish("chatcore.room.f", b"2")
        assert await inbox.wait(2) == [b"1", b"2"]

    @pytest.mark.anyio
    async def test_binary_payloads_survive(self, broker: Broker) -> None:
        payloads = [b"line\nbreak\r\n", b"\x00\xff\xfe not utf-8 \x80", bytes(range(256)), b""]
        inbox = Inbox()
        await broker.subscribe("chatcore.room.bin", inbox)
        for data in payloads:
            await broker.publish("chatcore.room.bin", data)
        assert await inbox.wait(len(payloads)) == payloads

    # --- several nodes -------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_a_second_node_sees_publications_both_ways(
        self, broker: Broker, second_broker: Broker
    ) -> None:
        here, there = Inbox(), Inbox()
        await broker.subscribe("chatcore.room.x", here)
        await second_broker.subscribe("chatcore.room.x", there)
        await broker.publish("chatcore.room.x", b"from one")
        assert await there.wait() == [b"from one"]
        await second_broker.publish("chatcore.room.x", b"from two")
        assert await here.wait(2) == [b"from one", b"from two"]
        assert await there.wait(2) == [b"from one", b"from two"]

    @pytest.mark.anyio
    async def test_order_holds_across_nodes(self, broker: Broker, second_broker: Broker) -> None:
        inbox = Inbox()
        await second_broker.subscribe("chatcore.room.o2", inbox)
        sent = [str(i).encode() for i in range(300)]
        for data in sent:
            await broker.publish("chatcore.room.o2", data)
        assert await inbox.wait(len(sent), within=4 * TIMEOUT) == sent

    @pytest.mark.anyio
    async def test_prefixes_isolate(self, broker: Broker, second_broker: Broker) -> None:
        stranger = await self.started(unique_name("bk"))
        try:
            ours, theirs = Inbox(), Inbox()
            await second_broker.subscribe("chatcore.logins", ours)
            await stranger.subscribe("chatcore.logins", theirs)
            await broker.publish("chatcore.logins", b"ours")
            assert await ours.wait() == [b"ours"]
            # The stranger's own publication behind ours arrives; ours never does.
            await barrier(stranger, stranger, "chatcore.logins")
            assert theirs.items == [b"-barrier-"]
        finally:
            await stranger.close()
