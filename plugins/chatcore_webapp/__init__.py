"""chatcore_webapp: the browser chat app, served by the server on its REST port.

The app is plain ES modules, a style sheet and a service worker in `static/`: no build step,
no Node.js, nothing loaded from elsewhere at run time. It talks only the public protocol (REST,
the WebSocket, signed media URLs), keeps its device store in IndexedDB, and receives Web Push in
its service worker. `[webapp]` (`WebAppSettings`) mounts it at `path` ("/" by default) or turns
it off. Every file is served with a strict Content-Security-Policy, an ETag and a gzip copy,
and under a versioned path that browsers cache for good (`assets.Release`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatcore.hookspecs import hookimpl
from chatcore_webapp.settings import WebAppSettings

if TYPE_CHECKING:
    from pydantic import BaseModel

    from chatcore.routes import Route
    from chatcore.server.app import App

chatcore_role = "server"  # the role it serves (chatcore.roles)

__all__ = ["WebAppSettings"]


@hookimpl
def chatcore_settings_models() -> dict[str, type[BaseModel]]:
    return {"webapp": WebAppSettings}


@hookimpl
def chatcore_register_routes(app: App) -> list[Route] | None:
    """The app's files at `[webapp] path`, or nothing when `[webapp] enabled` is false."""
    settings = app.settings.section("webapp", WebAppSettings)
    if not settings.enabled:
        return None
    from chatcore_webapp.assets import load_release
    from chatcore_webapp.serving import asset_routes

    return asset_routes(load_release(), settings.path, app)
