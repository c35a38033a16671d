"""Bearer authentication of REST requests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, TypeVar, cast

from quart import request
from quart_schema import security_scheme

from chatcore.errors import unauthorized
from chatcore.models import Identity
from chatcore.server.admin import require_admin
from chatcore_rest.request import ChatRequest
from chatcore_rest.state import rest_state

__all__ = ["BEARER", "authenticate", "bearer_token", "requires_admin", "requires_auth"]

#: The name of the security scheme in the OpenAPI document.
BEARER = "bearer"
#: Access tokens are short; anything longer is not one of ours and is not worth verifying.
_MAX_TOKEN_CHARS = 8192

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > _MAX_TOKEN_CHARS:
        return None
    return token


async def authenticate() -> Identity:
    """The identity of the current request's access token; ChatError unauthorized otherwise."""
    token = bearer_token(request.headers.get("Authorization"))
    if token is None:
        raise unauthorized()
    identity: Identity = await rest_state().app.auth.authenticate(token)
    cast(ChatRequest, request).user_id = identity.user_id  # the access log names who asked
    return identity


def requires_auth(func: F) -> F:
    """Authenticate before anything else (body validation included); pass `identity=`."""

    @wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        identity = await authenticate()
        return await func(*args, identity=identity, **kwargs)

    return security_scheme([{BEARER: []}])(wrapper)  # type: ignore[return-value]


def requires_admin(func: F) -> F:
    """`requires_auth` for a server admin's route: 401 without a valid token, then 403 for
    anyone but a server admin, both before the query or body is read (so a non-admin never
    learns what a valid request to the route would look like)."""

    @wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        identity = await authenticate()
        await require_admin(rest_state().app, identity.user_id)
        return await func(*args, identity=identity, **kwargs)

    return security_scheme([{BEARER: []}])(wrapper)  # type: ignore[return-value]
