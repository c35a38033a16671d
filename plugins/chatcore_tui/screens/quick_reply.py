"""The quick-reply box: answer one message in its room without opening the room.

The same screen serves the in-app notification (a toast's ctrl+r, over the open dialog) and
a push (`chatcore client reply-to-push`, alone in `PushReplyApp`). It shows who wrote, in
which room, and the message; it sends with `client.reply(room_id, text, reply_to=...)`
(through REST at once when the app is not connected) and dismisses with the outbox entry,
or with None when the user cancels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from chatcore.client.errors import ClientError
from chatcore.client.models import OutboxEntry, PushNotice
from chatcore_tui.format import error_text, first_line, message_preview


@dataclass(frozen=True, slots=True)
class ReplyTarget:
    """The message a quick reply answers, as the box shows it."""

    room_id: str
    message_id: str
    sender: str
    room_name: str
    text: str

    @classmethod
    def from_notice(cls, notice: PushNotice) -> ReplyTarget:
        """From a push the push handler understood (the message may be missing: id-only)."""
        if notice.message is not None:
            text = message_preview(notice.message, limit=200)
        else:
            text = notice.preview or "(no preview)"
        sender = notice.sender_name or notice.sender_id or "someone"
        room = notice.room_name or ("a direct message" if notice.direct else "a room")
        return cls(notice.room_id, notice.message_id, sender, room, text)


class QuickReply(ModalScreen[OutboxEntry | None]):
    """Answer `target` in its room: Enter sends, Escape cancels."""

    HELP_TITLE = "Quick reply"

    DEFAULT_CSS = """
    QuickReply { align: center middle; }
    QuickReply > #quick-reply {
        width: 72;
        max-width: 95%;
        height: auto;
        padding: 1 2;
        border: thick $accent;
        background: $surface;
    }
    QuickReply #quick-reply-title { text-style: bold; }
    QuickReply #quick-reply-quote { color: $text-muted; margin: 1 0; }
    QuickReply #quick-reply-error { color: $text-error; height: auto; }
    QuickReply #quick-reply-buttons { height: auto; align-horizontal: right; margin-top: 1; }
    QuickReply Button { margin-left: 1; }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel the reply")]

    def __init__(self, client: Any, target: ReplyTarget) -> None:
        super().__init__()
        self.client = client
        self.target = target
        self._sending = False
        self._text = Input(
            placeholder="Your reply (Enter sends, Esc cancels)", id="quick-reply-text"
        )
        self._error_line = Static("", id="quick-reply-error")

    def compose(self) -> ComposeResult:
        target = self.target
        with Vertical(id="quick-reply"):
            yield Static(
                Content(f"Reply to {target.sender} in {target.room_name}"), id="quick-reply-title"
            )
            yield Static(
                Content(f"{target.sender}: {first_line(target.text, 200)}"), id="quick-reply-quote"
            )
            yield self._text
            yield self._error_line
            with Horizontal(id="quick-reply-buttons"):
                yield Button("Send", variant="primary", id="quick-reply-send")
                yield Button("Cancel", id="quick-reply-cancel")

    def on_mount(self) -> None:
        self._text.focus()

    @on(Input.Submitted, "#quick-reply-text")
    @on(Button.Pressed, "#quick-reply-send")
    def _send_pressed(self) -> None:
        text = self._text.value.strip()
        if not text:
            self._error("Type a reply first.")
            return
        if not self._sending:
            self._sending = True
            self.run_worker(self._send(text), group="quick-reply")

    @on(Button.Pressed, "#quick-reply-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

    async def _send(self, text: str) -> None:
        target = self.target
        try:
            entry = await self.client.reply(target.room_id, text, reply_to=target.message_id)
        except ClientError as exc:
            self._sending = False
            self._error(error_text(exc))
            return
        if entry.state == "failed":
            self._sending = False
            self._error(f"Not sent: {entry.error_message or entry.error_code}")
            return
        self.dismiss(entry)

    def _error(self, text: str) -> None:
        self._error_line.update(Content(text))
