"""The room list: every room with its unread count and newest message, most active first.

It starts from `client.rooms()` (the device store: no network) and then changes one room per
event: a new message repaints its room's entry and moves it to the top; counts that only the
device store knows exactly (after a catch-up, a read elsewhere, a deletion) are read again for
that room alone, a few at a time (`refresh_soon`).

It is one widget that draws its lines itself (Textual's line API): two lines per room, only
the visible ones rendered, so hundreds of rooms cost no more to show or to reorder than a
screenful, and an event never mounts or lays out anything.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from textual import events
from textual.binding import Binding
from textual.content import Content
from textual.geometry import Offset, Size
from textual.message import Message as TextualMessage
from textual.scroll_view import ScrollView
from textual.strip import Strip

from chatcore.client.errors import ClientError
from chatcore.client.models import Message, Room, RoomSummary
from chatcore_tui.format import message_preview, room_title, unread_badge, when_label
from chatcore_tui.widgets.names import UserNames

#: Seconds between re-reads of the rooms whose counts may have changed.
REFRESH_DELAY = 0.1
#: Lines per room: the name line and the preview line.
ROW_HEIGHT = 2


@dataclass(eq=False)
class RoomEntry:
    """One room of the list, with the two lines it shows (painted by the list)."""

    summary: RoomSummary
    lines: tuple[Content, Content] = field(default=(Content(""), Content("")))

    @property
    def room_id(self) -> str:
        return self.summary.room.id

    @property
    def last_ts(self) -> int:
        return self.summary.last_ts

    @property
    def text(self) -> str:
        """What the entry shows, as plain text (two lines)."""
        return "\n".join(line.plain for line in self.lines)


class RoomList(ScrollView, can_focus=True):
    """The rooms; Enter (or a click) opens one."""

    HELP_TITLE = "Room list"

    COMPONENT_CLASSES = {
        "room-list--room",
        "room-list--cursor",
        "room-list--active",
        "room-list--hover",
    }

    DEFAULT_CSS = """
    RoomList {
        width: 34;
        height: 1fr;
        border-right: vkey $foreground 20%;
        & > .room-list--room { background: $surface; }
        & > .room-list--hover { background: $boost; }
        & > .room-list--cursor { background: $accent 20%; }
        & > .room-list--active { background: $accent 40%; text-style: bold; }
        &:focus > .room-list--cursor { background: $accent 50%; }
    }
    """

    BINDINGS = [
        Binding("up", "cursor_up", "Previous room", show=False),
        Binding("down", "cursor_down", "Next room", show=False),
        Binding("enter", "open", "Open room", show=False),
    ]

    class Opened(TextualMessage):
        """The user chose a room."""

        def __init__(self, room_id: str) -> None:
            super().__init__()
            self.room_id = room_id

    class Appeared(TextualMessage):
        """A room the list did not show came (a new room, or the first catch-up)."""

        def __init__(self, room_id: str) -> None:
            super().__init__()
            self.room_id = room_id

    def __init__(self, client: Any, names: UserNames, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.client = client
        self.names = names
        self.active_id: str | None = None
        self._entries: list[RoomEntry] = []  # in display order
        self._by_id: dict[str, RoomEntry] = {}
        self._cursor: RoomEntry | None = None
        self._hover: RoomEntry | None = None
        self._stale: set[str] = set()

    # --- reading it ----------------------------------------------------------------------

    @property
    def me(self) -> str:
        account = self.client.account
        return account.user.id if account is not None else ""

    def row(self, room_id: str) -> RoomEntry | None:
        return self._by_id.get(room_id)

    def ordered(self) -> list[RoomEntry]:
        """The entries in display order."""
        return list(self._entries)

    def title(self, room: Room) -> str:
        return room_title(room, self.me, self.names.users)

    def offset_of(self, room_id: str) -> Offset | None:
        """Where a room's name line is inside the widget (to click it), None when scrolled
        out of view."""
        entry = self._by_id.get(room_id)
        if entry is None:
            return None
        y = self._entries.index(entry) * ROW_HEIGHT - round(self.scroll_y)
        if 0 <= y < self.scrollable_content_region.height:
            return Offset(2, y)
        return None

    # --- filling it ----------------------------------------------------------------------

    def on_mount(self) -> None:
        self.set_interval(REFRESH_DELAY, self._refresh_stale)

    def load(self, summaries: list[RoomSummary]) -> None:
        """Show `summaries` (from `client.rooms()`, most active first)."""
        self._entries = [RoomEntry(s) for s in summaries]
        self._by_id = {e.room_id: e for e in self._entries}
        self._cursor = self._hover = None
        for entry in self._entries:
            self._paint(entry)
        self._resized()
        self._learn_names(summaries)

    def upsert(self, summary: RoomSummary) -> None:
        """Show a room as the device store has it now (new, renamed, its counts changed)."""
        entry = self._by_id.get(summary.room.id)
        if entry is None:
            entry = self._by_id[summary.room.id] = RoomEntry(summary)
            self._paint(entry)
            self._entries.insert(self._place_for(entry), entry)
            self._resized()
            self._learn_names([summary])
            self.post_message(self.Appeared(summary.room.id))
            return
        moved = summary.last_ts != entry.summary.last_ts
        entry.summary = summary
        self._paint(entry)
        if moved:
            self._reorder(entry)
        self.refresh()

    def remove_room(self, room_id: str) -> None:
        entry = self._by_id.pop(room_id, None)
        if entry is None:
            return
        self._entries.remove(entry)
        if self._cursor is entry:
            self._cursor = None
        if self._hover is entry:
            self._hover = None
        self._resized()

    def message_arrived(self, message: Message) -> None:
        """A new message: the entry shows it at once and moves up; the count is re-read."""
        entry = self._by_id.get(message.room_id)
        if entry is None:
            self.refresh_soon(message.room_id)
            return
        summary = entry.summary
        last = summary.last_message
        if last is None or message.seq >= last.seq:
            update: dict[str, Any] = {"last_message": message, "last_ts": message.ts}
            if message.sender_id != self.me and message.seq > summary.read_seq:
                update["unread"] = summary.unread + 1
            entry.summary = summary.model_copy(update=update)
            self._paint(entry)
            self._reorder(entry)
            self.refresh()
        self.refresh_soon(message.room_id)

    def message_updated(self, message: Message) -> None:
        entry = self._by_id.get(message.room_id)
        if entry is not None and entry.summary.last_message is not None:
            if entry.summary.last_message.id == message.id:
                entry.summary = entry.summary.model_copy(update={"last_message": message})
                self._paint(entry)
                self.refresh()
        self.refresh_soon(message.room_id)

    def set_active(self, room_id: str | None) -> None:
        """Highlight the open room (its unread count shows as read)."""
        previous = self._by_id.get(self.active_id or "")
        self.active_id = room_id
        if previous is not None:
            self._paint(previous)
        entry = self._by_id.get(room_id or "")
        if entry is not None:
            self._paint(entry)
            self._move_cursor(entry)
        self.refresh()

    def repaint(self) -> None:
        for entry in self._entries:
            self._paint(entry)
        self.refresh()

    def refresh_soon(self, room_id: str) -> None:
        """Read this room again from the device store at the next tick."""
        self._stale.add(room_id)

    async def _refresh_stale(self) -> None:
        if not self._stale:
            return
        stale, self._stale = self._stale, set()
        for room_id in stale:
            try:
                summary = await self.client.room(room_id)
            except ClientError:
                continue
            if summary is not None:
                self.upsert(summary)

    # --- drawing -------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        index, part = divmod(y + round(self.scroll_y), ROW_HEIGHT)
        if index >= len(self._entries):
            return Strip.blank(width, self.get_visual_style("room-list--room").rich_style)
        entry = self._entries[index]
        classes = ["room-list--room"]
        if entry.room_id == self.active_id:
            classes.append("room-list--active")
        elif entry is self._cursor:
            classes.append("room-list--cursor")
        elif entry is self._hover:
            classes.append("room-list--hover")
        style = self.get_visual_style(*classes)
        line = Content(" ") + entry.lines[part]
        return Strip(line.render_segments(style)).crop_extend(0, width, style.rich_style)

    def _resized(self) -> None:
        self.virtual_size = Size(self.scrollable_content_region.width, len(self._entries) * 2)
        self.refresh()

    def on_resize(self) -> None:
        self._resized()

    # --- keys and the mouse --------------------------------------------------------------

    def action_cursor_up(self) -> None:
        self._step(-1)

    def action_cursor_down(self) -> None:
        self._step(1)

    def action_open(self) -> None:
        if self._cursor is not None:
            self.post_message(self.Opened(self._cursor.room_id))

    def _entry_at(self, y: int) -> RoomEntry | None:
        index = (y + round(self.scroll_y)) // ROW_HEIGHT
        return self._entries[index] if 0 <= index < len(self._entries) else None

    def on_click(self, event: events.Click) -> None:
        entry = self._entry_at(event.y)
        if entry is not None:
            event.stop()
            self._move_cursor(entry)
            self.post_message(self.Opened(entry.room_id))

    def on_mouse_move(self, event: events.MouseMove) -> None:
        entry = self._entry_at(event.y)
        if entry is not self._hover:
            self._hover = entry
            self.refresh()

    def on_leave(self) -> None:
        if self._hover is not None:
            self._hover = None
            self.refresh()

    def _step(self, delta: int) -> None:
        if not self._entries:
            return
        if self._cursor is None or self._cursor not in self._by_id.values():
            self._move_cursor(self._entries[0])
            return
        index = self._entries.index(self._cursor) + delta
        self._move_cursor(self._entries[max(0, min(len(self._entries) - 1, index))])

    def _move_cursor(self, entry: RoomEntry) -> None:
        self._cursor = entry
        top = self._entries.index(entry) * ROW_HEIGHT
        height = self.scrollable_content_region.height
        if top < self.scroll_y:
            self.scroll_to(y=top, animate=False)
        elif top + ROW_HEIGHT > self.scroll_y + height:
            self.scroll_to(y=top + ROW_HEIGHT - height, animate=False)
        self.refresh()

    # --- inside --------------------------------------------------------------------------

    def _paint(self, entry: RoomEntry) -> None:
        summary = entry.summary
        last = summary.last_message
        preview = ""
        if last is not None:
            text = message_preview(last, limit=60)
            if summary.room.kind == "group" or last.sender_id == self.me:
                who = "you" if last.sender_id == self.me else self.names.name(last.sender_id)
                text = f"{who}: {text}"
            preview = text
        active = entry.room_id == self.active_id
        badge = unread_badge(0 if active else summary.unread)
        when = when_label(summary.last_ts, int(time.time() * 1000)) if summary.last_ts else ""
        title = self.title(summary.room)
        entry.lines = (
            Content.assemble(
                (title, "bold" if badge else ""),
                (f" ({badge})" if badge else "", "bold $accent"),
                ("  " + when if when else "", "dim"),
            ),
            Content.assemble((preview, "dim")),
        )

    def _place_for(self, entry: RoomEntry) -> int:
        """The index `entry` goes at (by activity) among the others."""
        for index, other in enumerate(self._entries):
            if other is not entry and other.last_ts <= entry.last_ts:
                return index
        return len(self._entries)

    def _reorder(self, entry: RoomEntry) -> None:
        self._entries.remove(entry)
        self._entries.insert(self._place_for(entry), entry)

    def _learn_names(self, summaries: list[RoomSummary]) -> None:
        me = self.me
        wanted = {m for s in summaries if s.room.kind == "direct" for m in s.room.member_ids}
        wanted |= {s.last_message.sender_id for s in summaries if s.last_message is not None}
        wanted.discard(me)
        if wanted - set(self.names.users):
            self.run_worker(self.names.resolve(wanted), group="names")  # the screen repaints
