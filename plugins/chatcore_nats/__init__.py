"""chatcore_nats: the NATS broker, selected by `[broker] url = "nats://..."`.

Fan-out between the nodes of one service through core NATS (`chatcore[nats]`): at most once, a
hint only (storage is the truth). nats-py reconnects by itself and restores the subscriptions.
Configured by `[broker]` (`NatsBrokerSettings`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel

from chatcore.extras import Extra
from chatcore.hookspecs import hookimpl
from chatcore.lazy import lazy_exports
from chatcore_nats.settings import NatsBrokerSettings, handles

if TYPE_CHECKING:
    from chatcore.server.app import App
    from chatcore_nats.broker import BrokerUnavailable, NatsBroker, NatsSubscription, subject

chatcore_role = "server"  # the role it serves (chatcore.roles)

__all__ = [
    "EXTRA",
    "BrokerUnavailable",
    "NatsBroker",
    "NatsBrokerSettings",
    "NatsSubscription",
    "chatcore_broker",
    "chatcore_settings_models",
    "subject",
]

EXTRA = Extra("nats", "the NATS broker", {"nats": "nats-py"})

# The broker module imports nats-py: only a config that selects this broker loads it.
__getattr__ = lazy_exports(
    __name__,
    dict.fromkeys(
        ("BrokerUnavailable", "NatsBroker", "NatsSubscription", "subject"), "chatcore_nats.broker"
    ),
)


@hookimpl
def chatcore_settings_models() -> dict[str, type[BaseModel]]:
    return {"broker": NatsBrokerSettings}


@hookimpl
def chatcore_broker(app: App) -> NatsBroker | None:
    """A broker for this app when the broker URL's scheme is `nats` (or `tls`); else None."""
    settings = app.settings.section("broker", NatsBrokerSettings)
    if not handles(settings.url):
        return None
    EXTRA.require()
    from chatcore_nats.broker import NatsBroker

    return NatsBroker(settings)
