"""The subscription object every broker plugin hands out (`chatcore.interfaces.Subscription`).

A broker keeps, per channel, the subscriptions of that channel; each one remembers its broker,
its channel (as the broker names it on the wire) and its handler, and `unsubscribe()` asks the
broker to remove it. A node holds one per online user and per room in use, so it is small.
"""

from __future__ import annotations

from typing import Protocol

from chatcore.interfaces import Handler


class SubscriptionOwner(Protocol):
    """A broker that removes the subscriptions it made (removing one twice is harmless)."""

    async def _remove(self, subscription: ChannelSubscription) -> None: ...


class ChannelSubscription:
    """One handler on one channel; `unsubscribe()` removes it (twice is harmless)."""

    __slots__ = ("broker", "channel", "handler")

    def __init__(self, broker: SubscriptionOwner, channel: str, handler: Handler) -> None:
        self.broker = broker
        self.channel = channel
        self.handler = handler

    async def unsubscribe(self) -> None:
        await self.broker._remove(self)
