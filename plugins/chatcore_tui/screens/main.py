"""The main screen: connection banner, room list, the open room's dialog and the composer.

It shows the device store at once (`client.rooms()`, then the most active room's newest page)
and then follows the client's events, which the app hands to `handle_event` one at a time:
each goes to the few widgets it concerns, and each does a small, local change (one row).
A message in another room while a dialog is open shows a toast; ctrl+r answers it in a
quick-reply box without leaving the dialog.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Input, Static
from textual.worker import Worker, WorkerCancelled

from chatcore.client.errors import ClientError
from chatcore.client.events import (
    ClientEvent,
    ConnectionChanged,
    ContactChanged,
    MessageReceived,
    MessageUpdated,
    OutboxChanged,
    PresenceChanged,
    ReceiptChanged,
    RoomChanged,
    ServerError,
    TypingChanged,
)
from chatcore.client.models import Message, OutboxEntry, Room
from chatcore_tui.format import error_text, first_line, message_preview
from chatcore_tui.screens.quick_reply import QuickReply, ReplyTarget
from chatcore_tui.widgets.banner import ConnectionBanner
from chatcore_tui.widgets.composer import Composer, ComposerBar, FilePrompt, TypingNotifier
from chatcore_tui.widgets.dialog import Dialog
from chatcore_tui.widgets.footer import Footer
from chatcore_tui.widgets.message_row import MessageRow
from chatcore_tui.widgets.names import UserNames
from chatcore_tui.widgets.room_list import RoomList
from chatcore_tui.widgets.typing import TypingIndicator

#: Seconds a new-message toast stays.
TOAST_SECONDS = 8.0
#: Seconds the first frame waits for the open room's first page (read from the device store:
#: a few ms; longer only when the device lacks it and the server is slow).
FIRST_PAGE_WAIT = 0.15


class MainScreen(Screen[None]):
    """Rooms at the left, the open room at the right, the main keys in the footer."""

    HELP_TITLE = "Main screen"

    DEFAULT_CSS = """
    MainScreen { layout: vertical; }
    MainScreen #main { height: 1fr; }
    MainScreen #conversation { width: 1fr; height: 1fr; }
    MainScreen #dialog-header {
        height: 1;
        padding: 0 1;
        background: $panel;
        text-style: bold;
    }
    """

    BINDINGS = [
        Binding("ctrl+r", "quick_reply", "Quick reply"),
        Binding("ctrl+t", "contacts", "Contacts"),
        Binding("ctrl+f", "search", "Search"),
        Binding("ctrl+n", "new_group", "New group"),
        Binding("ctrl+s", "settings", "Settings"),
        Binding("ctrl+o", "send_file", "Send file"),
        Binding("ctrl+g", "stickers", "Sticker"),
        Binding("f2", "focus_rooms", "Focus rooms", show=False),
        Binding("f3", "focus_dialog", "Focus messages", show=False),
        Binding("f4", "focus_composer", "Focus composer", show=False),
    ]

    def __init__(self, client: Any, names: UserNames) -> None:
        super().__init__()
        self.client = client
        self.names = names
        self.last_notified: Message | None = None
        self._reply_to: Message | None = None
        self._editing: MessageRow | None = None
        self._presence: dict[str, str] = {}
        self._read_marked: dict[str, int] = {}
        self._unmarked: tuple[str, int] | None = None  # seen while another screen was on top
        self._ready = False
        self._requested: str | None = None  # the room asked for last (open or opening)
        self._early: list[ClientEvent] = []  # events before the first load: replayed after
        self.typing_notifier = TypingNotifier(client, lambda c: self.run_worker(c, group="typing"))
        names.on_learned = self._names_learned
        # Held, not queried: a worker finishing while the screen closes finds them still.
        self.banner = ConnectionBanner(id="banner")
        self.room_list = RoomList(client, names, id="rooms")
        self.header = Static(Content("No room open"), id="dialog-header")
        self.dialog = Dialog(client, names, id="dialog")
        self.typing_indicator = TypingIndicator(names.name, id="typing")
        self.composer_bar = ComposerBar(id="composer-bar")
        self.file_prompt = FilePrompt(id="file-prompt")
        self.composer = Composer(id="composer")

    # --- parts ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield self.banner
        with Horizontal(id="main"):
            yield self.room_list
            with Vertical(id="conversation"):
                yield self.header
                yield self.dialog
                yield self.typing_indicator
                yield self.composer_bar
                yield self.file_prompt
                yield self.composer
        yield Footer()

    @property
    def me(self) -> str:
        account = self.client.account
        return account.user.id if account is not None else ""

    # --- start ---------------------------------------------------------------------------

    async def on_mount(self) -> None:
        client = self.client
        self.banner.show_state(client.connection_state, client.connection_detail)
        self.composer.focus()
        try:
            rooms = await client.rooms()
        except ClientError as exc:
            self.notify(error_text(exc), title="Cannot read the rooms", severity="error")
            rooms = []
        self.room_list.load(rooms)
        self._ready = True
        early, self._early = self._early, []
        for event in early:
            self.handle_event(event)
        if rooms:
            opening = self.open_room(rooms[0].room.id)
            # Its newest page is read from the device store in a few ms: waited for (a
            # little), the first frame shows it, instead of an empty dialog then a second frame.
            with contextlib.suppress(TimeoutError, WorkerCancelled):
                await asyncio.wait_for(asyncio.shield(opening.wait()), FIRST_PAGE_WAIT)
        self.run_worker(self._load_presence(), group="presence")

    async def _load_presence(self) -> None:
        try:
            contacts = await self.client.contacts()
        except ClientError:
            return
        for contact in contacts:
            self.names.remember(contact.user)
            self._presence[contact.user.id] = contact.presence
        self._paint_header()

    # --- the client's events (from the app's one reader) ---------------------------------

    def handle_event(self, event: ClientEvent) -> None:
        """Route one event to the widgets it concerns; small, local work only."""
        if not self._ready:
            self._early.append(event)
            return
        match event:
            case ConnectionChanged(state=state, detail=detail, retry_in=retry_in):
                self.banner.show_state(state, detail, retry_in)
                if state == "ready":
                    self.names.forget_misses()
            case MessageReceived(message=message, live=live):
                self._message_received(message, live)
            case MessageUpdated(message=message):
                self.dialog.update_message(message)
                self.room_list.message_updated(message)
            case OutboxChanged(entry=entry, message=message):
                self._outbox_changed(entry, message)
            case RoomChanged(room=room, left=left):
                self._room_changed(room, left)
            case TypingChanged(room_id=room_id, user_id=user_id, active=active):
                if user_id != self.me:
                    self.typing_indicator.typing(room_id, user_id, active)
                    self._learn_names([user_id])
            case ReceiptChanged(room_id=room_id, user_id=user_id, seq=seq):
                self.dialog.receipt(room_id, user_id, seq)
                if user_id == self.me:
                    self.room_list.refresh_soon(room_id)
            case PresenceChanged(user_id=user_id, status=status):
                self._presence[user_id] = status
                self._paint_header()
            case ContactChanged(invitation=invitation, user=user, contact=contact):
                self.names.remember(user, contact.user if contact is not None else None)
                if invitation is not None:
                    self.names.remember(invitation.from_user, invitation.to_user)
                if contact is not None:
                    self._presence[contact.user.id] = contact.presence
            case ServerError(code=code, message=text, ref=ref):
                if ref is None:  # with a ref, the outbox entry shows it as failed
                    self.notify(text or code, title="The server says", severity="warning")
            case _:
                pass  # pushes: the connection brings the message itself

    def _message_received(self, message: Message, live: bool) -> None:
        self.dialog.add_message(message)
        self.room_list.message_arrived(message)
        self.typing_indicator.stopped(message.room_id, message.sender_id)
        if live and message.room_id != self.dialog.room_id and message.sender_id != self.me:
            self._toast(message)

    def _outbox_changed(self, entry: OutboxEntry, message: Message | None) -> None:
        self.dialog.outbox_changed(entry, message)
        if message is not None:
            self.room_list.message_arrived(message)
        if entry.state == "failed" and entry.room_id != self.dialog.room_id:
            row = self.room_list.row(entry.room_id)
            where = self.room_list.title(row.summary.room) if row is not None else "a room"
            reason = entry.error_message or entry.error_code or "refused"
            self.notify(f"A message to {where} was not sent: {reason}", severity="error")

    def _room_changed(self, room: Room, left: bool) -> None:
        if left:
            self.room_list.remove_room(room.id)
            if room.id == self.dialog.room_id:
                self.notify("You are no longer in this room.", severity="warning")
            return
        self.room_list.refresh_soon(room.id)
        if room.id == self.dialog.room_id:
            self.dialog.room = room
            self._paint_header()

    def _toast(self, message: Message) -> None:
        self.last_notified = message
        sender = self.names.name(message.sender_id)
        title = f"{sender} in {self._room_name(message.room_id)}"
        preview = message_preview(message, limit=120)
        self.app.notify(
            f"{preview}\n(ctrl+r: reply)", title=title, timeout=TOAST_SECONDS, markup=False
        )
        self._learn_names([message.sender_id])

    def _room_name(self, room_id: str) -> str:
        row = self.room_list.row(room_id)
        return self.room_list.title(row.summary.room) if row is not None else "a room"

    def _learn_names(self, user_ids: list[str]) -> None:
        if any(i not in self.names.users for i in user_ids):
            self.run_worker(self._resolve(user_ids), group="names")

    async def _resolve(self, user_ids: list[str]) -> None:
        await self.names.resolve(user_ids)

    def _names_learned(self) -> None:
        if self.is_attached:
            self.room_list.repaint()
            self.dialog.repaint()
            self._paint_header()

    # --- opening a room ------------------------------------------------------------------

    def open_room(self, room_id: str, around_seq: int | None = None) -> Worker[None]:
        """Show a room in the dialog (around `around_seq`: a search result)."""
        self._requested = room_id
        return self.run_worker(self._open(room_id, around_seq), group="open", exclusive=True)

    async def _open(self, room_id: str, around_seq: int | None) -> None:
        entry = self.room_list.row(room_id)
        try:  # the list's copy when it has one: no store read before the first page
            summary = entry.summary if entry is not None else await self.client.room(room_id)
        except ClientError as exc:
            self.notify(error_text(exc), severity="error")
            return
        if summary is None:
            self.notify("That room is not on this device (yet).", severity="warning")
            return
        self._leave_mode()
        self.typing_notifier.changed(room_id, bool(self.composer.text.strip()))
        self.room_list.upsert(summary)
        self.room_list.set_active(room_id)
        self.typing_indicator.show_room(room_id)
        self.dialog.room = summary.room
        self._paint_header()
        await self.dialog.show_room(summary.room, around_seq=around_seq)

    def _paint_header(self) -> None:
        room = self.dialog.room
        header = self.header
        if room is None:
            header.update(Content("No room open"))
            return
        title = self.room_list.title(room)
        if room.kind == "direct":
            others = [m for m in room.member_ids if m != self.me]
            status = self._presence.get(others[0], "") if others else ""
            extra = f"  ● {status}" if status else ""
        else:
            extra = f"  · {len(room.member_ids)} members"
        header.update(Content.assemble((title, "bold"), (extra, "dim")))

    @on(RoomList.Appeared)
    def _room_appeared(self, event: RoomList.Appeared) -> None:
        if self._requested is None:  # nothing open yet (a first start): show something
            self.open_room(event.room_id)

    @on(RoomList.Opened)
    def _room_chosen(self, event: RoomList.Opened) -> None:
        self.open_room(event.room_id)
        self.composer.focus()  # chosen to write in it

    # --- reading: marking the room read ---------------------------------------------------

    @on(Dialog.Seen)
    def _seen(self, event: Dialog.Seen) -> None:
        if event.room_id != self.dialog.room_id:
            return
        if not self.is_current:
            self._unmarked = (event.room_id, event.seq)
            return
        self._mark_read(event.room_id, event.seq)

    def on_screen_resume(self) -> None:
        if self._unmarked is not None:
            room_id, seq = self._unmarked
            self._unmarked = None
            if room_id == self.dialog.room_id:
                self._mark_read(room_id, seq)

    def _mark_read(self, room_id: str, seq: int) -> None:
        row = self.room_list.row(room_id)
        known = max(self._read_marked.get(room_id, 0), row.summary.read_seq if row else 0)
        if seq <= known and not (row is not None and row.summary.unread):
            return
        self._read_marked[room_id] = seq
        self.run_worker(self._send_read(room_id, seq), group="read")

    async def _send_read(self, room_id: str, seq: int) -> None:
        try:
            await self.client.mark_read(room_id, seq)
        except ClientError:
            self._read_marked.pop(room_id, None)  # tried again with the next message
            return
        self.room_list.refresh_soon(room_id)

    # --- composing -----------------------------------------------------------------------

    @on(Composer.Submitted)
    def _submitted(self, event: Composer.Submitted) -> None:
        room = self.dialog.room
        if room is None:
            self.notify("Open a room first (F2: the room list).", severity="warning")
            return
        self.dialog.select(None)  # the keys act on the message written now, not an old one
        if self.dialog.detached:  # showing a search result: back to the newest, to see it go
            self.dialog.action_newest()
        # Taken at once (a second Enter must not send it twice); given back if it fails.
        editing, reply_to = self._editing, self._reply_to
        self.composer.clear()
        self._leave_mode()
        self.typing_notifier.stopped()
        self.run_worker(self._send(room.id, event.text, editing, reply_to), group="send")

    async def _send(
        self, room_id: str, text: str, editing: MessageRow | None, reply_to: Message | None
    ) -> None:
        try:
            if editing is not None and editing.entry is not None:
                await self.client.edit_pending(editing.entry.ref, text)
            elif editing is not None and editing.message is not None:
                await self.client.edit(room_id, editing.message.id, text)
            else:
                reply_id = reply_to.id if reply_to is not None else None
                await self.client.send(room_id, text, reply_to=reply_id)
        except ClientError as exc:
            self.notify(error_text(exc), title="Not sent", severity="error")
            if not self.composer.text:
                self.composer.load_text(text)

    @on(Composer.Changed)
    def _composer_changed(self, event: Composer.Changed) -> None:
        if self._editing is None:
            self.typing_notifier.changed(self.dialog.room_id, bool(event.text_area.text.strip()))

    @on(Composer.ModeLeft)
    def _mode_left(self) -> None:
        if self._editing is not None:
            self.composer.clear()
        self._leave_mode()

    @on(Dialog.ReplyRequested)
    def _reply_requested(self, event: Dialog.ReplyRequested) -> None:
        self._editing = None
        self._reply_to = event.message
        sender = "you" if event.message.sender_id == self.me else None
        who = sender or self.names.name(event.message.sender_id)
        quote = first_line(message_preview(event.message), 50)
        self.composer_bar.show_text(f"Replying to {who}: {quote}")
        self.composer.focus()

    @on(Dialog.EditRequested)
    def _edit_requested(self, event: Dialog.EditRequested) -> None:
        self._reply_to = None
        self._editing = event.row
        what = "a queued message" if event.row.entry is not None else "your message"
        self.composer_bar.show_text(f"Editing {what}: Enter saves")
        self.composer.load_text(event.row.text)
        self.composer.move_cursor(self.composer.document.end)
        self.composer.focus()

    @on(Dialog.Left)
    def _dialog_left(self) -> None:
        self.composer.focus()

    def _leave_mode(self) -> None:
        self._reply_to = None
        self._editing = None
        self.composer_bar.clear()

    # --- files, stickers, media ----------------------------------------------------------

    def action_send_file(self) -> None:
        if self.dialog.room is None:
            self.notify("Open a room first.", severity="warning")
            return
        self.file_prompt.open()

    @on(Input.Submitted, "#file-prompt")
    def _file_chosen(self, event: Input.Submitted) -> None:
        prompt = self.file_prompt
        path = os.path.expanduser(event.value.strip())
        room = self.dialog.room
        if not path or room is None:
            return
        prompt.close()
        self.composer.focus()
        reply_id = self._reply_to.id if self._reply_to is not None else None
        self.run_worker(self._send_file(room.id, path, reply_id), group="send")

    async def _send_file(self, room_id: str, path: str, reply_to: str | None) -> None:
        try:
            await self.client.send_file(room_id, path, reply_to=reply_to)
        except ClientError as exc:
            self.notify(error_text(exc), title="File not sent", severity="error")
            return
        self._leave_mode()

    @on(FilePrompt.Closed)
    def _file_prompt_closed(self) -> None:
        self.composer.focus()

    def action_stickers(self) -> None:
        room = self.dialog.room
        if room is None:
            self.notify("Open a room first.", severity="warning")
            return
        picker = _screen("stickers", "StickerPicker")
        if picker is None:
            self.notify("Stickers are not available.", severity="warning")
            return

        def chosen(sticker_id: str | None) -> None:
            if sticker_id:
                self.run_worker(self._send_sticker(room.id, sticker_id), group="send")

        self.app.push_screen(picker(self.client), chosen)

    async def _send_sticker(self, room_id: str, sticker_id: str) -> None:
        try:
            await self.client.send_sticker(room_id, sticker_id)
        except ClientError as exc:
            self.notify(error_text(exc), title="Sticker not sent", severity="error")

    @on(Dialog.OpenMedia)
    def _open_media(self, event: Dialog.OpenMedia) -> None:
        viewer = _screen("media", "MediaViewer")
        if viewer is None:
            self.notify("Files cannot be opened here.", severity="warning")
            return
        self.app.push_screen(viewer(self.client, event.message))

    # --- other screens -------------------------------------------------------------------

    def action_quick_reply(self) -> None:
        message = self.last_notified
        if message is None:
            self.notify("No new message to reply to.", severity="warning")
            return
        target = ReplyTarget(
            room_id=message.room_id,
            message_id=message.id,
            sender=self.names.name(message.sender_id),
            room_name=self._room_name(message.room_id),
            text=message_preview(message, limit=200),
        )

        def replied(entry: OutboxEntry | None) -> None:
            if entry is not None:
                self.notify(f"Reply sent to {target.room_name}.", timeout=3)

        self.app.push_screen(QuickReply(self.client, target), replied)

    def action_contacts(self) -> None:
        screen = _screen("contacts", "ContactsScreen")
        if screen is None:
            self.notify("Contacts are not available.", severity="warning")
            return

        def chosen(room_id: str | None) -> None:
            if room_id:
                self.open_room(room_id)

        self.app.push_screen(screen(self.client), chosen)

    def action_search(self) -> None:
        screen = _screen("search", "SearchScreen")
        if screen is None:
            self.notify("Search is not available.", severity="warning")
            return

        def chosen(message: Message | None) -> None:
            if message is not None:
                self.open_room(message.room_id, around_seq=message.seq)

        self.app.push_screen(screen(self.client), chosen)

    def action_settings(self) -> None:
        screen = _screen("settings", "SettingsScreen")
        if screen is None:
            self.notify("Settings are not available.", severity="warning")
            return
        self.app.push_screen(screen(self.client), lambda _: self._after_settings())

    def _after_settings(self) -> None:
        # The display name may have changed: our own rows say "you", but the room list's
        # previews and other people's names are read again.
        self.room_list.repaint()

    def action_new_group(self) -> None:
        screen = _screen("new_group", "NewGroupScreen")
        if screen is None:
            self.notify("Groups cannot be made here.", severity="warning")
            return

        def made(room_id: str | None) -> None:
            if room_id:
                self.open_room(room_id)

        self.app.push_screen(screen(self.client), made)

    def action_focus_rooms(self) -> None:
        self.room_list.focus()

    def action_focus_dialog(self) -> None:
        self.dialog.focus()

    def action_focus_composer(self) -> None:
        self.composer.focus()


def _screen(module: str, name: str) -> Any:
    """A screen class of another module of this package, imported when first used (None when
    that module is missing: its key says so instead of failing)."""
    try:
        found = importlib.import_module(f"chatcore_tui.screens.{module}")
    except ImportError:
        return None
    return getattr(found, name, None)
