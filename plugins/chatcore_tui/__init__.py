"""chatcore_tui: the chat app in a terminal (Textual), the client role's built-in user interface.

`chatcore client --config client.toml` (no subcommand) opens it; `chatcore client
reply-to-push` opens its quick-reply box alone for one push (a desktop notification's "reply"
action). It is built only on `chatcore.Client`: everything it shows is read from the device
store and kept current by the client's events, so it starts at once and works offline.
A deployment replaces it by providing `chatcore_client_ui` in a plugin of its own.

Textual loads only when the UI is asked for: `chatcore --help` imports this package too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chatcore.extras import Extra
from chatcore.hookspecs import hookimpl

if TYPE_CHECKING:
    from chatcore.client.interfaces import ClientUI
    from chatcore.client.models import PushNotice

chatcore_role = "client"  # the role it serves (chatcore.roles)

EXTRA = Extra(
    "tui",
    "the terminal client",
    {"textual": "textual", "textual_image": "textual-image", "httpx": "httpx"},
)


@hookimpl(trylast=True)  # a deployment's own UI plugin answers first
def chatcore_client_ui(client: Any, push: PushNotice | None) -> ClientUI:
    """The whole app, or with `push` the quick-reply box for that push alone."""
    EXTRA.require()
    if push is None:
        from chatcore_tui.app import ChatApp

        return ChatApp(client)
    from chatcore_tui.app import PushReplyApp

    return PushReplyApp(client, push)
