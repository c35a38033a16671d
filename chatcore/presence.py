"""Who hears about a user's presence, and whether a user is online."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chatcore.app import App


async def presence_audience(app: App, user_id: str) -> list[str]:
    """The users told when `user_id` comes online or goes offline: direct-room peers.

    (Contacts join them when contacts exist.)
    """
    return await app.storage.direct_peers(user_id)
