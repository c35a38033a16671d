"""chatcore_push_webhook: pushes as signed JSON POSTs to a URL the device registered.

Platform "webhook" of the push interface (`chatcore.interfaces.PushAdapter`). On only when
`[push_webhook] secret` is set (`WebhookSettings`); the receiver verifies each request's
HMAC-SHA256 signature with that secret (docs/push.md). Endpoints are checked against SSRF
(`chatcore.ssrf`) before each push.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pydantic import BaseModel

from chatcore.hookspecs import hookimpl
from chatcore_push_webhook.adapter import WebhookAdapter, signature
from chatcore_push_webhook.settings import WebhookSettings

if TYPE_CHECKING:
    from chatcore.app import App

__all__ = [
    "WebhookAdapter",
    "WebhookSettings",
    "chatcore_push_adapters",
    "chatcore_settings_models",
    "signature",
]

log = logging.getLogger("chatcore.push")

_OFF_LOGGED = "push_webhook_off_logged"


@hookimpl
def chatcore_settings_models() -> dict[str, type[BaseModel]]:
    return {"push_webhook": WebhookSettings}


@hookimpl
def chatcore_push_adapters(app: App) -> list[WebhookAdapter] | None:
    """The webhook adapter when `[push_webhook] secret` is set; else None (said once)."""
    settings = app.settings.section("push_webhook", WebhookSettings)
    if settings.secret is None:
        if not app.state.get(_OFF_LOGGED):
            app.state[_OFF_LOGGED] = True
            log.info("webhook pushes are off: [push_webhook] secret is not set")
        return None
    return [WebhookAdapter(settings)]
