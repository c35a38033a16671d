"""chatcore_memory: the in-process broker, selected by `[broker] url = "memory://"`.

Events reach the subscribers of this process only, so it serves a single-node service; several
nodes need a shared broker (Redis, NATS).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from chatcore.hookspecs import hookimpl
from chatcore_memory.broker import MemoryBroker, MemorySubscription
from chatcore_memory.settings import SCHEMES, MemoryBrokerSettings

if TYPE_CHECKING:
    from pydantic import BaseModel

    from chatcore.server.app import App

chatcore_role = "server"  # the role it serves (chatcore.roles)

__all__ = ["MemoryBroker", "MemoryBrokerSettings", "MemorySubscription", "chatcore_broker"]


@hookimpl
def chatcore_settings_models() -> dict[str, type[BaseModel]]:
    # No keys of its own: it says which URLs it serves, for `chatcore check-config`.
    return {"broker": MemoryBrokerSettings}


@hookimpl
def chatcore_broker(app: App) -> MemoryBroker | None:
    """A fresh broker for this app when the broker URL's scheme is `memory`; else None."""
    if urlsplit(app.settings.broker.url).scheme.lower() not in SCHEMES:
        return None
    return MemoryBroker()
