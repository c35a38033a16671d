"""Request metrics of the REST API, in the app's registry (`chatcore.metrics`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from chatcore.metrics import metrics_registry, once_per_app
from chatcore.state import StateKey

if TYPE_CHECKING:
    from chatcore.server.app import App

__all__ = ["CONTENT_TYPE_LATEST", "HttpMetrics", "metrics_registry"]

_HTTP_KEY: StateKey[HttpMetrics] = StateKey("chatcore_rest.http_metrics")

#: Methods counted under their own name; any other becomes "other", so a client cannot grow the
#: label set without bound.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpMetrics:
    """Request counts and latencies of the REST API, and the node's live WebSocket sessions."""

    def __init__(self, app: App) -> None:
        self.registry = metrics_registry(app)
        self.requests = Counter(
            "chatcore_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "chatcore_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ["method", "route"],
            registry=self.registry,
        )
        sessions = Gauge(
            "chatcore_websocket_sessions",
            "Live authenticated WebSocket sessions on this node.",
            registry=self.registry,
        )
        sessions.set_function(lambda: app.hub.session_count)

    @classmethod
    def for_app(cls, app: App) -> HttpMetrics:
        return once_per_app(app, _HTTP_KEY, cls)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in _METHODS else "other"
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
