"""chatcore_push_webhook: pushes as signed JSON POSTs to a URL the device registered.

Platform "webhook" of the push interface (`chatcore.interfaces.PushAdapter`). On only when
`[push_webhook] secret` is set (`WebhookSettings`); the receiver verifies each request's
HMAC-SHA256 signature with that secret (docs/push.md). Endpoints are checked against SSRF
(`chatcore.server.push.ssrf`) before each push. Needs `chatcore[push-webhook]`; sent with
`chatcore.server.push.endpoint.EndpointClient` (h11 and h2), imported only when it is on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel

from chatcore.extras import Extra
from chatcore.hookspecs import hookimpl
from chatcore.lazy import lazy_exports
from chatcore.server.push.off import pushes_off
from chatcore_push_webhook.settings import WebhookSettings

if TYPE_CHECKING:
    from chatcore.server.app import App
    from chatcore_push_webhook.adapter import WebhookAdapter, signature

chatcore_role = "server"  # the role it serves (chatcore.roles)

__all__ = [
    "EXTRA",
    "WebhookAdapter",
    "WebhookSettings",
    "chatcore_push_adapters",
    "chatcore_settings_models",
    "signature",
]

EXTRA = Extra("push-webhook", "the webhook push adapter", {"httpx": "httpx", "h2": "h2"})

# The adapter's HTTP client loads when the adapter is on: `chatcore --help` loads this package.
__getattr__ = lazy_exports(
    __name__, dict.fromkeys(("WebhookAdapter", "signature"), "chatcore_push_webhook.adapter")
)


@hookimpl
def chatcore_settings_models() -> dict[str, type[BaseModel]]:
    return {"push_webhook": WebhookSettings}


@hookimpl
def chatcore_push_adapters(app: App) -> list[WebhookAdapter] | None:
    """The webhook adapter when `[push_webhook] secret` is set; else None (said once)."""
    settings = app.settings.section("push_webhook", WebhookSettings)
    if settings.secret is None:
        pushes_off(app, "webhook", "[push_webhook] secret is not set")
        return None
    EXTRA.require()
    from chatcore_push_webhook.adapter import WebhookAdapter

    return [WebhookAdapter(settings)]
