"""The Redis broker: PUBLISH to send, one pub/sub connection per node to receive.

One reader task owns the subscriber connection. It dispatches every message to the handlers of
its channel in subscription order (awaiting the awaitable ones, so order per channel holds),
and when the connection is lost it reconnects with capped exponential backoff and subscribes
every channel again. Publications during an outage raise `BrokerUnavailable` at once: nothing
is buffered, because the broker is only a hint and storage is the truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from chatcore.failures import reason
from chatcore.interfaces import Handler
from chatcore.subscriptions import ChannelSubscription
from chatcore_redis.settings import RedisBrokerSettings, handles

__all__ = ["BrokerUnavailable", "RedisBroker", "RedisSubscription", "handles"]

log = logging.getLogger(__name__)

#: How long `subscribe` waits for Redis to confirm before relying on the next reconnect.
SUBSCRIBE_TIMEOUT_SECONDS = 5.0
#: Connecting and single commands (PUBLISH, SUBSCRIBE) give up after this long.
SOCKET_TIMEOUT_SECONDS = 5.0
FIRST_BACKOFF_SECONDS = 0.1


class BrokerUnavailable(ConnectionError):
    """Redis cannot be reached right now; the publication was not sent."""


#: A subscription's `channel` is the Redis channel (prefixed) it listens on.
RedisSubscription = ChannelSubscription


class RedisBroker:
    """`chatcore.interfaces.Broker` over Redis pub/sub.

    Channel names are prefixed with `channel_prefix` on the wire; handlers see payloads as
    published (bytes, unchanged). `start` fails when Redis cannot be reached; after that the
    broker survives outages by itself.
    """

    def __init__(self, settings: RedisBrokerSettings) -> None:
        self.settings = settings
        self.prefix = settings.channel_prefix
        self._client: Redis | None = None
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        # Wire channel name -> its handlers, in subscription order.
        self._channels: dict[str, list[RedisSubscription]] = {}
        # Channels Redis has confirmed on the current connection, and who waits for that.
        self._confirmed: set[str] = set()
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._connected = asyncio.Event()
        self._closing = False
        # Counts the core reports as metrics (`chatcore.metrics`): reconnections, messages
        # published and messages received.
        self.reconnects = 0
        self.published = 0
        self.received = 0

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        self._client = Redis.from_url(
            self.settings.url,
            socket_timeout=SOCKET_TIMEOUT_SECONDS,
            socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
            socket_keepalive=True,
            # Reconnecting is the reader's job, with its own backoff; a publication during an
            # outage fails at once instead of retrying behind the caller's back.
            retry=Retry(NoBackoff(), 0),
        )
        try:
            await self._open()
        except (RedisError, OSError) as exc:
            await self._client.aclose()
            self._client = None
            raise BrokerUnavailable(
                f"cannot connect to Redis at {self._where()}: {reason(exc)}"
            ) from exc
        self._reader = asyncio.create_task(self._run(), name="chatcore-redis-reader")

    async def close(self) -> None:
        self._closing = True
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        await self._drop_connection()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        self._channels.clear()
        for waiters in self._waiters.values():
            for waiter in waiters:
                waiter.cancel()
        self._waiters.clear()

    @property
    def connected(self) -> bool:
        """True while the subscriber connection is up (for health checks and tests)."""
        return self._connected.is_set()

    async def ping(self) -> None:
        """Raise `BrokerUnavailable` unless the reader's connection is up. No round trip: the
        reader pings Redis every `ping_interval_seconds` and drops a connection that stops
        answering."""
        if not self.connected:
            raise BrokerUnavailable(f"not connected to Redis at {self._where()}")

    # --- the Broker interface -----------------------------------------------------------------

    async def publish(self, channel: str, data: bytes) -> None:
        if self._client is None:
            raise BrokerUnavailable("the Redis broker is not started")
        try:
            await self._client.publish(self.prefix + channel, data)
        except (RedisError, OSError) as exc:
            raise BrokerUnavailable(f"cannot publish to Redis at {self._where()}: {exc}") from exc
        self.published += 1

    async def subscribe(self, channel: str, handler: Handler) -> RedisSubscription:
        """Add `handler` on `channel`; returns once Redis confirmed the channel, so what is
        published afterwards reaches it. During an outage it returns at once and the channel
        is subscribed on reconnection."""
        wire = self.prefix + channel
        subscription = RedisSubscription(self, wire, handler)
        handlers = self._channels.setdefault(wire, [])
        first = not handlers
        handlers.append(subscription)
        pubsub = self._pubsub
        if wire in self._confirmed or pubsub is None or not self.connected:
            return subscription
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(wire, []).append(waiter)
        try:
            if first:
                await pubsub.subscribe(wire)
            await asyncio.wait_for(asyncio.shield(waiter), SUBSCRIBE_TIMEOUT_SECONDS)
        except (RedisError, OSError, TimeoutError) as exc:
            # The reader notices a broken connection and subscribes again once reconnected.
            log.warning("subscribing to %r not confirmed yet (%s); retried on reconnect", wire, exc)
        finally:
            waiters = self._waiters.get(wire, [])
            if waiter in waiters:
                waiters.remove(waiter)
            if not waiters:
                self._waiters.pop(wire, None)
        return subscription

    def subscriber_count(self, channel: str) -> int:
        """How many handlers of this node listen on `channel` (for tests and metrics)."""
        return len(self._channels.get(self.prefix + channel, ()))

    async def _remove(self, subscription: RedisSubscription) -> None:
        wire = subscription.channel
        handlers = self._channels.get(wire)
        if handlers is None:
            return
        # Compare by identity: two subscriptions of the same handler are distinct.
        remaining = [s for s in handlers if s is not subscription]
        if remaining:
            self._channels[wire] = remaining
            return
        del self._channels[wire]
        self._confirmed.discard(wire)
        pubsub = self._pubsub
        if pubsub is not None and self.connected:
            try:
                await pubsub.unsubscribe(wire)
            except (RedisError, OSError) as exc:
                # A new connection subscribes only what is still wanted.
                log.debug("unsubscribing %r failed (%s)", wire, exc)

    # --- the reader -----------------------------------------------------------------------------

    async def _open(self) -> PubSub:
        """A connected pub/sub, installed, with every wanted channel subscribed (the
        confirmations arrive through the reader)."""
        assert self._client is not None
        pubsub = self._client.pubsub()
        try:
            await pubsub.connect()
            # Installed before subscribing: a `subscribe` from now on sends its own SUBSCRIBE,
            # one before is in this snapshot. A channel subscribed twice is harmless.
            self._confirmed.clear()
            self._pubsub = pubsub
            self._connected.set()
            wanted = list(self._channels)
            if wanted:
                await pubsub.subscribe(*wanted)
            else:
                await pubsub.ping()
        except BaseException:
            await self._drop_connection()
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            raise
        return pubsub

    async def _drop_connection(self) -> None:
        self._connected.clear()
        self._confirmed.clear()
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def _run(self) -> None:
        while not self._closing:
            try:
                await self._read()
            except (RedisError, OSError) as exc:
                log.warning("lost Redis at %s (%s); reconnecting", self._where(), exc)
            await self._drop_connection()
            await self._reconnect()

    async def _read(self) -> None:
        """Dispatch messages until the connection fails (raises)."""
        pubsub = self._pubsub
        if pubsub is None:
            raise BrokerUnavailable("no connection")
        interval = self.settings.ping_interval_seconds
        unanswered = False
        while True:
            message = await pubsub.get_message(timeout=interval)
            if message is None:
                if unanswered:
                    raise BrokerUnavailable(f"no answer to a ping within {2 * interval} s")
                await pubsub.ping()
                unanswered = True
                continue
            unanswered = False
            kind = message["type"]
            if kind == "message":
                self.received += 1
                await self._dispatch(_text(message["channel"]), message["data"])
            elif kind == "subscribe":
                self._confirm(_text(message["channel"]))

    async def _reconnect(self) -> None:
        delay = FIRST_BACKOFF_SECONDS
        while not self._closing:
            # Jitter: the nodes of a service do not all knock at the same moment.
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            try:
                await self._open()
            except (RedisError, OSError) as exc:
                log.debug("reconnecting to Redis failed (%s)", exc)
                delay = min(delay * 2, self.settings.reconnect_max_seconds)
                continue
            self.reconnects += 1
            log.info("reconnected to Redis at %s", self._where())
            return

    def _confirm(self, wire: str) -> None:
        if wire not in self._channels:
            return  # unsubscribed meanwhile; its UNSUBSCRIBE follows
        self._confirmed.add(wire)
        for waiter in self._waiters.pop(wire, []):
            if not waiter.done():
                waiter.set_result(None)

    async def _dispatch(self, wire: str, data: bytes) -> None:
        # A copy: a handler may subscribe or unsubscribe while we walk the list.
        for subscription in list(self._channels.get(wire, ())):
            try:
                result = subscription.handler(data)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("a handler on channel %r failed", wire)

    def _where(self) -> str:
        parts = urlsplit(self.settings.url)
        return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
