"""The client role's hooks (the chat app's engine, device store and user interfaces).

The plugin host adds them, besides the kernel's (`chatcore.hookspecs`), when the config's
`role` is `client`. Only one so far: the client role's hooks arrive with the client engine.
"""

from __future__ import annotations

from typing import Any

from chatcore.hookspecs import hookspec


@hookspec
def chatcore_client_event(app: Any, event: dict[str, Any]) -> None:
    """Client role: react to an event from the server or the push handler (UI, notifications).

    All run; may be async; failures are logged.
    """
