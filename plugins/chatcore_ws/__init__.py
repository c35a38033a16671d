"""chatcore_ws: the built-in WebSocket server, on the `websockets` library.

It listens on its own address (`[websocket] host`/`port`), separate from the REST API, and
reports its URL (`public_url`, else `ws://HOST:PORT`) as the `ws_url` of /api/v1/info. It
speaks the WebSocket part of docs/protocol.md: the meaning of frames lives in
`chatcore.server.realtime.session`, this plugin carries them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel

from chatcore.hookspecs import hookimpl
from chatcore.lazy import lazy_exports
from chatcore_ws.settings import WebSocketSettings

if TYPE_CHECKING:
    from chatcore.server.app import App
    from chatcore_ws.transport import WebSocketTransport

chatcore_role = "server"  # the role it serves (chatcore.roles)

__all__ = ["WebSocketSettings", "WebSocketTransport"]

# The transport (websockets, the session engine) loads when a server builds it: `chatcore
# --help` loads this package too.
__getattr__ = lazy_exports(__name__, {"WebSocketTransport": "chatcore_ws.transport"})


@hookimpl
def chatcore_settings_models() -> dict[str, type[BaseModel]]:
    return {"websocket": WebSocketSettings}


@hookimpl
def chatcore_transports(app: App) -> WebSocketTransport | None:
    """The WebSocket server of a server node."""
    from chatcore_ws.transport import WebSocketTransport

    return WebSocketTransport(app)
