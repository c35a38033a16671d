"""Accounts and logins: register, login, refresh, logout (docs/protocol.md, "Auth")."""

from __future__ import annotations

from quart import Response
from quart_schema import document_response, validate_request

from chatcore.errors import ChatError, ErrorCode
from chatcore.metrics import core_metrics
from chatcore.models import Identity
from chatcore.server import accounts
from chatcore_rest.auth import requires_auth
from chatcore_rest.endpoints.base import API_PREFIX, Area, client_address
from chatcore_rest.jsonio import empty_response, json_response
from chatcore_rest.openapi import Reply, api_doc
from chatcore_rest.schemas import (
    LoginRequest,
    RefreshRequest,
    Registered,
    RegisterRequest,
    TokenPair,
)
from chatcore_rest.state import rest_state

__all__ = ["AREA"]

AUTH = API_PREFIX + "/auth"
#: Tokens must not be kept by caches on the way (RFC 6749, 5.1).
NO_STORE = {"Cache-Control": "no-store"}


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
    app = rest_state().app
    metrics = core_metrics(app)
    try:
        pair = await app.auth.login(data.username, data.password, client_address())
    except ChatError as exc:
        # Counted whatever the auth backend: failures and throttling are what an alert watches.
        if exc.code is ErrorCode.RATE_LIMITED:
            metrics.logins.labels("rate_limited").value += 1
            metrics.rate_limited.labels("login").value += 1
        elif exc.code in (ErrorCode.UNAUTHORIZED, ErrorCode.FORBIDDEN):  # wrong, or disabled
            metrics.logins.labels("failed").value += 1
        raise
    metrics.logins.labels("ok").value += 1
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


AREA = Area(
    routes=[
        ("POST", AUTH + "/register", register),
        ("POST", AUTH + "/login", login),
        ("POST", AUTH + "/refresh", refresh),
        ("POST", AUTH + "/logout", logout),
    ],
    features=("auth",),
)
