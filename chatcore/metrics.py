"""Prometheus metrics of one node, in a registry of its own (never the process-global one).

Tests and programs that embed chatcore run several apps in one process; each app's metrics
live in `metrics_registry(app)`, where the core, the built-in plugins and any other plugin
register their collectors. The REST plugin serves it at `/metrics`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from prometheus_client import CollectorRegistry, ProcessCollector

from chatcore.state import StateKey

if TYPE_CHECKING:
    from chatcore.server.app import App

__all__ = ["metrics_registry", "once_per_app"]

REGISTRY_KEY = StateKey[CollectorRegistry]("chatcore.metrics.registry")

M = TypeVar("M")


def metrics_registry(app: App) -> CollectorRegistry:
    """The app's registry, made (with the process collector) on first use."""
    registry = app.state.get(REGISTRY_KEY)
    if registry is None:
        registry = app.state[REGISTRY_KEY] = CollectorRegistry()
        ProcessCollector(registry=registry)
    return registry


def once_per_app(app: App, key: StateKey[M], make: Callable[[App], M]) -> M:
    """`make(app)`, made once per app and kept in `app.state[key]`: metrics registered once
    (a registry refuses a name twice), and an app started again keeps counting in them."""
    made = app.state.get(key)
    if made is None:
        made = app.state[key] = make(app)
    return made
