"""chatcore_nats: the NATS broker, selected by `[broker] url = "nats://..."`.

Fan-out between the nodes of one service through core NATS (`chatcore[nats]`): at most once, a
hint only (storage is the truth). nats-py reconnects by itself and restores the subscriptions.
Configured by `[broker]` (`NatsBrokerSettings`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel

from chatcore.hookspecs import hookimpl
from chatcore_nats.broker import BrokerUnavailable, NatsBroker, NatsSubscription, handles, subject
from chatcore_nats.settings import NatsBrokerSettings

if TYPE_CHECKING:
    from chatcore.app import App

__all__ = [
    "BrokerUnavailable",
    "NatsBroker",
    "NatsBrokerSettings",
    "NatsSubscription",
    "chatcore_broker",
    "chatcore_settings_models",
    "subject",
]


@hookimpl
def chatcore_settings_models() -> dict[str, type[BaseModel]]:
    return {"broker": NatsBrokerSettings}


@hookimpl
def chatcore_broker(app: App) -> NatsBroker | None:
    """A broker for this app when the broker URL's scheme is `nats` (or `tls`); else None."""
    settings = app.settings.section("broker", NatsBrokerSettings)
    return NatsBroker(settings) if handles(settings.url) else None
