"""The terminal client's apps: `ChatApp` (the whole client) and `PushReplyApp` (one reply).

`ChatApp` takes a built, not started `chatcore.Client`. On mount it starts it (the device
store opens, the connection starts in the background), applies the device's theme, and shows
the main screen at once, from the device store, or the login screen when the device has no
account. One task reads `client.events()` for the whole app and hands each event to the main
screen (`MainScreen.handle_event`), which passes it to the widgets it concerns. The client
closes when the app exits. A login that ends (here, elsewhere, or a refused refresh) brings
the login screen back.

`PushReplyApp` is `chatcore client reply-to-push`: the client started without a connection,
only the quick-reply box for one `PushNotice`; its result is the reply's outbox state
("sent" or "pending"), or None when the user cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from textual.app import App
from textual.binding import Binding

from chatcore.client.errors import ClientError
from chatcore.client.events import ClientEvent, ConnectionChanged
from chatcore.client.models import OutboxEntry, PushNotice
from chatcore.failures import one_line
from chatcore_tui.format import error_text
from chatcore_tui.screens.help import HelpScreen
from chatcore_tui.screens.login import LoginScreen
from chatcore_tui.screens.main import MainScreen
from chatcore_tui.screens.quick_reply import QuickReply, ReplyTarget
from chatcore_tui.widgets.names import UserNames

log = logging.getLogger(__name__)

#: Seconds the push reply box waits for the sender's and room's names before showing what
#: it has.
NAME_WAIT = 2.0


async def start_client(app: App[Any], client: Any, *, connect: bool) -> bool:
    """Start `client` and apply the device's theme; on failure exit `app` saying why."""
    try:
        await client.start(connect=connect)
    except Exception as exc:  # a start that fails ends the app with a line
        app.exit(return_code=1, message=f"chatcore: the client cannot start: {one_line(exc)}")
        return False
    try:
        theme = (await client.preferences()).get("theme")
    except ClientError:
        theme = None
    if isinstance(theme, str) and theme in app.available_themes:
        app.theme = theme
    return True


class ChatApp(App[None]):
    """The chat client in a terminal."""

    TITLE = "chatcore"
    HELP_TITLE = "Everywhere"

    BINDINGS = [
        Binding("f1,question_mark", "help", "Help"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, client: Any) -> None:
        super().__init__()
        self.client = client
        self.names = UserNames(client)
        self.main: MainScreen | None = None
        #: Events a screen failed to show (logged, and told in a toast): tests assert none.
        self.event_errors: list[str] = []
        self._reader: asyncio.Task[None] | None = None

    def run(self, **options: Any) -> None:
        """Run in this terminal until the user quits (`ClientUI.run`)."""
        # textual-image asks the terminal for its cell size when first imported, which only
        # works before Textual takes the terminal over; under `run_test` (no terminal) the
        # media viewer imports it when first opened.
        import chatcore_tui.screens.media  # noqa: F401

        super().run(**options)

    async def on_mount(self) -> None:
        events = self.client.events()  # subscribed before the start: nothing is missed
        if not await start_client(self, self.client, connect=True):
            await events.aclose()
            return
        self._reader = asyncio.create_task(self._read(events), name="chatcore_tui events")
        if self.client.logged_in:
            self.show_main()
        else:
            self.show_login()

    async def on_unmount(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self.client.close()

    # --- screens -------------------------------------------------------------------------

    def show_main(self) -> None:
        """The main screen, for the account logged in now (replacing whatever is shown)."""
        self.names = UserNames(self.client)  # another login may be another user
        self.main = MainScreen(self.client, self.names)
        self._replace_base(self.main)

    def show_login(self) -> None:
        self.main = None
        self._replace_base(LoginScreen(self.client))

    def _replace_base(self, screen: Any) -> None:
        # The stack: Textual's default screen, our base screen, then anything pushed on it.
        while len(self.screen_stack) > 2:
            self.pop_screen()
        if len(self.screen_stack) == 2:
            self.switch_screen(screen)
        else:
            self.push_screen(screen)

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss(None)
            return
        self.push_screen(HelpScreen(self.screen))

    # --- events --------------------------------------------------------------------------

    async def _read(self, events: AsyncIterator[ClientEvent]) -> None:
        async for event in events:
            self.route(event)

    def route(self, event: ClientEvent) -> None:
        """One event to whoever shows it; a failure is told, never fatal to the stream."""
        try:
            if isinstance(event, ConnectionChanged) and event.state == "logged_out":
                if self.main is not None:  # the login ended: nothing reconnects until a login
                    self.show_login()
                    self.notify(event.detail or "Logged out: log in again.", severity="warning")
                    return
            main = self.main
            if main is not None and main.is_attached:
                main.handle_event(event)
            # A screen over the main one (contacts, say) follows the events it shows too.
            top = self.screen
            handler = getattr(top, "on_client_event", None)
            if top is not main and handler is not None and top.is_attached:
                handler(event)
        except Exception as exc:  # one event shown wrong must not stop the rest
            log.exception("the terminal client could not show %r", event)
            self.event_errors.append(f"{type(event).__name__}: {one_line(exc)}")
            self.notify(f"Could not show an update: {error_text(exc)}", severity="error")


class PushReplyApp(App[str | None]):
    """The quick-reply box alone, for one push; returns the reply's state or None."""

    TITLE = "chatcore reply"

    def __init__(self, client: Any, push: PushNotice) -> None:
        super().__init__()
        self.client = client
        self.push = push
        self.entry: OutboxEntry | None = None

    async def on_mount(self) -> None:
        if not await start_client(self, self.client, connect=False):
            return
        target = ReplyTarget.from_notice(await self._named(self.push))
        self.push_screen(QuickReply(self.client, target), self._replied)

    async def _named(self, notice: PushNotice) -> PushNotice:
        """The notice completed from what the device knows: an id-only push names neither
        its sender nor its room."""
        update: dict[str, Any] = {}
        try:
            async with asyncio.timeout(NAME_WAIT):
                if not notice.room_name:
                    summary = await self.client.room(notice.room_id)
                    if summary is not None:
                        update["direct"] = summary.room.kind == "direct"
                        if summary.room.name:
                            update["room_name"] = summary.room.name
                if not notice.sender_name and notice.sender_id:
                    users = await self.client.users([notice.sender_id])
                    user = users.get(notice.sender_id)
                    if user is not None:
                        update["sender_name"] = user.display_name or user.username
        except (ClientError, TimeoutError):
            pass  # the box shows what the push carried
        return notice.model_copy(update=update) if update else notice

    def run(self, **options: Any) -> None:
        """Show the box until the reply is sent or cancelled (`ClientUI.run`). The outcome is
        `return_value` afterwards: "sent" or "pending", None when cancelled."""
        super().run(**options)

    def _replied(self, entry: OutboxEntry | None) -> None:
        self.entry = entry
        self.exit(entry.state if entry is not None else None)

    async def on_unmount(self) -> None:
        await self.client.close()
