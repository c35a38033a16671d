"""The composer: a multi-line text box, its "replying to" / "editing" bar, and the file prompt.

Enter sends; **ctrl+j** adds a new line (every terminal delivers it: it is the line-feed
byte), and so do alt+enter and shift+enter where the terminal reports them. Escape leaves a
reply or an edit. The composer never sends anything itself: it posts `Composer.Submitted`
and the screen decides (a send, a reply, an edit).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import Any

from textual import events
from textual.binding import Binding
from textual.content import Content
from textual.message import Message as TextualMessage
from textual.widgets import Input, Static, TextArea

#: While the user types, the room hears "typing" again at most this often (seconds).
TYPING_REFRESH = 3.0


class Composer(TextArea):
    """Multi-line input: Enter sends, ctrl+j adds a line."""

    HELP_TITLE = "Composer"

    DEFAULT_CSS = """
    Composer {
        height: auto;
        min-height: 3;
        max-height: 10;
        border: tall $foreground 20%;
    }
    Composer:focus { border: tall $accent; }
    """

    BINDINGS = [
        Binding("ctrl+j,alt+enter,shift+enter", "newline", "New line", show=False),
        Binding("escape", "leave_mode", "Cancel reply / edit", show=False),
    ]

    class Submitted(TextualMessage):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class ModeLeft(TextualMessage):
        """Escape: leave the reply or edit mode."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(
            id=id,
            soft_wrap=True,
            tab_behavior="focus",
            highlight_cursor_line=False,
            placeholder="Message (Enter sends, ctrl+j new line)",
        )

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":  # TextArea would insert a line: here it sends
            event.stop()
            event.prevent_default()
            self.action_submit()
            return
        await super()._on_key(event)

    def action_submit(self) -> None:
        text = self.text.strip("\n")
        if text.strip():
            self.post_message(self.Submitted(text))

    def action_newline(self) -> None:
        start, end = self.selection
        self.replace("\n", start, end, maintain_selection_offset=False)

    def action_leave_mode(self) -> None:
        self.post_message(self.ModeLeft())


class ComposerBar(Static):
    """ "Replying to bob: …" or "Editing …" above the composer; hidden otherwise."""

    DEFAULT_CSS = """
    ComposerBar {
        width: 1fr;
        height: auto;
        padding: 0 1;
        color: $text-accent;
        display: none;
    }
    ComposerBar.-shown { display: block; }
    """

    def show_text(self, text: str) -> None:
        self.update(Content.assemble(text, ("  (Esc cancels)", "dim")))
        self.add_class("-shown")

    def clear(self) -> None:
        self.update("")
        self.remove_class("-shown")


class FilePrompt(Input):
    """A one-line prompt for the path of a file to send; Escape closes it."""

    HELP_TITLE = "File prompt"

    DEFAULT_CSS = """
    FilePrompt { display: none; }
    FilePrompt.-shown { display: block; }
    """

    BINDINGS = [Binding("escape", "close", "Close the file prompt", show=False)]

    class Closed(TextualMessage):
        pass

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(placeholder="Path of the file to send (Enter sends, Esc closes)", id=id)

    def open(self) -> None:
        self.value = ""
        self.add_class("-shown")
        self.focus()

    def close(self) -> None:
        self.remove_class("-shown")

    def action_close(self) -> None:
        self.close()
        self.post_message(self.Closed())


class TypingNotifier:
    """Tells a room the user is typing: once when text appears, again every
    `TYPING_REFRESH` seconds while it changes, and "stopped" once the composer is empty."""

    def __init__(self, client: Any, run: Callable[[Coroutine[Any, Any, None]], object]) -> None:
        self._client = client
        self._run = run
        self._room: str | None = None
        self._last = 0.0

    def changed(self, room_id: str | None, has_text: bool) -> None:
        if room_id != self._room:
            self.stopped()
            self._room = room_id
        if room_id is None:
            return
        now = time.monotonic()
        if has_text and now - self._last >= TYPING_REFRESH:
            self._last = now
            self._run(self._send(room_id, True))
        elif not has_text and self._last:
            self.stopped()

    def stopped(self) -> None:
        """The message was sent or the text cleared: the room hears it at once."""
        if self._room is not None and self._last:
            self._run(self._send(self._room, False))
        self._last = 0.0

    async def _send(self, room_id: str, active: bool) -> None:
        try:
            await self._client.typing(room_id, active)
        except Exception:  # a typing hint is never worth an error on screen
            return
