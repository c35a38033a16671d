"""Discovery, health and metrics: `/api/v1/info`, `/healthz`, `/metrics` (no auth).

/api/v1/info reports the features of the areas this node mounts (`RestState.features`) and
those other plugins add to `app.state[FEATURES_KEY]` (a tuple of strings).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from quart import Response
from quart_schema import document_response

import chatcore
from chatcore.errors import ErrorCode
from chatcore.metrics import core_metrics
from chatcore.state import StateKey
from chatcore_rest.endpoints.base import API_PREFIX, Area
from chatcore_rest.errors import error_response
from chatcore_rest.jsonio import json_response
from chatcore_rest.metrics import CONTENT_TYPE_LATEST
from chatcore_rest.openapi import Reply, api_doc
from chatcore_rest.schemas import Health, Info
from chatcore_rest.state import rest_state

__all__ = ["AREA", "FEATURES_KEY"]

log = logging.getLogger(__name__)

#: Features other plugins add to what /api/v1/info reports.
FEATURES_KEY = StateKey[tuple[str, ...]]("chatcore_rest.features")
#: A storage or broker that does not answer a ping in this time counts as down for /healthz.
HEALTH_TIMEOUT_SECONDS = 3.0


@document_response(Info)
async def get_info() -> Response:
    """Discover the server: its version, WebSocket URL, limits and features (no auth)."""
    state = rest_state()
    app = state.app
    limits = app.settings.limits
    features = list(dict.fromkeys([*state.features, *app.state.get(FEATURES_KEY, ())]))
    return json_response(
        {
            "name": "chatcore",
            "version": chatcore.__version__,
            "ws_url": app.ws_url,
            "limits": {
                "max_message_bytes": limits.max_message_bytes,
                "max_frame_bytes": limits.frame_bytes,
                "max_upload_bytes": limits.max_upload_bytes,
                "max_sync_messages": limits.max_sync_messages,
                **_flood_control(app.settings),
            },
            "features": features,
        }
    )


@document_response(Health)
@api_doc(errors=(503,))
async def get_health() -> Response:
    """Health check: 200 when this node can serve (it reaches its storage and its broker)."""
    app = rest_state().app
    answers = await asyncio.gather(
        _answers("storage", app.storage.ping()), _answers("message broker", app.broker.ping())
    )
    down = [name for name, ok in answers if not ok]
    if "storage" in down:
        core_metrics(app).storage_errors.labels("ping").value += 1
    if down:
        return error_response(
            ErrorCode.UNAVAILABLE,
            f"The {' and the '.join(down)} cannot be reached; try again later.",
        )
    return json_response({"status": "ok"})


async def _answers(name: str, ping: Coroutine[Any, Any, None]) -> tuple[str, bool]:
    """(name, whether `ping` returned in time); a failure is logged, with its reason, for the
    operator (the client reads only which part is down)."""
    try:
        await asyncio.wait_for(ping, HEALTH_TIMEOUT_SECONDS)
    except Exception as exc:  # any failure, a timeout included, means "cannot serve"
        log.warning("health check: the %s is down: %s", name, exc or type(exc).__name__)
        return name, False
    return name, True


@api_doc(
    replies={
        200: Reply("Prometheus text exposition format.", CONTENT_TYPE_LATEST, {"type": "string"})
    }
)
async def get_metrics() -> Response:
    """Prometheus metrics of this node (no auth)."""
    return Response(rest_state().metrics.render(), content_type=CONTENT_TYPE_LATEST)


AREA = Area(
    routes=[
        ("GET", "/healthz", get_health),
        ("GET", "/metrics", get_metrics),
        ("GET", API_PREFIX + "/info", get_info),
    ]
)


def _flood_control(settings: Any) -> dict[str, float]:
    """The WebSocket flood control of `[websocket]` (when a WebSocket plugin configures one),
    so a client can pace its frames below it instead of meeting `rate_limited`."""
    websocket = getattr(settings, "websocket", None)
    rate = getattr(websocket, "rate_per_second", None)
    burst = getattr(websocket, "rate_burst", None)
    if rate is None or burst is None:
        return {}
    return {"ws_rate_per_second": rate, "ws_rate_burst": burst}
