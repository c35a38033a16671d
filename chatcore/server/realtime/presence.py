"""Who hears about a user's presence, and whether a user is online."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chatcore.server.app import App


async def presence_audience(app: App, user_id: str) -> list[str]:
    """The users told when `user_id` comes online or goes offline: their contacts and
    direct-room peers, except anyone with a block between them and the user (either way):
    a blocked user does not see the blocker come and go, nor the blocker them."""
    audience = dict.fromkeys(
        [*await app.storage.contact_ids(user_id), *await app.storage.direct_peers(user_id)]
    )
    if not audience:
        return []
    for blocked in await app.storage.blocks_involving(user_id):
        audience.pop(blocked, None)
    return list(audience)
