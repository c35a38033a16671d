"""The shape of a push adapter plugin whose adapter is off until its config section sets it up.

Its `chatcore_push_adapters` answers None while the section lacks what the adapter needs, and
says so once per app (the hook is asked again each time the app starts), so a deployment that
never meant to use the platform hears it once, not at every start:

    @hookimpl
    def chatcore_push_adapters(app):
        settings = app.settings.section("apns", ApnsSettings)
        if not settings.configured:
            pushes_off(app, "APNs", "[apns] has no key, key_id, team_id and topic")
            return None
        EXTRA.require()          # the optional packages, only once the adapter is on
        from chatcore_apns.adapter import ApnsAdapter
        return [ApnsAdapter(settings)]

Kept apart from `chatcore.server.push.endpoint` (what adapters share when sending), which the
plugins import
only once their adapter is on: this module is imported by every `chatcore` command.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from chatcore.state import StateKey

if TYPE_CHECKING:
    from chatcore.server.app import App

__all__ = ["pushes_off"]

log = logging.getLogger(__name__)

#: The platforms this app already said are off.
_SAID: StateKey[set[str]] = StateKey("chatcore.server.push.off.said")


def pushes_off(app: App, platform: str, why: str) -> None:
    """Log "`platform` pushes are off: `why`" at INFO, the first time only for this app."""
    said = app.state.setdefault(_SAID, set())
    if platform not in said:
        said.add(platform)
        log.info("%s pushes are off: %s", platform, why)
