"""chatcore_fcm: pushes to Android and Apple apps through Firebase Cloud Messaging (HTTP v1).

Platform "fcm" of the push interface (`chatcore.interfaces.PushAdapter`): the device's token
is an FCM registration token, each push one `messages:send` request authorized by an OAuth
token of a Google service account. On only when `[fcm] service_account_file` or
`service_account_json` is set (`FcmSettings`); needs `chatcore[fcm]` (httpx, cryptography).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatcore.extras import Extra
from chatcore.hookspecs import hookimpl
from chatcore.server.push.off import pushes_off
from chatcore_fcm.settings import FcmSettings

if TYPE_CHECKING:
    from pydantic import BaseModel

    from chatcore.interfaces import PushAdapter
    from chatcore.server.app import App

chatcore_role = "server"  # the role it serves (chatcore.roles)

__all__ = ["EXTRA", "FcmSettings", "chatcore_push_adapters", "chatcore_settings_models"]

EXTRA = Extra(
    "fcm",
    "the FCM push adapter",
    {"httpx": "httpx", "h2": "h2", "cryptography": "cryptography"},
)


@hookimpl
def chatcore_settings_models() -> dict[str, type[BaseModel]]:
    return {"fcm": FcmSettings}


@hookimpl
def chatcore_push_adapters(app: App) -> list[PushAdapter] | None:
    """The FCM adapter when a service account is configured; else None (said once)."""
    settings = app.settings.section("fcm", FcmSettings)
    if not settings.enabled:
        pushes_off(app, "FCM", "[fcm] has no service_account_file or service_account_json")
        return None
    EXTRA.require()
    # Imported here: httpx is needed only when FCM is on, and every `chatcore` command would
    # pay for importing it otherwise.
    from chatcore_fcm.adapter import FcmAdapter

    return [FcmAdapter(settings)]
