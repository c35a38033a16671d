"""The client role's hooks (the chat app's engine, device store and user interfaces).

The plugin host adds them, besides the kernel's (`chatcore.hookspecs`), when the config's
`role` is `client`. Providers (firstresult) build the client's backends from their config
section; `chatcore_client_event` is what user interfaces and programs react to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chatcore.hookspecs import hookspec

if TYPE_CHECKING:
    from chatcore.client.events import ClientEvent
    from chatcore.client.interfaces import ClientUI, DeviceStore, MediaCache
    from chatcore.client.models import PushNotice


@hookspec(firstresult=True)
def chatcore_device_store(client: Any) -> DeviceStore | None:
    """Client role, provider: build the device store from `client.settings.device_store`.

    Return a `chatcore.client.interfaces.DeviceStore` (not opened yet: the client opens it), or
    None to let another plugin answer. Sync; called once while the client starts. The built-in
    `chatcore_device_sqlite` answers with an SQLite file store.
    """


@hookspec(firstresult=True)
def chatcore_media_cache(client: Any) -> MediaCache | None:
    """Client role, provider: build the media cache from `client.settings.media_cache`.

    Return a `chatcore.client.interfaces.MediaCache` (not opened yet), or None to let another
    plugin answer. Sync; called once while the client starts. The built-in
    `chatcore_media_cache` answers with a folder on disk.
    """


@hookspec
def chatcore_client_event(app: Any, event: ClientEvent) -> None:
    """Client role: react to an event from the server, the outbox or the push handler.

    `app` is the `chatcore.Client`; `event` one of `chatcore.client.events` (typed, never a raw
    dict), after the device store has recorded it. Every implementation runs, in event order:
    the next event waits until each has returned (awaited when it is a coroutine), so a slow
    one delays the stream; failures are logged and do not stop it.
    """


@hookspec(firstresult=True)
def chatcore_client_ui(client: Any, push: PushNotice | None) -> ClientUI | None:
    """Client role, provider: the interactive user interface, for `chatcore client` run with
    no subcommand (`push` None) and for `chatcore client reply-to-push` (`push` the notice
    the push handler made of a push: the UI shows the quick-reply box for it alone).

    Return a `chatcore.client.interfaces.ClientUI` (its `run()` owns the terminal and the
    event loop until the user quits; it starts and closes `client`, which is built but not
    started), or None to let another plugin answer. The built-in `chatcore_tui` answers
    with the Textual terminal client; a deployment replaces it with a plugin of its own, or
    turns it off with `disabled_plugins = ["chatcore_tui"]`.
    """
