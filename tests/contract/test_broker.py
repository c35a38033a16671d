"""The broker contract on every built-in broker (memory, Redis, NATS), plus what each needs on
its own: recovery after its server dies and comes back (private servers on free ports), and
the plugins' hooks and settings."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from chatcore.hooks import call_first
from chatcore.interfaces import Broker
from chatcore.server.app import App
from chatcore.testing.broker_contract import BrokerContract, Inbox
from chatcore.testing.brokers import PrivateServer, nats_server, redis_server, running
from chatcore.testing.server import free_port
from chatcore.testing.services import (
    nats_url,
    redis_url,
    require_url,
    unique_name,
)
from chatcore_memory import MemoryBroker
from chatcore_nats import NatsBroker, NatsBrokerSettings, subject
from chatcore_redis import BrokerUnavailable, RedisBroker, RedisBrokerSettings

RECOVERY_SECONDS = 20.0


class TestMemoryBroker(BrokerContract):
    shared = False

    def make_broker(self, prefix: str) -> Broker:
        return MemoryBroker()


class TestRedisBroker(BrokerContract):
    @pytest.fixture(autouse=True)
    def _redis(self) -> None:
        require_url("Redis", redis_url())

    def make_broker(self, prefix: str) -> Broker:
        return RedisBroker(RedisBrokerSettings(url=redis_url(), channel_prefix=f"{prefix}:"))


class TestNatsBroker(BrokerContract):
    @pytest.fixture(autouse=True)
    def _nats(self) -> None:
        require_url("NATS", nats_url())

    def make_broker(self, prefix: str) -> Broker:
        return NatsBroker(NatsBrokerSettings(url=nats_url(), subject_prefix=prefix))


# --- recovery: the broker's server dies and comes back on the same port ----------------------


@pytest.fixture
def private_redis() -> Iterator[PrivateServer]:
    with running(redis_server()) as server:
        yield server


@pytest.fixture
def private_nats() -> Iterator[PrivateServer]:
    with running(nats_server()) as server:
        yield server


async def delivered_again(broker: Broker, channel: str, inbox: Inbox) -> None:
    """Publish until one publication arrives: the broker reconnected and resubscribed by itself.
    Fails after RECOVERY_SECONDS. Publications before that may fail or be lost (at most once)."""
    deadline = time.monotonic() + RECOVERY_SECONDS
    attempt = 0
    while not inbox.items:
        if time.monotonic() > deadline:
            pytest.fail(f"no delivery within {RECOVERY_SECONDS} s after the server came back")
        attempt += 1
        try:
            await broker.publish(channel, b"after %d" % attempt)
        except ConnectionError:
            pass  # still reconnecting: publications fail fast, nothing is buffered
        await inbox.arrived(1, within=0.2)


async def survives_a_restart(broker: Broker, server: PrivateServer) -> None:
    await broker.start()
    try:
        before = Inbox()
        await broker.subscribe("chatcore.room.r", before)
        await broker.publish("chatcore.room.r", b"before")
        assert await before.wait() == [b"before"]

        await broker.ping()
        server.kill()
        for check in (
            lambda: broker.publish("chatcore.room.r", b"lost"),
            broker.ping,  # what /healthz asks: the node is not healthy during the outage
        ):
            with pytest.raises(ConnectionError):
                # The outage may need a moment to be noticed; then both fail fast.
                deadline = time.monotonic() + RECOVERY_SECONDS
                while time.monotonic() < deadline:
                    await check()
                    await asyncio.sleep(0.05)
        after = Inbox()
        await broker.subscribe("chatcore.room.r", after)  # during the outage: no error
        server.start()
        await delivered_again(broker, "chatcore.room.r", after)
        await broker.ping()  # healthy again
        assert before.items[0] == b"before"
        assert all(item.startswith(b"after") for item in after.items)
    finally:
        await broker.close()


def test_redis_broker_reconnects_after_a_restart(private_redis: PrivateServer) -> None:
    settings = RedisBrokerSettings(
        url=f"redis://127.0.0.1:{private_redis.port}/0", reconnect_max_seconds=0.2
    )
    asyncio.run(survives_a_restart(RedisBroker(settings), private_redis))


def test_nats_broker_reconnects_after_a_restart(private_nats: PrivateServer) -> None:
    settings = NatsBrokerSettings(
        url=f"nats://127.0.0.1:{private_nats.port}", reconnect_wait_seconds=0.2
    )
    asyncio.run(survives_a_restart(NatsBroker(settings), private_nats))


def test_start_fails_clearly_when_the_server_is_absent() -> None:
    port = free_port()  # nothing listens there

    async def main() -> None:
        redis = RedisBroker(RedisBrokerSettings(url=f"redis://127.0.0.1:{port}/0"))
        with pytest.raises(BrokerUnavailable, match=f"127.0.0.1:{port}"):
            await redis.start()
        await redis.close()
        nats_broker = NatsBroker(NatsBrokerSettings(url=f"nats://127.0.0.1:{port}"))
        with pytest.raises(ConnectionError, match=f"127.0.0.1:{port}"):
            await nats_broker.start()
        await nats_broker.close()

    asyncio.run(main())


# --- plugins: hooks, settings, subjects -------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("redis://127.0.0.1:6379/0", RedisBroker),
        ("rediss://cache.example:6380/1", RedisBroker),
        ("nats://127.0.0.1:4222", NatsBroker),
        ("memory://", MemoryBroker),
    ],
)
def test_the_broker_url_selects_the_plugin(url: str, kind: type) -> None:
    app = App.from_config(overrides={"broker": {"url": url}})
    broker = asyncio.run(call_first(app.hook.chatcore_broker, app=app))
    assert isinstance(broker, kind)


def test_broker_settings_carry_both_plugins_keys() -> None:
    broker = {"url": "redis://h/0", "channel_prefix": "svc1:", "subject_prefix": "svc1"}
    app = App.from_config(overrides={"broker": broker})
    assert app.settings.section("broker", RedisBrokerSettings).channel_prefix == "svc1:"
    assert app.settings.section("broker", NatsBrokerSettings).subject_prefix == "svc1"


def test_channels_map_to_safe_subjects() -> None:
    assert subject("", "chatcore.room.ab12") == "chatcore.room.ab12"
    assert subject("t_1", "chatcore.user.ab12") == "t_1.chatcore.user.ab12"
    assert subject("", "chatcore.room.a b*>%") == "chatcore.room.a%20b%2A%3E%25"
    assert subject("", "a..b") == "a.%.b"
    assert subject("", "chatcore.room.*") != subject("", "chatcore.room.%2A")
    with pytest.raises(ValueError):
        subject("p", "")
    with pytest.raises(ValueError):
        NatsBrokerSettings(url="nats://h", subject_prefix="a b")


def test_unique_prefixes_differ() -> None:
    assert unique_name("bk") != unique_name("bk")
