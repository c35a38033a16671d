"""Mounting the framework-neutral routes plugins contribute (`chatcore.routes.Route`)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from quart import Quart, Response, request
from quart_schema import hide, security_scheme
from werkzeug.datastructures import Headers

from chatcore import routes
from chatcore.hooks import call_all_sync, resolve
from chatcore_rest.auth import BEARER, authenticate
from chatcore_rest.endpoints.base import API_PREFIX
from chatcore_rest.jsonio import empty_response, json_response
from chatcore_rest.openapi import PER_METHOD_IDS, Reply, api_doc

if TYPE_CHECKING:
    from chatcore.models import Identity
    from chatcore.server.app import App
    from chatcore_rest.request import ChatRequest

__all__ = ["RouteError", "collect_routes", "mount_plugin_routes", "quart_rule"]

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PATH_CHARS = re.compile(r"[A-Za-z0-9_.~!$&'()*+,;=:@%/-]*")
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
_VARIABLE = re.compile(r"<[^>]*>")


class RouteError(ValueError):
    """A plugin route that cannot be mounted (bad path, method, or a clash)."""


def quart_rule(path: str) -> str:
    """The Quart rule of a route path: `/api/v1` prefixed unless it starts with `//`."""
    if path.startswith("//"):
        full = "/" + path[2:].lstrip("/")
    else:
        full = API_PREFIX + "/" + path.lstrip("/")
    if not _PATH_CHARS.fullmatch(_PLACEHOLDER.sub("x", full)):
        raise RouteError(f"plugin route path {path!r}: use {{name}} placeholders in a plain path")
    names = _PLACEHOLDER.findall(full)
    if len(names) != len(set(names)):
        raise RouteError(f"plugin route path {path!r}: a placeholder name is used twice")
    return _PLACEHOLDER.sub(r"<\1>", full)


class HeaderMap(Mapping[str, str]):
    """Request headers as a case-insensitive read-only mapping (the first value of each)."""

    __slots__ = ("_headers",)

    def __init__(self, headers: Headers) -> None:
        self._headers = headers

    def __getitem__(self, key: str) -> str:
        return self._headers[key]

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(key.lower() for key, _ in self._headers.items()))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in self._headers


class RouteRequest:
    """`chatcore.routes.Request` over the current Quart request."""

    __slots__ = (
        "_request",
        "app",
        "headers",
        "identity",
        "method",
        "path_params",
        "query",
        "remote_address",
    )

    def __init__(
        self, app: App, req: ChatRequest, path_params: Mapping[str, str], identity: Identity | None
    ) -> None:
        self.app = app
        self.method = req.method
        self.path_params: Mapping[str, str] = dict(path_params)
        self.query: Mapping[str, str] = req.args  # a MultiDict: its items are the first values
        self.headers: Mapping[str, str] = HeaderMap(req.headers)
        self.remote_address = req.client_address
        self.identity = identity
        self._request = req

    async def json(self) -> Any:
        """The JSON body; ChatError bad_request when it is missing or not JSON."""
        return await self._request.get_json()


def _to_response(result: Any) -> Response:
    if isinstance(result, routes.Response):
        if result.body is None:
            return empty_response(result.status, result.headers)
        if isinstance(result.body, bytes):
            headers = {"Content-Type": "application/octet-stream", **result.headers}
            return Response(result.body, status=result.status, headers=headers)
        return json_response(result.body, result.status, result.headers)
    return json_response(result)


def _view(app: App, route: routes.Route, index: int) -> Any:
    async def view(**path_params: str) -> Response:
        identity = await authenticate() if route.auth else None
        req: ChatRequest = request  # type: ignore[assignment]
        result = await resolve(route.handler(RouteRequest(app, req, path_params, identity)))
        return _to_response(result)

    slug = re.sub(r"[^A-Za-z0-9]+", "_", route.path).strip("_") or "root"
    view.__name__ = view.__qualname__ = f"plugin{index}_{slug}"
    view.__doc__ = route.summary or f"Contributed by a plugin: {route.path}"
    if not route.documented:
        return hide(view)
    setattr(view, PER_METHOD_IDS, True)
    errors = (400, 401) if route.auth else (400,)
    documented = api_doc(
        errors=errors, replies={200: Reply("The handler's answer.", "application/json", {})}
    )(view)
    return security_scheme([{BEARER: []}])(documented) if route.auth else documented


def collect_routes(app: App) -> list[routes.Route]:
    """Every route of every plugin's `chatcore_register_routes`."""
    collected: list[routes.Route] = []
    for answer in call_all_sync(app.hook.chatcore_register_routes, app=app):
        for route in answer if isinstance(answer, list | tuple) else [answer]:
            if not isinstance(route, routes.Route):
                raise RouteError(f"chatcore_register_routes answered {route!r}, not a Route")
            collected.append(route)
    return collected


def mount_plugin_routes(quart: Quart, app: App) -> int:
    """Mount every plugin route on `quart`; RouteError on a bad one. Returns how many."""
    # Rules compare with their variables blanked: /users/<id> and /users/<user_id> clash.
    served = {
        (_VARIABLE.sub("<>", rule.rule), method)
        for rule in quart.url_map.iter_rules()
        for method in rule.methods or ()
    }
    plugin_routes = collect_routes(app)
    for index, route in enumerate(plugin_routes):
        rule = quart_rule(route.path)
        methods = sorted({method.upper() for method in route.methods})
        shape = _VARIABLE.sub("<>", rule)
        for method in methods:
            if method not in _METHODS:
                raise RouteError(f"plugin route {route.path!r}: unsupported method {method!r}")
            if (shape, method) in served:
                raise RouteError(f"plugin route {method} {rule} is already served")
            served.add((shape, method))
        try:
            quart.add_url_rule(
                rule, endpoint=f"plugin{index}", view_func=_view(app, route, index), methods=methods
            )
        except ValueError as exc:  # e.g. a placeholder used twice
            raise RouteError(f"plugin route {route.path!r}: {exc}") from None
    return len(plugin_routes)
