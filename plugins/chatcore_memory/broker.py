"""An in-process broker: fan-out within one node, for a single-node service (the default)."""

from __future__ import annotations

import inspect
import logging

from chatcore.interfaces import Handler
from chatcore.subscriptions import ChannelSubscription

__all__ = ["MemoryBroker", "MemorySubscription"]

log = logging.getLogger(__name__)


MemorySubscription = ChannelSubscription


class MemoryBroker:
    """`chatcore.interfaces.Broker` within one process.

    `publish` calls every handler of the channel in subscription order and awaits the awaitable
    ones before it returns; the publisher's own subscriptions receive it too. A failing handler
    is logged and never stops the others or reaches the publisher.
    """

    def __init__(self) -> None:
        # Tuples, replaced on every change: most channels have one subscriber (a user's, a
        # room's), which a 1-tuple holds in less memory than a list, and `publish` can walk
        # one while handlers subscribe or unsubscribe without copying it.
        self._channels: dict[str, tuple[MemorySubscription, ...]] = {}
        # Counts the core reports as metrics (`chatcore.metrics`); in one process, a message
        # published to a channel with a subscriber is also one received.
        self.published = 0
        self.received = 0

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        self._channels.clear()

    async def ping(self) -> None:
        """Always fine: there is no connection to lose."""

    async def publish(self, channel: str, data: bytes) -> None:
        self.published += 1
        subscriptions = self._channels.get(channel, ())
        if subscriptions:
            self.received += 1
        for subscription in subscriptions:
            try:
                result = subscription.handler(data)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("a handler on channel %r failed", channel)

    async def subscribe(self, channel: str, handler: Handler) -> MemorySubscription:
        subscription = MemorySubscription(self, channel, handler)
        self._channels[channel] = (*self._channels.get(channel, ()), subscription)
        return subscription

    def subscriber_count(self, channel: str) -> int:
        """How many handlers listen on `channel` (for tests and metrics)."""
        return len(self._channels.get(channel, ()))

    async def _remove(self, subscription: MemorySubscription) -> None:
        subscriptions = self._channels.get(subscription.channel)
        if subscriptions is None:
            return
        # Compare by identity: two subscriptions of the same handler are distinct.
        remaining = tuple(s for s in subscriptions if s is not subscription)
        if remaining:
            self._channels[subscription.channel] = remaining
        else:
            del self._channels[subscription.channel]
