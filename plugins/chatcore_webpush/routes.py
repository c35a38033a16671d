"""`GET /api/v1/push/webpush` (no auth): the VAPID public key browsers subscribe with.

A browser app calls `PushManager.subscribe({applicationServerKey})` with the server's public
key; serving it here means an app needs no copy of it built in, and a new key pair reaches every
app with the next page load.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from chatcore.errors import ChatError, ErrorCode
from chatcore_webpush.settings import WebPushSettings

if TYPE_CHECKING:
    from chatcore.routes import Request

__all__ = ["application_server_key", "webpush_key"]

PATH = "/push/webpush"


@lru_cache(maxsize=4)
def application_server_key(private_key: str) -> str:
    """The base64url uncompressed public point of a `vapid_private_key` (as `chatcore push
    vapid-keys` prints it). Cached: a derivation per request would cost an EC multiplication."""
    from chatcore_webpush.vapid import load_private_key, public_key_text

    return public_key_text(load_private_key(private_key))


async def webpush_key(request: Request) -> dict[str, Any]:
    """`{"application_server_key": "B..."}`, or 404 `not_found` while Web Push is off."""
    settings = request.app.settings.section("webpush", WebPushSettings)
    if settings.vapid_private_key is None:
        raise ChatError(ErrorCode.NOT_FOUND, "Web Push is not configured on this server.")
    # The settings check loaded this key at start (and required the `webpush` extra).
    return {
        "application_server_key": application_server_key(
            settings.vapid_private_key.get_secret_value()
        )
    }
