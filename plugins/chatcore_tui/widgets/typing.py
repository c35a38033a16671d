"""The typing indicator: "bob is typing…" under the open room's messages.

A `typing` hint is not stored and may be lost (a closed app never says "stopped"), so each
one expires `TYPING_EXPIRY` seconds after it was last heard; a typing client repeats it
more often than that (`chatcore_tui.widgets.composer.TYPING_REFRESH`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.content import Content
from textual.widgets import Static

from chatcore_tui.format import typing_line

#: Seconds a "typing" hint holds without being repeated.
TYPING_EXPIRY = 6.0


class TypingIndicator(Static):
    """Who is typing in the open room; one line, empty when nobody is."""

    DEFAULT_CSS = """
    TypingIndicator {
        width: 1fr;
        height: 1;
        padding: 0 1;
        color: $text-muted;
        text-style: italic;
    }
    """

    def __init__(self, name_of: Callable[[str], str], *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self._name_of = name_of
        self._typing: dict[str, dict[str, float]] = {}  # room -> user -> expires at
        self.room_id: str | None = None

    def on_mount(self) -> None:
        self.set_interval(0.5, self._expire)

    def show_room(self, room_id: str | None) -> None:
        self.room_id = room_id
        self._paint()

    def typing(self, room_id: str, user_id: str, active: bool) -> None:
        people = self._typing.setdefault(room_id, {})
        if active:
            people[user_id] = time.monotonic() + TYPING_EXPIRY
        else:
            people.pop(user_id, None)
        if room_id == self.room_id:
            self._paint()

    def stopped(self, room_id: str, user_id: str) -> None:
        """`user_id`'s message arrived: they are no longer typing it."""
        if user_id in self._typing.get(room_id, {}):
            self.typing(room_id, user_id, False)

    def _expire(self) -> None:
        now = time.monotonic()
        changed = False
        for people in self._typing.values():
            for user_id in [u for u, until in people.items() if until <= now]:
                del people[user_id]
                changed = True
        if changed:
            self._paint()

    def _paint(self) -> None:
        people = self._typing.get(self.room_id or "", {})
        self.update(Content(typing_line([self._name_of(u) for u in people])))
