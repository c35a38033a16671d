"""The search screen: full-text search over the messages stored on this device.

The results (`client.search`: SQLite FTS5 over the device store, so it works offline) follow
the typing, a moment after the last key; each shows its room, its sender, its time and the
text around the match, with the matched words marked. Choosing one (Enter, or a click)
dismisses the screen with that `Message`, for the app to open its room there; Escape
dismisses with None.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Input, OptionList, Static
from textual.widgets.option_list import Option

from chatcore.client.errors import ClientError
from chatcore.client.models import Message, Room
from chatcore_tui.format import error_text

if TYPE_CHECKING:
    from chatcore.client.app import Client

#: Seconds of quiet typing before the device store is searched.
SEARCH_DEBOUNCE_SECONDS = 0.15
#: How many results are shown.
RESULT_LIMIT = 50
#: Characters of a message's text shown around its first match.
SNIPPET_CHARS = 160


def query_words(text: str) -> list[str]:
    """The words of a query as FTS5 reads them (punctuation is no part of a word)."""
    return re.findall(r"\w+", text)


def snippet(body: str, words: Iterable[str]) -> Text:
    """The text around the first matching word, on one line, the matched words marked."""
    flat = " ".join(body.split())
    pattern = _words_pattern(words)
    match = pattern.search(flat) if pattern is not None else None
    if len(flat) > SNIPPET_CHARS:
        start = max(0, (match.start() if match else 0) - SNIPPET_CHARS // 3)
        end = start + SNIPPET_CHARS
        flat = ("…" if start else "") + flat[start:end] + ("…" if end < len(flat) else "")
    text = Text(flat)
    if pattern is not None:
        text.highlight_regex(pattern, style="bold reverse")
    return text


def _words_pattern(words: Iterable[str]) -> re.Pattern[str] | None:
    # A word matches as a prefix too: `hel*` is a query for "hello".
    alternatives = "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))
    return re.compile(rf"\b(?:{alternatives})\w*", re.IGNORECASE) if alternatives else None


def room_label(room: Room | None, names: Mapping[str, str], me: str | None) -> str:
    """A room as a person knows it: its name, or for a direct room the other person's."""
    if room is None:
        return "a room no longer here"
    if room.name:
        return room.name
    others = [names.get(m, m) for m in room.member_ids if m != me]
    return ", ".join(others) or "yourself"


def local_time(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts / 1000).strftime("%Y-%m-%d %H:%M")


class SearchScreen(Screen[Message | None]):
    """Search the device's messages; dismissed with the chosen one (see the module)."""

    DEFAULT_CSS = """
    SearchScreen #search-query { margin: 1 1 0 1; }
    SearchScreen #search-hint { color: $text-muted; margin: 0 2; height: auto; }
    SearchScreen #search-results { height: 1fr; margin: 0 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Back"),
        Binding("enter", "choose", "Open"),
        Binding("down", "to_results", "Results"),
        Binding("ctrl+f", "to_query", "Edit search"),
    ]

    def __init__(self, client: Client) -> None:
        super().__init__()
        self.client = client
        self._results: list[Message] = []
        self._words: list[str] = []
        self._rooms: dict[str, Room] = {}
        self._names: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        yield Input(placeholder="Search the messages on this device", id="search-query")
        yield Static("Type words to search; word* finds a prefix.", id="search-hint", markup=False)
        yield OptionList(id="search-results")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#search-query", Input).focus()
        self._load_rooms()

    @work(group="rooms")
    async def _load_rooms(self) -> None:
        """The rooms' names, read once from the device store."""
        self._rooms = {s.room.id: s.room for s in await self.client.rooms()}
        if self._results:  # shown before the rooms were known: their names now
            self._show()
            await self._learn_names(self._results)

    # --- searching -----------------------------------------------------------------------------

    @on(Input.Changed, "#search-query")
    def _query_changed(self, event: Input.Changed) -> None:
        self.search(event.value, SEARCH_DEBOUNCE_SECONDS)

    @on(Input.Submitted, "#search-query")
    def _query_submitted(self, event: Input.Submitted) -> None:
        """Enter in the query searches at once and moves to the results."""
        self.search(event.value, 0)
        self.action_to_results()

    @work(group="search", exclusive=True)
    async def search(self, text: str, delay: float) -> None:
        """Search after `delay` seconds of quiet (a newer search cancels this one)."""
        hint = self.query_one("#search-hint", Static)
        words = query_words(text)
        if not words:
            self._results, self._words = [], []
            self._show()
            hint.update("Type words to search; word* finds a prefix.")
            return
        await asyncio.sleep(delay)
        try:
            found = await self.client.search(text, limit=RESULT_LIMIT)
        except ClientError as exc:
            hint.update(f"The search failed: {error_text(exc)}")
            return
        self._results, self._words = found, words
        self._show(keep_highlight=False)
        more = " (the newest shown)" if len(found) == RESULT_LIMIT else ""
        hint.update(
            f"{len(found)} found{more}: ↓ goes to them, Enter opens one."
            if found
            else "Nothing found on this device."
        )
        await self._learn_names(found)

    async def _learn_names(self, messages: list[Message]) -> None:
        """Senders' and direct rooms' display names (the device first, then the server); the
        results are shown again with them."""
        wanted = {m.sender_id for m in messages}
        for m in messages:
            room = self._rooms.get(m.room_id)
            if room is not None and not room.name:
                wanted.update(room.member_ids)
        unknown = wanted - self._names.keys()
        if not unknown:
            return
        try:
            users = await self.client.users(unknown)
        except ClientError:
            return  # the ids stay shown
        self._names.update({user_id: user.display_name for user_id, user in users.items()})
        self._show()

    def _show(self, *, keep_highlight: bool = True) -> None:
        """Show the results; `keep_highlight` when the same results are shown again (with
        names learned), else the first is highlighted."""
        results = self.query_one("#search-results", OptionList)
        highlighted = (results.highlighted or 0) if keep_highlight else 0
        results.set_options(
            Option(self._describe(m), id=str(index)) for index, m in enumerate(self._results)
        )
        if self._results:
            results.highlighted = min(highlighted, len(self._results) - 1)

    def _describe(self, message: Message) -> Text:
        me = self.client.account.user.id if self.client.account is not None else None
        room = room_label(self._rooms.get(message.room_id), self._names, me)
        sender = "you" if message.sender_id == me else self._names.get(message.sender_id)
        header = Text.assemble(
            (room, "bold"),
            " · ",
            sender or message.sender_id,
            " · ",
            (local_time(message.ts), "dim"),
        )
        return Text("\n").join([header, snippet(message.body, self._words)])

    # --- choosing ------------------------------------------------------------------------------

    @on(OptionList.OptionSelected, "#search-results")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self._results[event.option_index])

    def action_choose(self) -> None:
        index = self.query_one("#search-results", OptionList).highlighted
        if self._results:
            self.dismiss(self._results[index or 0])

    def action_to_results(self) -> None:
        self.query_one("#search-results", OptionList).focus()

    def action_to_query(self) -> None:
        self.query_one("#search-query", Input).focus()

    def action_close(self) -> None:
        self.dismiss(None)
