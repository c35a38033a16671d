"""Other users: search by name prefix, and one user by id (docs/protocol.md, "Users")."""

from __future__ import annotations

from quart import Response
from quart_schema import document_response, validate_querystring

from chatcore.errors import not_found
from chatcore.models import Identity
from chatcore.server import accounts
from chatcore_rest.auth import requires_auth
from chatcore_rest.endpoints.base import API_PREFIX, Area
from chatcore_rest.jsonio import json_response
from chatcore_rest.openapi import api_doc
from chatcore_rest.schemas import User, Users, UserSearch
from chatcore_rest.state import rest_state

__all__ = ["AREA"]

USERS = API_PREFIX + "/users"


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
    """A user by id. An erased user answers their tombstone: `{"id", "username": "",
    "display_name": "Deleted user", "deleted": true}` (docs/protocol.md, Administration)."""
    storage = rest_state().app.storage
    user = await storage.get_user(user_id) or await storage.get_tombstone(user_id)
    if user is None:
        raise not_found("This user")
    return json_response(user.wire())


AREA = Area(
    routes=[("GET", USERS, search_users), ("GET", USERS + "/<user_id>", get_user)],
    features=("users",),
)
