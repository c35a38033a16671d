"""chatcore_webpush: Web Push (RFC 8030) with payload encryption (RFC 8291) and VAPID (RFC 8292).

Offers the push adapter of platform "webpush" when `[webpush] vapid_private_key` and
`vapid_subject` are set (`WebPushSettings`), the route `GET /api/v1/push/webpush` (no auth) that
tells browsers the public key to subscribe with, and the `chatcore push vapid-keys` command that
makes them. Needs `chatcore[webpush]` (pywebpush, httpx, cryptography), imported only when
Web Push is on or the command runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatcore.extras import Extra
from chatcore.hookspecs import hookimpl
from chatcore.server.push.off import pushes_off
from chatcore_webpush.settings import WebPushSettings

if TYPE_CHECKING:
    import click
    from pydantic import BaseModel

    from chatcore.interfaces import PushAdapter
    from chatcore.routes import Route
    from chatcore.server.app import App

chatcore_role = "server"  # the role it serves (chatcore.roles)

__all__ = ["EXTRA", "WebPushSettings"]

EXTRA = Extra(
    "webpush",
    "Web Push",
    {
        "pywebpush": "pywebpush",
        "http_ece": "http-ece",
        "httpx": "httpx",
        "h2": "h2",
        "cryptography": "cryptography",
    },
)


@hookimpl
def chatcore_settings_models() -> dict[str, type[BaseModel]]:
    return {"webpush": WebPushSettings}


@hookimpl
def chatcore_push_adapters(app: App) -> list[PushAdapter] | None:
    """The Web Push adapter when a VAPID key is configured; else None (said once)."""
    settings = app.settings.section("webpush", WebPushSettings)
    if settings.vapid_private_key is None:
        pushes_off(
            app,
            "Web Push",
            "[webpush] has no vapid_private_key (make one with `chatcore push vapid-keys`)",
        )
        return None
    EXTRA.require()
    # Imported here: pywebpush pulls in requests and aiohttp, a quarter of a second that
    # every `chatcore` command would pay otherwise.
    from chatcore_webpush.adapter import WebPushAdapter

    return [WebPushAdapter(settings)]


@hookimpl
def chatcore_register_routes(app: App) -> list[Route]:
    """`GET /api/v1/push/webpush`: the VAPID public key (404 while Web Push is off)."""
    from chatcore.routes import Route
    from chatcore_webpush.routes import PATH, webpush_key

    return [
        Route(
            PATH,
            webpush_key,
            auth=False,
            summary="The VAPID public key browsers subscribe with (404 when Web Push is off)",
        )
    ]


@hookimpl
def chatcore_register_commands(cli: click.Group) -> None:
    from chatcore_webpush.cli import push

    cli.add_command(push)
