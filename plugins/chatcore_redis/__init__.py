"""chatcore_redis: the Redis broker, selected by `[broker] url = "redis://..."` (or `rediss://`).

Fan-out between the nodes of one service through Redis pub/sub (`chatcore[redis]`): at most once,
a hint only (storage is the truth). The node reconnects by itself when Redis goes away.
Configured by `[broker]` (`RedisBrokerSettings`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel

from chatcore.extras import Extra
from chatcore.hookspecs import hookimpl
from chatcore.lazy import lazy_exports
from chatcore_redis.settings import RedisBrokerSettings, handles

if TYPE_CHECKING:
    from chatcore.server.app import App
    from chatcore_redis.broker import BrokerUnavailable, RedisBroker, RedisSubscription

chatcore_role = "server"  # the role it serves (chatcore.roles)

__all__ = [
    "EXTRA",
    "BrokerUnavailable",
    "RedisBroker",
    "RedisBrokerSettings",
    "RedisSubscription",
    "chatcore_broker",
    "chatcore_settings_models",
]

EXTRA = Extra("redis", "the Redis broker", {"redis": "redis"})

# The broker module imports redis: only a config that selects this broker loads it.
__getattr__ = lazy_exports(
    __name__,
    dict.fromkeys(
        ("BrokerUnavailable", "RedisBroker", "RedisSubscription"), "chatcore_redis.broker"
    ),
)


@hookimpl
def chatcore_settings_models() -> dict[str, type[BaseModel]]:
    return {"broker": RedisBrokerSettings}


@hookimpl
def chatcore_broker(app: App) -> RedisBroker | None:
    """A broker for this app when the broker URL's scheme is `redis` or `rediss`; else None."""
    settings = app.settings.section("broker", RedisBrokerSettings)
    if not handles(settings.url):
        return None
    EXTRA.require()
    from chatcore_redis.broker import RedisBroker

    return RedisBroker(settings)
