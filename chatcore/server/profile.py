"""The caller's public profile: display name and avatar (`PATCH /me`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from chatcore.errors import bad_request, unauthorized
from chatcore.server import media
from chatcore.server.accounts import check_display_name

if TYPE_CHECKING:
    from chatcore.models import User
    from chatcore.server.app import App

PROFILE_FIELDS = ("display_name", "avatar_media_id")


async def update_profile(app: App, user_id: str, fields: Mapping[str, Any]) -> User:
    """Change the fields given: `display_name` (the account rules apply), `avatar_media_id`
    (an image the user may read; null removes the avatar). Answer the user after the change.

    An avatar is public: whoever sees the user may load it (see `MediaStorage.media_shared_with`),
    which is why only media the user may read already can become one.
    """
    changes: dict[str, str | None] = {}
    if "display_name" in fields:
        if fields["display_name"] is None:
            raise bad_request("display_name cannot be null.")
        changes["display_name"] = check_display_name(fields["display_name"], "")
    if "avatar_media_id" in fields:
        media_id = fields["avatar_media_id"]
        if media_id is not None:
            if not isinstance(media_id, str):
                raise bad_request("avatar_media_id must be a media id or null.")
            avatar = await media.readable(app, user_id, media_id)
            if not media.is_image(avatar.content_type):
                raise bad_request("An avatar must be an image.")
        changes["avatar_media_id"] = media_id
    user = await app.storage.update_profile(user_id, changes)
    if user is None:
        raise unauthorized("This account no longer exists.")
    return user
