"""One row of the dialog: a stored message, or a local echo from the outbox until it is sent.

A `MessageRow` is data, not a widget: the dialog draws every row itself (Textual's line API),
so a room's page costs one widget however many messages it holds. A row keeps what it shows
(a `Message`, or an `OutboxEntry`), its painted `content` (the dialog paints it: it knows
the names, the message replied to and the read receipts), the day separator shown above it
(`separator`, a label, or None) and its lines wrapped to the last width drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from textual.content import Content

from chatcore.client.models import Message, OutboxEntry
from chatcore_tui.format import (
    day_of,
    entry_preview,
    first_line,
    outbox_mark,
    separator_line,
    time_label,
)

#: Sort key of a row: stored messages by seq, then the outbox's echoes in send order.
RowKey = tuple[int, int]
#: Lines a day separator takes above its row: a blank line, then the label.
SEPARATOR_LINES = 2


@dataclass(frozen=True, slots=True)
class Look:
    """What a row shows beside its own data, from its dialog."""

    sender: str
    own: bool
    #: The first line of the message replied to, "" when there is none.
    reply: str = ""
    #: Own message the other member of a direct room has read.
    read: bool = False
    #: The sticker's emoji, when the packs are known.
    sticker_emoji: str | None = None


class MessageRow:
    """A message of the dialog (or its local echo) and how it is drawn."""

    __slots__ = ("_wrapped", "_wrapped_width", "content", "entry", "message", "separator")

    def __init__(self, item: Message | OutboxEntry) -> None:
        self.message: Message | None = None
        self.entry: OutboxEntry | None = None
        #: The label of the day separator above this row (the first row of a day), or None.
        self.separator: str | None = None
        self.content = Content("")
        self._wrapped: list[Content] = []
        self._wrapped_width = -1
        self.set_item(item)

    def set_item(self, item: Message | OutboxEntry) -> None:
        """Show `item` from now on (an echo that became its stored message, an edit)."""
        if isinstance(item, Message):
            self.message, self.entry = item, None
        else:
            self.message, self.entry = None, item

    # --- what it is ----------------------------------------------------------------------

    @property
    def key(self) -> RowKey:
        if self.message is not None:
            return (0, self.message.seq)
        assert self.entry is not None
        return (1, self.entry.position)

    @property
    def ts(self) -> int:
        if self.message is not None:
            return self.message.ts
        assert self.entry is not None
        return self.entry.created_ts

    @property
    def day(self) -> date:
        return day_of(self.ts)

    @property
    def sender_id(self) -> str | None:
        """The sender of a stored message; None for an echo (always the user's own)."""
        return self.message.sender_id if self.message is not None else None

    @property
    def reply_to(self) -> str | None:
        item = self.message or self.entry
        return item.reply_to if item is not None else None

    @property
    def text(self) -> str:
        """The message's text (what an edit starts from)."""
        item = self.message or self.entry
        return item.body if item is not None else ""

    @property
    def failed(self) -> bool:
        return self.entry is not None and self.entry.state == "failed"

    @property
    def shown(self) -> str:
        """What the row shows, as plain text (without its day separator)."""
        return self.content.plain

    # --- how it is drawn -----------------------------------------------------------------

    def paint(self, look: Look) -> None:
        self.content = row_content(self.message, self.entry, look)
        self._wrapped_width = -1

    def lines(self, width: int) -> list[Content]:
        """The row's message lines wrapped to `width` cells (kept until it changes)."""
        if width != self._wrapped_width:
            self._wrapped = self.content.wrap(max(1, width)) or [Content("")]
            self._wrapped_width = width
        return self._wrapped

    def height(self, width: int) -> int:
        """Lines the row takes at `width`, its day separator included."""
        return len(self.lines(width)) + (SEPARATOR_LINES if self.separator else 0)


def separator_content(label: str, width: int) -> Content:
    return Content(separator_line(label, min(width, 48))).center(width)


def row_content(message: Message | None, entry: OutboxEntry | None, look: Look) -> Content:
    """A row's text: the quoted message replied to, then time, sender, body and marks."""
    parts: list[str | tuple[str, str]] = []
    if look.reply:
        parts += [("  ↳ ", "dim"), (look.reply, "italic dim"), "\n"]
    ts = message.ts if message is not None else entry.created_ts if entry is not None else 0
    parts += [(time_label(ts) + " ", "dim")]
    parts += [(look.sender, "bold $text-success" if look.own else "bold $text-accent"), "  "]
    if message is not None:
        parts += _body_parts(message, look)
        if message.edited_ts is not None and not message.deleted:
            parts += [("  (edited)", "dim")]
        if look.own and not message.deleted:
            parts += [("  ✓✓ read", "$text-success")] if look.read else [("  ✓", "dim")]
    elif entry is not None:
        parts.append(entry.body if entry.kind == "text" else entry_preview(entry))
        style = "bold $text-error" if entry.state == "failed" else "$text-warning"
        parts += ["  ", (outbox_mark(entry), style)]
    return Content.assemble(*parts)


def _body_parts(message: Message, look: Look) -> list[str | tuple[str, str]]:
    if message.deleted:
        return [("message deleted", "italic dim")]
    if message.kind == "media":
        caption = f" {message.body}" if message.body else ""
        return [("📎 file", "bold"), caption, ("  (o: open)", "dim")]
    if message.kind == "sticker":
        return [(look.sticker_emoji or "[sticker]", "bold"), ("  sticker", "dim")]
    if message.kind == "system":
        return [(message.body, "italic dim")]
    return [message.body]


def quoted(message: Message | None, sender: str) -> str:
    """The one-line quote of a message replied to."""
    if message is None:
        return "a message not loaded here"
    if message.deleted:
        return f"{sender}: message deleted"
    if message.kind == "media":
        return f"{sender}: 📎 {first_line(message.body, 40) or 'file'}"
    if message.kind == "sticker":
        return f"{sender}: sticker"
    return f"{sender}: {first_line(message.body, 60)}"
