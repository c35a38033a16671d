"""The built-in endpoints of docs/protocol.md: discovery, health, metrics, auth, the caller, users.

Each view is documented by its request/response models (quart-schema) and `api_doc` (errors,
model-less replies); `register_api` mounts them all on a Quart app.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from quart import Quart, Response, request
from quart_schema import document_request, document_response, validate_querystring, validate_request

import chatcore
from chatcore.errors import ErrorCode, not_found, unauthorized
from chatcore.models import Identity
from chatcore.server import accounts
from chatcore.state import StateKey
from chatcore_rest.auth import requires_auth
from chatcore_rest.errors import error_response
from chatcore_rest.jsonio import empty_response, json_response
from chatcore_rest.metrics import CONTENT_TYPE_LATEST
from chatcore_rest.openapi import Reply, api_doc
from chatcore_rest.request import ChatRequest
from chatcore_rest.schemas import (
    Health,
    Info,
    LoginRequest,
    RefreshRequest,
    Registered,
    RegisterRequest,
    TokenPair,
    User,
    Users,
    UserSearch,
    UserSettings,
)
from chatcore_rest.state import rest_state

__all__ = [
    "API_PREFIX",
    "BASE_FEATURES",
    "FEATURES_KEY",
    "RouteTable",
    "add_routes",
    "register_api",
]

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
#: What every node with this plugin serves; other plugins add theirs to `app.state[FEATURES_KEY]`
#: (a tuple of strings), and /api/v1/info reports the union.
BASE_FEATURES = ("auth", "settings", "users", "rooms", "messages")
FEATURES_KEY = StateKey[tuple[str, ...]]("chatcore_rest.features")
#: A storage or broker that does not answer a ping in this time counts as down for /healthz.
HEALTH_TIMEOUT_SECONDS = 3.0
MERGE_PATCH = "application/merge-patch+json"
#: Tokens must not be kept by caches on the way (RFC 6749, 5.1).
NO_STORE = {"Cache-Control": "no-store"}


def _client_address() -> str | None:
    req: ChatRequest = request  # type: ignore[assignment]
    return req.client_address


# --- discovery, health, metrics ---------------------------------------------------------------


@document_response(Info)
async def get_info() -> Response:
    """Discover the server: its version, WebSocket URL, limits and features (no auth)."""
    app = rest_state().app
    limits = app.settings.limits
    features = list(dict.fromkeys([*BASE_FEATURES, *app.state.get(FEATURES_KEY, ())]))
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


# --- auth ---------------------------------------------------------------------------------------


@validate_request(RegisterRequest)
@document_response(Registered, 201)
@api_doc(errors=(400, 409, 413))
async def register(data: RegisterRequest) -> Response:
    """Create an account (no auth)."""
    user = await accounts.register(
        rest_state().app, data.username, data.password, data.display_name
    )
    return json_response({"user": user.wire()}, 201)


@validate_request(LoginRequest)
@document_response(TokenPair)
@api_doc(errors=(400, 401, 413, 429))
async def login(data: LoginRequest) -> Response:
    """Sign in with a username and password; starts a login (no auth)."""
    pair = await rest_state().app.auth.login(data.username, data.password, _client_address())
    return json_response(pair.wire(), headers=NO_STORE)


@validate_request(RefreshRequest)
@document_response(TokenPair)
@api_doc(errors=(400, 401, 413))
async def refresh(data: RefreshRequest) -> Response:
    """Trade a refresh token for new tokens; a used one ends its login (no auth)."""
    pair = await rest_state().app.auth.refresh(data.refresh_token)
    return json_response(pair.wire(), headers=NO_STORE)


@requires_auth
@api_doc(errors=(401,), replies={204: Reply("The login has ended.")})
async def logout(identity: Identity) -> Response:
    """End the login of the access token used, on every node."""
    await rest_state().app.auth.logout(identity)
    return empty_response(204)


# --- the caller ---------------------------------------------------------------------------------


@requires_auth
@document_response(User)
@api_doc(errors=(401,))
async def get_me(identity: Identity) -> Response:
    """The signed-in user."""
    user = await rest_state().app.storage.get_user(identity.user_id)
    if user is None:  # the account is gone; its tokens mean nothing any more
        raise unauthorized("This account no longer exists.")
    return json_response(user.wire())


@requires_auth
@document_response(UserSettings)
@api_doc(errors=(401,))
async def get_settings(identity: Identity) -> Response:
    """The signed-in user's settings object."""
    return json_response(await rest_state().app.storage.get_settings(identity.user_id))


@requires_auth
@document_request(UserSettings)
@document_response(UserSettings)
@api_doc(errors=(400, 401, 413), request_types=(MERGE_PATCH, "application/json"))
async def patch_settings(identity: Identity) -> Response:
    """Change settings with a JSON merge patch (RFC 7396); answers the whole object after it.

    Objects merge key by key, `null` deletes a key, anything else (arrays included) replaces.
    """
    patch = await request.get_json()
    updated = await accounts.patch_settings(rest_state().app, identity.user_id, patch)
    return json_response(updated)


# --- users --------------------------------------------------------------------------------------


@requires_auth
@validate_querystring(UserSearch)
@document_response(Users)
@api_doc(errors=(400, 401))
async def search_users(identity: Identity, query_args: UserSearch) -> Response:
    """Find users by a prefix of their username or display name, case-insensitively."""
    users = await accounts.search_users(rest_state().app, query_args.q, query_args.limit)
    return json_response({"users": [user.wire() for user in users]})


@requires_auth
@document_response(User)
@api_doc(errors=(401, 404))
async def get_user(identity: Identity, user_id: str) -> Response:
    """A user by id."""
    user = await rest_state().app.storage.get_user(user_id)
    if user is None:
        raise not_found("This user")
    return json_response(user.wire())


#: (method, Quart rule, view); each view's name is its endpoint and its OpenAPI operation id.
RouteTable = list[tuple[str, str, Callable[..., Any]]]

_ROUTES: RouteTable = [
    ("GET", "/healthz", get_health),
    ("GET", "/metrics", get_metrics),
    ("GET", API_PREFIX + "/info", get_info),
    ("POST", API_PREFIX + "/auth/register", register),
    ("POST", API_PREFIX + "/auth/login", login),
    ("POST", API_PREFIX + "/auth/refresh", refresh),
    ("POST", API_PREFIX + "/auth/logout", logout),
    ("GET", API_PREFIX + "/me", get_me),
    ("GET", API_PREFIX + "/me/settings", get_settings),
    ("PATCH", API_PREFIX + "/me/settings", patch_settings),
    ("GET", API_PREFIX + "/users", search_users),
    ("GET", API_PREFIX + "/users/<user_id>", get_user),
]


def add_routes(quart: Quart, routes: Iterable[tuple[str, str, Callable[..., Any]]]) -> None:
    """Mount views, one method each, named after their functions."""
    for method, path, view in routes:
        quart.add_url_rule(path, endpoint=view.__name__, view_func=view, methods=[method])


def register_api(quart: Quart) -> None:
    """Mount the built-in endpoints of this module (rooms and messages have their own)."""
    add_routes(quart, _ROUTES)
