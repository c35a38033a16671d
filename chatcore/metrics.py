"""Prometheus metrics of one node, in a registry of its own (never the process-global one).

Tests and programs that embed chatcore run several apps in one process; each app's metrics
live in `metrics_registry(app)`, where the core, the built-in plugins and any other plugin
register their collectors. The REST plugin serves it at `/metrics`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, ProcessCollector

if TYPE_CHECKING:
    from chatcore.app import App

__all__ = ["metrics_registry"]

REGISTRY_KEY = "metrics.registry"


def metrics_registry(app: App) -> CollectorRegistry:
    """The app's registry, made (with the process collector) on first use."""
    registry = app.state.get(REGISTRY_KEY)
    if registry is None:
        registry = app.state[REGISTRY_KEY] = CollectorRegistry()
        ProcessCollector(registry=registry)
    return registry
