"""chatcore_rest: the REST API (docs/protocol.md), a Quart app served by Hypercorn.

It contributes the `rest` transport to a server node: it listens on `[server] host/port`, serves
the built-in endpoints (discovery, health, metrics, auth, users, settings, rooms, messages),
mounts every plugin route contributed through `chatcore_register_routes`, and documents all of
it at `/api/v1/openapi.json`. Its own knobs live in `[rest]` (`RestSettings`).

The heavy imports (Quart, Hypercorn) happen only when a server actually builds the transport,
so the command line stays quick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel

from chatcore.hookspecs import hookimpl
from chatcore_rest.settings import RestSettings

if TYPE_CHECKING:
    from chatcore.interfaces import Transport
    from chatcore.server.app import App

chatcore_role = "server"  # the role it serves (chatcore.roles)

__all__ = ["RestSettings", "chatcore_settings_models", "chatcore_transports"]


@hookimpl
def chatcore_settings_models() -> dict[str, type[BaseModel]]:
    return {"rest": RestSettings}


@hookimpl
def chatcore_transports(app: App) -> Transport | None:
    """The REST listener of a server node (a client host never loads this plugin)."""
    from chatcore_rest.transport import RestTransport

    return RestTransport(app)
