"""The dialog: the open room's messages, oldest at the top, the outbox's echoes at the bottom.

It shows the newest page of the room (`client.history`) and the room's pending and failed
sends (`client.outbox(room_id)`), then follows events one row at a time: a new message is one
row more, an edit or a deletion repaints one row, an echo that was sent becomes its stored
message in place. Older pages load when the user scrolls to the top (or presses Home), and
the view stays on what the user was reading.

It is one widget that draws its rows itself (Textual's line API): only the visible lines are
rendered, so a message arriving costs the same whatever the page holds. Rows are kept in
order by `MessageRow.key` (stored messages by seq, then echoes in send order); the first row
of each day carries that day's separator.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterable
from typing import Any

from textual import events
from textual.binding import Binding
from textual.content import Content
from textual.geometry import Size
from textual.message import Message as TextualMessage
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.visual import Visual

from chatcore.client.errors import ClientError
from chatcore.client.models import Message, OutboxEntry, Room
from chatcore_tui.format import day_label, day_of, error_text
from chatcore_tui.widgets.message_row import (
    SEPARATOR_LINES,
    Look,
    MessageRow,
    RowKey,
    quoted,
    separator_content,
)
from chatcore_tui.widgets.names import UserNames

#: Messages per page: the first page of a room and each older one.
PAGE = 50
#: Rows kept while the user reads the newest messages: beyond this many (a long catch-up
#: into the open room), the oldest are dropped down to `KEEP_ROWS`; scrolling up loads them.
MAX_ROWS = 4 * PAGE
KEEP_ROWS = 2 * PAGE
#: Cells of padding left and right of each row.
PADDING = 1


class Dialog(ScrollView, can_focus=True):
    """The open room's messages; select one (up/down, or a click) to act on it."""

    HELP_TITLE = "Messages"

    COMPONENT_CLASSES = {
        "dialog--row",
        "dialog--echo",
        "dialog--failed",
        "dialog--selected",
        "dialog--separator",
    }

    DEFAULT_CSS = """
    Dialog {
        height: 1fr;
        & > .dialog--row { background: $surface; }
        & > .dialog--echo { color: $text-muted; }
        & > .dialog--failed { color: $text-error; }
        & > .dialog--selected { background: $accent 30%; }
        & > .dialog--separator { color: $text-muted; }
        &:focus > .dialog--selected { background: $accent 45%; }
    }
    """

    BINDINGS = [
        Binding("up", "select_previous", "Previous message", show=False),
        Binding("down", "select_next", "Next message", show=False),
        Binding("home", "older", "Load older messages", show=False),
        Binding("end", "newest", "Newest message", show=False),
        Binding("r", "reply", "Reply"),
        Binding("e", "edit", "Edit"),
        Binding("d,delete", "delete", "Delete / cancel"),
        Binding("s", "resend", "Resend"),
        Binding("o", "open_media", "Open file"),
        Binding("escape", "leave", "Back to the composer", show=False),
    ]

    class ReplyRequested(TextualMessage):
        """Reply to `message` (the composer takes it)."""

        def __init__(self, message: Message) -> None:
            super().__init__()
            self.message = message

    class EditRequested(TextualMessage):
        """Edit the row's text (a sent message of the user's, or a pending or failed echo)."""

        def __init__(self, row: MessageRow) -> None:
            super().__init__()
            self.row = row

    class OpenMedia(TextualMessage):
        def __init__(self, message: Message) -> None:
            super().__init__()
            self.message = message

    class Seen(TextualMessage):
        """The room's newest stored message so far is `seq`: it may be marked read."""

        def __init__(self, room_id: str, seq: int) -> None:
            super().__init__()
            self.room_id = room_id
            self.seq = seq

    class Left(TextualMessage):
        """The user pressed Escape: back to the composer."""

    def __init__(self, client: Any, names: UserNames, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.client = client
        self.names = names
        self.room: Room | None = None
        self._rows: list[MessageRow] = []
        self._keys: list[RowKey] = []  # the rows' keys, in the same order (for bisect)
        self._by_seq: dict[int, MessageRow] = {}
        self._by_ref: dict[str, MessageRow] = {}
        self._by_id: dict[str, Message] = {}  # loaded messages by id, for reply quotes
        self._selected: MessageRow | None = None
        self._generation = 0  # a newer `show_room` makes older loads stale
        self._has_older = False
        self._loading_older = False
        self._newest_seen = 0
        self._detached = False
        self._follow = True  # at the bottom: stays there as messages come
        self._tops: list[int] = []  # each row's first line; valid when `_laid_out_for` fits
        self._total = 0
        self._laid_out_for: int | None = None  # the width `_tops` was computed for
        self._read_by_other: dict[str, int] = {}  # direct room -> the other member's receipt
        self._stickers: dict[str, str] = {}
        self._stickers_asked = False

    # --- reading it ----------------------------------------------------------------------

    @property
    def room_id(self) -> str | None:
        return self.room.id if self.room is not None else None

    @property
    def rows(self) -> list[MessageRow]:
        """The rows in display order."""
        return list(self._rows)

    @property
    def selected(self) -> MessageRow | None:
        return self._selected

    @property
    def has_older(self) -> bool:
        return self._has_older

    @property
    def detached(self) -> bool:
        """Showing older messages after a jump (a search result): End goes to the newest."""
        return self._detached

    def row_for_seq(self, seq: int) -> MessageRow | None:
        return self._by_seq.get(seq)

    def row_for_ref(self, ref: str) -> MessageRow | None:
        return self._by_ref.get(ref)

    def message_by_id(self, message_id: str) -> Message | None:
        return self._by_id.get(message_id)

    @property
    def me(self) -> str:
        account = self.client.account
        return account.user.id if account is not None else ""

    # --- lifecycle -----------------------------------------------------------------------

    def on_mount(self) -> None:
        self.watch(self, "scroll_y", self._scrolled, init=False)

    async def show_room(self, room: Room, *, around_seq: int | None = None) -> None:
        """Show `room`: its newest page (or the page around `around_seq`) and its outbox."""
        self._generation += 1
        generation = self._generation
        self.room = room
        self._reset()
        try:
            before = around_seq + PAGE // 2 if around_seq is not None else None
            page = await self.client.history(room.id, before_seq=before, limit=PAGE)
            entries = await self.client.outbox(room.id) if around_seq is None else []
        except ClientError as exc:
            self.app.notify(error_text(exc), title="Cannot show the room", severity="error")
            return
        if generation != self._generation:
            return  # another room was opened meanwhile
        messages = list(reversed(page))
        self._has_older = bool(messages) and messages[0].seq > 1
        # Jumped back in time: newer messages are not loaded, so new ones are not added
        # below (a gap) until the user goes back to the newest (End).
        self._detached = around_seq is not None
        self._add_many([*messages, *entries])
        if around_seq is not None and (row := self._by_seq.get(around_seq)) is not None:
            self.select(row)
        else:
            self._to_bottom()
            self._announce_newest()
        self._learn_names(m.sender_id for m in messages)

    def _reset(self) -> None:
        self._rows.clear()
        self._keys.clear()
        self._by_seq.clear()
        self._by_ref.clear()
        self._by_id.clear()
        self._selected = None
        self._has_older = False
        self._loading_older = False
        self._newest_seen = 0
        self._detached = False
        self._follow = True
        self._changed()

    # --- events of the open room (the screen routes them here) --------------------------

    def add_message(self, message: Message) -> None:
        """A message was stored (`MessageReceived`)."""
        if message.room_id != self.room_id or self._detached:
            return
        if message.seq in self._by_seq:
            return
        echo = self._by_ref.get(message.ref) if message.sender_id == self.me else None
        if echo is not None:
            self._replace(echo, message)
        else:
            self._insert(MessageRow(message))
        self._trim()
        self._changed()
        self._announce_newest()
        self._learn_names([message.sender_id])

    def update_message(self, message: Message) -> None:
        """A stored message was edited or deleted (`MessageUpdated`)."""
        if message.room_id != self.room_id:
            return
        self._by_id[message.id] = message
        row = self._by_seq.get(message.seq)
        if row is not None:
            row.set_item(message)
            self._paint(row)
        for other in self._rows:  # rows quoting it
            if other.reply_to == message.id and other is not row:
                self._paint(other)
        self._changed()

    def outbox_changed(self, entry: OutboxEntry, message: Message | None) -> None:
        """A send changed state (`OutboxChanged`)."""
        if entry.room_id != self.room_id or self._detached:
            return
        row = self._by_ref.get(entry.ref)
        if entry.state == "sent":
            if message is None or message.seq in self._by_seq:
                if row is not None:
                    self._remove(row)  # the stored message came first (or never will here)
            elif row is not None:
                self._replace(row, message)
            else:
                self._insert(MessageRow(message))
            if message is not None:
                self._announce_newest()
        elif entry.state == "cancelled":
            if row is not None:
                self._remove(row)
        elif row is None:
            self._insert(MessageRow(entry))
        else:
            row.set_item(entry)
            self._paint(row)
        self._changed()

    def receipt(self, room_id: str, user_id: str, seq: int) -> None:
        """Someone read `room_id` up to `seq` (`ReceiptChanged`): in a direct room, the user's
        own messages up to there are marked read."""
        if user_id == self.me:
            return
        before = self._read_by_other.get(room_id, 0)
        if seq <= before:
            return
        self._read_by_other[room_id] = seq
        if room_id != self.room_id or self.room is None or self.room.kind != "direct":
            return
        for row in reversed(self._rows):
            message = row.message
            if message is None:
                continue
            if message.seq <= before:
                break
            if message.seq <= seq and message.sender_id == self.me:
                self._paint(row)
        self._changed()

    def repaint(self) -> None:
        """Paint every row again (names learned, sticker emoji known)."""
        for row in self._rows:
            self._paint(row)
        self._changed()

    # --- older pages ---------------------------------------------------------------------

    def _scrolled(self, scroll_y: float) -> None:
        self._follow = scroll_y >= self.max_scroll_y - 1
        if scroll_y <= 0 and self._has_older and not self._loading_older:
            self.run_worker(self.load_older(), group="older")

    async def load_older(self) -> None:
        """Load the page before the oldest shown message, keeping the view where it was."""
        if self.room is None or not self._has_older or self._loading_older:
            return
        first = next((r.message for r in self._rows if r.message is not None), None)
        if first is None:
            return
        generation, room_id = self._generation, self.room.id
        self._loading_older = True
        try:
            page = await self.client.history(room_id, before_seq=first.seq, limit=PAGE)
        except ClientError as exc:
            self.app.notify(error_text(exc), title="Cannot load older messages", severity="error")
            return
        finally:
            self._loading_older = False
        if generation != self._generation:
            return
        messages = list(reversed(page))
        self._has_older = bool(messages) and messages[0].seq > 1
        if not messages:
            return
        total = self._total
        self._add_many(messages)
        # What was on screen stays there: the new lines are above it.
        self.scroll_to(y=self.scroll_y + self._total - total, animate=False, immediate=True)
        self._learn_names(m.sender_id for m in messages)

    # --- keys and the mouse --------------------------------------------------------------

    def select(self, row: MessageRow | None) -> None:
        self._selected = row
        if row is not None:
            self._scroll_to_row(row)
        self.refresh()

    def action_select_previous(self) -> None:
        if not self._rows:
            return
        if self._selected is None:
            self.select(self._rows[-1])
            return
        index = self._rows.index(self._selected)
        if index > 0:
            self.select(self._rows[index - 1])
        else:
            self.scroll_home(animate=False)
            self.run_worker(self.load_older(), group="older")

    def action_select_next(self) -> None:
        if self._selected is None:
            return
        index = self._rows.index(self._selected)
        if index + 1 < len(self._rows):
            self.select(self._rows[index + 1])
        else:
            self.select(None)
            self._to_bottom()

    def action_older(self) -> None:
        self.scroll_home(animate=False)
        self.run_worker(self.load_older(), group="older")

    def action_newest(self) -> None:
        self.select(None)
        if self._detached and self.room is not None:
            self.run_worker(self.show_room(self.room), group="open", exclusive=True)
            return
        self._to_bottom()

    def action_leave(self) -> None:
        self.select(None)
        self.post_message(self.Left())

    def action_reply(self) -> None:
        row = self._selected
        if row is None or row.message is None or row.message.deleted:
            self.app.notify("Select a sent message to reply to it.", severity="warning")
            return
        self.post_message(self.ReplyRequested(row.message))

    def action_edit(self) -> None:
        row = self._selected
        if row is None:
            return
        item = row.message or row.entry
        own = row.entry is not None or row.sender_id == self.me
        deleted = row.message is not None and row.message.deleted
        if item is None or not own or item.kind != "text" or deleted:
            self.app.notify("Only your own text messages can be edited.", severity="warning")
            return
        if row.entry is not None and row.entry.transmitted and row.entry.state != "failed":
            self.app.notify("It is on its way: edit it once it is sent.", severity="warning")
            return
        self.post_message(self.EditRequested(row))

    def action_delete(self) -> None:
        row = self._selected
        if row is None or self.room is None:
            return
        if row.entry is not None:
            self.run_worker(self._call(self.client.cancel, row.entry.ref), group="act")
        elif row.message is not None and not row.message.deleted:
            room_id, message_id = self.room.id, row.message.id
            self.run_worker(self._call(self.client.delete, room_id, message_id), group="act")

    def action_resend(self) -> None:
        row = self._selected
        if row is None or row.entry is None or row.entry.state != "failed":
            self.app.notify("Select a failed message to send it again.", severity="warning")
            return
        self.run_worker(self._call(self.client.resend, row.entry.ref), group="act")

    def action_open_media(self) -> None:
        row = self._selected
        if row is None or row.message is None or row.message.kind != "media":
            self.app.notify("Select a file message to open it.", severity="warning")
            return
        self.post_message(self.OpenMedia(row.message))

    async def _call(self, method: Any, *args: Any) -> None:
        try:
            await method(*args)
        except ClientError as exc:
            self.app.notify(error_text(exc), severity="error")

    def on_click(self, event: events.Click) -> None:
        row = self._row_at(event.y)
        if row is not None:
            event.stop()
            self.select(None if row is self._selected else row)
            self.focus()

    # --- drawing -------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        self._layout()
        line = y + round(self.scroll_y) - self._bottom_gap()
        if line < 0 or line >= self._total:
            return Strip.blank(width, self.get_visual_style("dialog--row").rich_style)
        index = bisect.bisect_right(self._tops, line) - 1
        row = self._rows[index]
        offset = line - self._tops[index]
        if row.separator:
            if offset < SEPARATOR_LINES:
                style = self.get_visual_style("dialog--row", "dialog--separator")
                if offset < SEPARATOR_LINES - 1:
                    return Strip.blank(width, style.rich_style)
                return self._strip(separator_content(row.separator, width), style, width)
            offset -= SEPARATOR_LINES
        classes = ["dialog--row"]
        if row.entry is not None:
            classes.append("dialog--failed" if row.failed else "dialog--echo")
        if row is self._selected:
            classes.append("dialog--selected")
        style = self.get_visual_style(*classes)
        text = row.lines(self._text_width())[offset]
        return self._strip(Content(" " * PADDING) + text, style, width)

    def _strip(self, content: Content, style: Any, width: int) -> Strip:
        [strip] = Visual.to_strips(self, content, width, 1, style, pad=True)
        return strip

    def _text_width(self) -> int:
        return max(1, self.scrollable_content_region.width - 2 * PADDING)

    def _bottom_gap(self) -> int:
        """Blank lines above the rows when they do not fill the view: they sit at the bottom,
        next to the composer, as in any chat."""
        return max(0, self.scrollable_content_region.height - self._total)

    def _layout(self) -> None:
        width = self._text_width()
        if self._laid_out_for == width:
            return
        tops, y = [], 0
        for row in self._rows:
            tops.append(y)
            y += row.height(width)
        self._tops, self._total, self._laid_out_for = tops, y, width

    def _changed(self) -> None:
        """The rows changed: lay them out again, follow the bottom if the view was there."""
        follow = self._follow
        self._laid_out_for = None
        self._layout()
        self.virtual_size = Size(self.scrollable_content_region.width, self._total)
        if follow:
            self._to_bottom()
        self.refresh()

    def on_resize(self) -> None:
        self._changed()

    def _to_bottom(self) -> None:
        self._follow = True
        self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)

    def _row_at(self, y: int) -> MessageRow | None:
        self._layout()
        line = y + round(self.scroll_y) - self._bottom_gap()
        if line < 0 or line >= self._total:
            return None
        row = self._rows[bisect.bisect_right(self._tops, line) - 1]
        return row

    def _scroll_to_row(self, row: MessageRow) -> None:
        self._layout()
        index = self._rows.index(row)
        top = self._tops[index] + (SEPARATOR_LINES if row.separator else 0)
        bottom = self._tops[index] + row.height(self._text_width())
        height = self.scrollable_content_region.height
        if top < self.scroll_y:
            self.scroll_to(y=top, animate=False, immediate=True)
        elif bottom > self.scroll_y + height:
            self.scroll_to(y=bottom - height, animate=False, immediate=True)

    # --- rows ----------------------------------------------------------------------------

    def _index(self, row: MessageRow) -> None:
        if row.message is not None:
            self._by_seq[row.message.seq] = row
            self._by_id[row.message.id] = row.message
        elif row.entry is not None:
            self._by_ref[row.entry.ref] = row

    def _unindex(self, row: MessageRow) -> None:
        if row.message is not None:
            self._by_seq.pop(row.message.seq, None)
        elif row.entry is not None:
            self._by_ref.pop(row.entry.ref, None)

    def _look(self, row: MessageRow) -> Look:
        me = self.me
        sender_id = row.sender_id
        own = sender_id is None or sender_id == me
        sender = "you" if own else self.names.name(sender_id or "")
        reply = ""
        if row.reply_to:
            quoted_message = self._by_id.get(row.reply_to)
            who = self.names.name(quoted_message.sender_id) if quoted_message else ""
            if quoted_message is not None and quoted_message.sender_id == me:
                who = "you"
            reply = quoted(quoted_message, who)
        read = False
        message = row.message
        if own and message is not None and self.room is not None and self.room.kind == "direct":
            read = message.seq <= self._read_by_other.get(self.room.id, 0)
        emoji = None
        if message is not None and message.kind == "sticker" and message.sticker_id:
            emoji = self._stickers.get(message.sticker_id)
            if emoji is None and not self._stickers_asked:
                self._stickers_asked = True
                self.run_worker(self._learn_stickers(), group="stickers")
        return Look(sender=sender, own=own, reply=reply, read=read, sticker_emoji=emoji)

    def _paint(self, row: MessageRow) -> None:
        row.paint(self._look(row))

    def _day_label(self, row: MessageRow) -> str:
        return day_label(row.day, day_of(int(time.time() * 1000)))

    def _add_many(self, items: Iterable[Message | OutboxEntry]) -> None:
        """Add rows for `items` not shown yet: all at once when they all go above the rows
        shown (a page, older history), else one by one."""
        new_rows: list[MessageRow] = []
        for item in items:
            if isinstance(item, Message):
                if item.seq in self._by_seq:
                    continue
            elif item.ref in self._by_ref:
                continue
            new_rows.append(MessageRow(item))
        if not new_rows:
            return
        new_rows.sort(key=lambda r: r.key)
        if self._rows and new_rows[-1].key > self._keys[0]:
            for row in new_rows:
                self._insert(row)
            self._changed()
            return
        for row in new_rows:
            self._index(row)
        day = None
        for row in new_rows:
            self._paint(row)
            row.separator = self._day_label(row) if row.day != day else None
            day = row.day
        old_first = self._rows[0] if self._rows else None
        if old_first is not None and old_first.day == day:
            old_first.separator = None  # the day goes on from the new rows
        self._rows[0:0] = new_rows
        self._keys[0:0] = [r.key for r in new_rows]
        self._changed()

    def _insert(self, row: MessageRow) -> None:
        """Add one row at its place, keeping the day separators right."""
        index = bisect.bisect_left(self._keys, row.key)
        before = self._rows[index - 1] if index > 0 else None
        after = self._rows[index] if index < len(self._rows) else None
        self._rows.insert(index, row)
        self._keys.insert(index, row.key)
        self._index(row)
        self._paint(row)
        row.separator = self._day_label(row) if before is None or before.day != row.day else None
        if after is not None:
            after.separator = self._day_label(after) if after.day != row.day else None

    def _remove(self, row: MessageRow) -> None:
        """Drop one row, keeping the day separators right."""
        index = self._rows.index(row)
        before = self._rows[index - 1] if index > 0 else None
        after = self._rows[index + 1] if index + 1 < len(self._rows) else None
        del self._rows[index]
        del self._keys[index]
        self._unindex(row)
        if after is not None:
            opens_day = before is None or before.day != after.day
            after.separator = self._day_label(after) if opens_day else None
        if self._selected is row:
            self._selected = after or before

    def _replace(self, row: MessageRow, message: Message) -> None:
        """An echo became its stored message: changed in place when it stays where it is."""
        index = self._rows.index(row)
        new_key: RowKey = (0, message.seq)
        others = self._keys[:index] + self._keys[index + 1 :]
        stays = bisect.bisect_left(others, new_key) == index and row.day == day_of(message.ts)
        if not stays:
            selected = self._selected is row
            self._remove(row)
            new_row = MessageRow(message)
            self._insert(new_row)
            if selected:
                self._selected = new_row
            return
        self._unindex(row)
        row.set_item(message)
        self._keys[index] = new_key
        self._index(row)
        self._paint(row)

    def _trim(self) -> None:
        """Drop the oldest rows when too many pile up below a reader at the bottom."""
        if len(self._rows) <= MAX_ROWS or not self._follow:
            return
        stored = sum(1 for r in self._rows if r.message is not None)
        drop = max(0, stored - KEEP_ROWS)
        if not drop:
            return
        for row in self._rows[:drop]:
            self._unindex(row)
            if self._selected is row:
                self._selected = None
        del self._rows[:drop]
        del self._keys[:drop]
        first = self._rows[0] if self._rows else None
        if first is not None:
            first.separator = self._day_label(first)
        self._has_older = True

    def _announce_newest(self) -> None:
        newest = max(self._by_seq, default=0)
        if self.room is not None and newest > self._newest_seen:
            self._newest_seen = newest
            self.post_message(self.Seen(self.room.id, newest))

    # --- names and stickers, learned in the background ---------------------------------

    def _learn_names(self, user_ids: Iterable[str]) -> None:
        unknown = [i for i in set(user_ids) if i not in self.names.users and i != self.me]
        if unknown:
            self.run_worker(self.names.resolve(unknown), group="names")  # the screen repaints

    async def _learn_stickers(self) -> None:
        try:
            packs = await self.client.sticker_packs()
        except ClientError:
            self._stickers_asked = False  # asked again for the next sticker
            return
        self._stickers = {s.id: s.emoji or "▣" for pack in packs for s in pack.stickers}
        for row in self._rows:
            if row.message is not None and row.message.kind == "sticker":
                self._paint(row)
        self._changed()
