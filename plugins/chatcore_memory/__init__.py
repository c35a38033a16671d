"""chatcore_memory: the in-process broker, selected by `[broker] url = "memory://"`.

Events reach the subscribers of this process only, so it serves a single-node service; several
nodes need a shared broker (Redis, NATS).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from chatcore.hookspecs import hookimpl
from chatcore_memory.broker import MemoryBroker, MemorySubscription

if TYPE_CHECKING:
    from chatcore.app import App

__all__ = ["MemoryBroker", "MemorySubscription", "chatcore_broker"]


@hookimpl
def chatcore_broker(app: App) -> MemoryBroker | None:
    """A fresh broker for this app when the broker URL's scheme is `memory`; else None."""
    if urlsplit(app.settings.broker.url).scheme.lower() != "memory":
        return None
    return MemoryBroker()
