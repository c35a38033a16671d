"""chatcore_apns: pushes to iOS apps through the Apple Push Notification service (APNs).

Platform "apns" of the push interface (`chatcore.interfaces.PushAdapter`): token-based
authentication (an ES256 JWT signed with the team's .p8 key) over APNs' HTTP/2 provider API.
On only when `[apns]` has key (or key_file), key_id, team_id and topic (`ApnsSettings`).
Needs `chatcore[apns]` (httpx with HTTP/2, cryptography), imported only when it is on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatcore.extras import Extra
from chatcore.hookspecs import hookimpl
from chatcore.server.push.off import pushes_off
from chatcore_apns.settings import ApnsSettings

if TYPE_CHECKING:
    from pydantic import BaseModel

    from chatcore.interfaces import PushAdapter
    from chatcore.server.app import App

chatcore_role = "server"  # the role it serves (chatcore.roles)

__all__ = ["EXTRA", "ApnsSettings", "chatcore_push_adapters", "chatcore_settings_models"]

EXTRA = Extra(
    "apns",
    "the APNs push adapter",
    {"httpx": "httpx", "h2": "h2", "cryptography": "cryptography"},
)


@hookimpl
def chatcore_settings_models() -> dict[str, type[BaseModel]]:
    return {"apns": ApnsSettings}


@hookimpl
def chatcore_push_adapters(app: App) -> list[PushAdapter] | None:
    """The APNs adapter when `[apns]` is configured; else None (said once)."""
    settings = app.settings.section("apns", ApnsSettings)
    if not settings.configured:
        pushes_off(app, "APNs", "[apns] has no key, key_id, team_id and topic")
        return None
    EXTRA.require()
    # Imported here: httpx would otherwise slow every `chatcore` command down (~0.2 s).
    from chatcore_apns.adapter import ApnsAdapter

    return [ApnsAdapter(settings)]
