"""The Quart app of the REST API for one chatcore node."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from quart import Quart, Response, request
from quart_schema import HttpSecurityScheme, QuartSchema
from quart_schema import Info as OpenAPIInfo

import chatcore
from chatcore_rest.access_log import AccessLog, access_fields
from chatcore_rest.auth import BEARER
from chatcore_rest.endpoints import AREAS
from chatcore_rest.endpoints.base import API_PREFIX
from chatcore_rest.errors import install_error_handlers
from chatcore_rest.jsonio import OrjsonProvider
from chatcore_rest.metrics import HttpMetrics
from chatcore_rest.openapi import ChatOpenAPIProvider
from chatcore_rest.plugin_routes import mount_plugin_routes
from chatcore_rest.request import JSON_BODY_LIMIT, ChatRequest
from chatcore_rest.state import EXTENSION, RestState

if TYPE_CHECKING:
    from chatcore.server.app import App
    from chatcore_rest.settings import RestSettings

__all__ = ["JSON_BODY_LIMIT", "OPENAPI_PATH", "create_quart_app"]

log = logging.getLogger(__name__)

OPENAPI_PATH = API_PREFIX + "/openapi.json"

_DESCRIPTION = (
    "The REST part of the chatcore wire contract (docs/protocol.md). Errors are "
    '`{"error": {"code", "message"}}`. Authenticate with `Authorization: Bearer <access_token>`.'
)


def create_quart_app(app: App, settings: RestSettings) -> Quart:
    """A Quart app serving the built-in endpoints and every plugin route of `app`."""
    quart = Quart("chatcore_rest", static_folder=None)
    quart.config.update(MAX_CONTENT_LENGTH=JSON_BODY_LIMIT, PROPAGATE_EXCEPTIONS=False)
    areas = [area for area in AREAS if area.available(app)]
    limits = [limit for area in areas for limit in area.body_limits(app.settings.limits)]
    quart.request_class = ChatRequest.with_body_limits(limits)
    QuartSchema(
        quart,
        openapi_path=OPENAPI_PATH,
        redoc_ui_path=None,
        scalar_ui_path=None,
        swagger_ui_path=None,
        info=OpenAPIInfo(title="chatcore", version=chatcore.__version__, description=_DESCRIPTION),
        security_schemes={BEARER: HttpSecurityScheme(scheme="bearer")},
        openapi_provider_class=ChatOpenAPIProvider,
    )
    quart.json = OrjsonProvider(quart)  # after QuartSchema, which installs its own provider
    metrics = HttpMetrics.for_app(app)
    features = tuple(dict.fromkeys(feature for area in areas for feature in area.features))
    quart.extensions[EXTENSION] = RestState(app, metrics, tuple(settings.trusted_proxies), features)
    install_error_handlers(quart)
    access_log = AccessLog() if settings.access_log else None

    @quart.after_request
    async def _observe(response: Response) -> Response:
        req: ChatRequest = request  # type: ignore[assignment]
        await req.drain()
        # Route templates, not paths, keep the label set small; unknown paths share one label.
        route = req.url_rule.rule if req.url_rule is not None else "unmatched"
        elapsed = time.perf_counter() - req.started
        metrics.observe(req.method, route, response.status_code, elapsed)
        if access_log is not None:
            fields = access_fields(
                method=req.method,
                path=req.path,
                query=req.query_string,
                status=response.status_code,
                seconds=elapsed,
                size=response.content_length,
                remote=req.client_address,
                user_id=req.user_id,
            )
            access_log.write(fields)
        # Our JSON is never to be read as HTML or script by a browser.
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s %s %d %.1fms %s",
                req.method,
                req.path,
                response.status_code,
                elapsed * 1000,
                req.client_address,
            )
        return response

    for area in areas:
        for method, path, view in area.routes:
            # One method per view, named after its function (its OpenAPI operation id).
            quart.add_url_rule(path, endpoint=view.__name__, view_func=view, methods=[method])
    mount_plugin_routes(quart, app)
    return quart
