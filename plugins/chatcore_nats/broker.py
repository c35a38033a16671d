"""The NATS broker: one connection per node; a channel is a subject, one NATS subscription per
subscribed channel (reference-counted), dispatching to this node's handlers in order.

nats-py reconnects by itself (attempts unlimited) and sends every subscription again. While it
is disconnected, `publish` raises `BrokerUnavailable` instead of filling nats-py's reconnect
buffer: the broker is only a hint and storage is the truth.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Awaitable, Callable

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError

from chatcore.failures import reason
from chatcore.interfaces import Handler
from chatcore.subscriptions import ChannelSubscription
from chatcore_nats.settings import NatsBrokerSettings, handles

__all__ = ["BrokerUnavailable", "NatsBroker", "NatsSubscription", "handles", "subject"]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 5.0
#: How long `subscribe` waits for the server to confirm (a PING round trip).
SUBSCRIBE_TIMEOUT_SECONDS = 5
# Subject tokens may hold anything but whitespace, `.`, `*` and `>`; we keep a conservative set
# and escape the rest as %XX (of the UTF-8 bytes, `%` included), which keeps the mapping 1:1.
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]")


class BrokerUnavailable(ConnectionError):
    """NATS cannot be reached right now; the publication was not sent."""


def subject(prefix: str, channel: str) -> str:
    """The NATS subject of `channel`: `prefix.` + the channel's dot-separated parts, each part
    escaped so no channel name can become a wildcard or an invalid subject."""
    if not channel:
        raise ValueError("a channel name must not be empty")

    def escape(token: str) -> str:
        return _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), token)

    # An empty part (`a..b`, a leading dot) would make an invalid subject: it becomes `%`.
    tokens = [escape(token) or "%" for token in channel.split(".")]
    return ".".join([prefix, *tokens] if prefix else tokens)


#: A subscription's `channel` is the NATS subject it listens on.
NatsSubscription = ChannelSubscription


class NatsBroker:
    """`chatcore.interfaces.Broker` over core NATS. `start` fails when NATS cannot be reached;
    after that the connection survives outages by itself."""

    def __init__(self, settings: NatsBrokerSettings) -> None:
        self.settings = settings
        self.prefix = settings.subject_prefix
        self._nc: Client | None = None
        # Subject -> this node's handlers, in subscription order, and its NATS subscription.
        self._handlers: dict[str, list[NatsSubscription]] = {}
        self._subs: dict[str, Subscription] = {}
        self._start_errors: list[Exception] = []  # what nats-py reported while connecting
        # Counts the core reports as metrics (`chatcore.metrics`): reconnections, messages
        # published and messages received.
        self.reconnects = 0
        self.published = 0
        self.received = 0

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        servers = [s.strip() for s in self.settings.url.split(",") if s.strip()]
        try:
            nc = await nats.connect(
                servers=servers,
                name="chatcore",
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                # With unlimited attempts nats-py would retry the *first* connect forever; a
                # node that cannot reach its broker at start should say so. Unlimited
                # reconnection is switched on below, once connected (nats-py reads these
                # options when a connection breaks).
                allow_reconnect=False,
                max_reconnect_attempts=1,
                reconnect_time_wait=self.settings.reconnect_wait_seconds,
                error_cb=self._on_error,
                disconnected_cb=self._on_disconnected,
                reconnected_cb=self._on_reconnected,
            )
        except (NatsError, OSError, TimeoutError) as exc:
            # nats-py says "no servers available"; why is in what it passed to `_on_error`.
            why = reason(self._start_errors[-1] if self._start_errors else exc)
            where = self.settings.url
            raise BrokerUnavailable(f"cannot connect to NATS at {where}: {why}") from exc
        finally:
            self._start_errors = []
        nc.options["allow_reconnect"] = True
        nc.options["max_reconnect_attempts"] = -1  # never give up: a node outlives outages
        self._nc = nc

    async def close(self) -> None:
        nc, self._nc = self._nc, None
        self._handlers.clear()
        self._subs.clear()
        if nc is not None and not nc.is_closed:
            await nc.close()

    @property
    def connected(self) -> bool:
        """True while the connection is up (for health checks and tests)."""
        return self._nc is not None and self._nc.is_connected

    def _connection(self) -> Client:
        """The client, when connected; else raise `BrokerUnavailable`."""
        nc = self._nc
        if nc is None or not nc.is_connected:
            raise BrokerUnavailable(f"not connected to NATS at {self.settings.url}")
        return nc

    # --- the Broker interface -----------------------------------------------------------------

    async def ping(self) -> None:
        """Raise `BrokerUnavailable` unless the client is connected (nats-py pings the server
        itself and notices a connection that stops answering)."""
        self._connection()

    async def publish(self, channel: str, data: bytes) -> None:
        # Core NATS keeps the order of one publisher's messages, so no flush is needed here.
        nc = self._connection()
        try:
            await nc.publish(subject(self.prefix, channel), data)
        except NatsError as exc:
            raise BrokerUnavailable(f"cannot publish to NATS: {exc}") from exc
        self.published += 1

    async def subscribe(self, channel: str, handler: Handler) -> NatsSubscription:
        """Add `handler` on `channel`; returns once the server confirmed the subscription, so
        what is published afterwards reaches it (during an outage: at once, and nats-py
        subscribes again on reconnection)."""
        nc = self._nc
        if nc is None:
            raise BrokerUnavailable("the NATS broker is not started")
        name = subject(self.prefix, channel)
        subscription = NatsSubscription(self, name, handler)
        self._handlers.setdefault(name, []).append(subscription)
        if name not in self._subs:
            self._subs[name] = await nc.subscribe(name, cb=self._dispatcher(name))
        if nc.is_connected:
            try:
                await nc.flush(timeout=SUBSCRIBE_TIMEOUT_SECONDS)
            except (NatsError, TimeoutError) as exc:
                log.warning("subscribing to %r not confirmed yet (%s)", name, exc)
        return subscription

    def subscriber_count(self, channel: str) -> int:
        """How many handlers of this node listen on `channel` (for tests and metrics)."""
        return len(self._handlers.get(subject(self.prefix, channel), ()))

    async def _remove(self, subscription: NatsSubscription) -> None:
        name = subscription.channel
        handlers = self._handlers.get(name)
        if handlers is None:
            return
        # Compare by identity: two subscriptions of the same handler are distinct.
        remaining = [s for s in handlers if s is not subscription]
        if remaining:
            self._handlers[name] = remaining
            return
        del self._handlers[name]
        sub = self._subs.pop(name, None)
        if sub is not None:
            try:
                await sub.unsubscribe()
            except NatsError as exc:
                log.debug("unsubscribing %r failed (%s)", name, exc)

    # --- receiving ------------------------------------------------------------------------------

    def _dispatcher(self, name: str) -> Callable[[Msg], Awaitable[None]]:
        # nats-py runs one task per subscription that awaits this for each message in turn,
        # so the order per channel holds.
        async def dispatch(msg: Msg) -> None:
            self.received += 1
            for subscription in list(self._handlers.get(name, ())):
                try:
                    result = subscription.handler(msg.data)
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    log.exception("a handler on subject %r failed", name)

        return dispatch

    async def _on_error(self, exc: Exception) -> None:
        if self._nc is None:  # still connecting: `start` reports the last of these
            self._start_errors.append(exc)
        log.debug("NATS: %s", exc)

    async def _on_disconnected(self) -> None:
        if self._nc is not None:
            log.warning("lost the NATS connection; nats-py reconnects")

    async def _on_reconnected(self) -> None:
        self.reconnects += 1
        log.info("reconnected to NATS")
