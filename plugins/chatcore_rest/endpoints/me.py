"""The caller: `GET`/`PATCH /me` (profile) and `/me/settings` (docs/protocol.md).

The views stay thin: `chatcore.server.profile` checks an avatar (an image the caller may read)
and `chatcore.server.accounts` merges settings; the views read the request and shape the reply.
"""

from __future__ import annotations

from typing import Any

from quart import Response, request
from quart_schema import document_request, document_response

from chatcore.errors import unauthorized
from chatcore.models import Identity
from chatcore.server import accounts, profile
from chatcore_rest.auth import requires_auth
from chatcore_rest.endpoints.base import API_PREFIX, Area, json_object, validated
from chatcore_rest.jsonio import json_response
from chatcore_rest.openapi import api_doc
from chatcore_rest.schemas import Me, ProfilePatch, User, UserSettings
from chatcore_rest.state import rest_state

__all__ = ["AREA"]

ME = API_PREFIX + "/me"
MERGE_PATCH = "application/merge-patch+json"


def _me(user: User) -> dict[str, Any]:
    """The caller as `/me` shows them: with their own admin flag (nobody else sees it)."""
    return {**user.wire(), "is_admin": user.is_admin}


@requires_auth
@document_response(Me)
@api_doc(errors=(401,))
async def get_me(identity: Identity) -> Response:
    """The signed-in user, with `is_admin` (a server admin: `chatcore user promote` sets it)."""
    user = await rest_state().app.storage.get_user(identity.user_id)
    if user is None or user.deleted:  # the account is gone; its tokens mean nothing any more
        raise unauthorized("This account no longer exists.")
    return json_response(_me(user))


@requires_auth
@document_request(ProfilePatch)
@document_response(Me)
@api_doc(errors=(400, 401, 404, 413))
async def update_me(identity: Identity) -> Response:
    """Change the caller's display name and/or avatar (an image the caller may read; null
    removes it). Answers the user after the change; an avatar is visible to every user.
    Any other field (`is_admin` included) is refused (400)."""
    patch = validated(ProfilePatch, await json_object())
    user = await profile.update_profile(
        rest_state().app, identity.user_id, patch.model_dump(exclude_unset=True)
    )
    return json_response(_me(user))


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


AREA = Area(
    routes=[
        ("GET", ME, get_me),
        ("PATCH", ME, update_me),
        ("GET", ME + "/settings", get_settings),
        ("PATCH", ME + "/settings", patch_settings),
    ],
    features=("settings",),
)
