"""The help screen (F1, or `?` when not typing): every key, generated from the BINDINGS.

Nothing here lists keys by hand: the app's, the screen's and each widget's bindings are read
from the classes that declare them (those of this package), so the help cannot go stale. The
groups are the app ("Everywhere"), the screen under the help, then each kind of widget on
it, in the order they appear.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

#: Modules whose classes' BINDINGS are listed (Textual's own stay out: they are not ours
#: to document, and a text box's dozens of editing keys would drown the rest).
OWN_PACKAGE = "chatcore_tui"


@dataclass
class HelpGroup:
    title: str
    #: (keys, what they do), in declaration order; keys of one action joined.
    rows: list[tuple[str, str]] = field(default_factory=list)


def declared_bindings(cls: type) -> list[Binding]:
    """The bindings the classes of this package in `cls`'s MRO declare, the subclass's first;
    a key declared again lower in the MRO is left out (the subclass's wins)."""
    found: list[Binding] = []
    keys: set[str] = set()
    for klass in cls.__mro__:
        if not klass.__module__.startswith(OWN_PACKAGE):
            continue
        for binding in Binding.make_bindings(klass.__dict__.get("BINDINGS", ())):
            if binding.key not in keys:
                keys.add(binding.key)
                found.append(binding)
    return found


def group_of(app: App[object], title: str, node_type: type) -> HelpGroup | None:
    """One group: each action once, its keys joined ("F1 / ?")."""
    rows: dict[tuple[str, str], list[str]] = {}
    for binding in declared_bindings(node_type):
        description = binding.description or binding.action.replace("_", " ")
        key = app.get_key_display(binding)
        rows.setdefault((binding.action, description), []).append(key)
    if not rows:
        return None
    return HelpGroup(title, [(" / ".join(keys), what) for (_, what), keys in rows.items()])


def help_groups(app: App[object], screen: Screen[object] | None) -> list[HelpGroup]:
    """Every binding of the app, of `screen`, and of the widgets on it, grouped."""
    groups: list[HelpGroup] = []
    sources: list[tuple[str, type]] = [("Everywhere", type(app))]
    if screen is not None:
        sources.append((_title(type(screen)), type(screen)))
        seen: set[type] = {type(screen)}
        for widget in _walk(screen):
            if type(widget) not in seen:
                seen.add(type(widget))
                sources.append((_title(type(widget)), type(widget)))
    for title, node_type in sources:
        group = group_of(app, title, node_type)
        if group is not None:
            groups.append(group)
    return groups


def _walk(node: DOMNode) -> Iterable[DOMNode]:
    for child in node.children:
        yield child
        yield from _walk(child)


def _title(cls: type) -> str:
    return str(getattr(cls, "HELP_TITLE", cls.__name__))


class HelpScreen(ModalScreen[None]):
    """All keys, grouped; Escape (or F1, ?) closes it."""

    HELP_TITLE = "Help"

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 80;
        max-width: 95%;
        height: 90%;
        border: thick $accent;
        background: $surface;
        padding: 0 1;
    }
    HelpScreen .help-title { text-style: bold; color: $text-accent; margin-top: 1; }
    """

    BINDINGS = [Binding("escape,f1,question_mark,q", "close", "Close the help")]

    def __init__(self, under: Screen[object] | None) -> None:
        super().__init__()
        self.under = under
        self.groups: list[HelpGroup] = []

    def compose(self) -> ComposeResult:
        self.groups = help_groups(self.app, self.under)
        with VerticalScroll():
            yield Static(Content("Keys (mouse: click a room to open it, a message to select it)"))
            for group in self.groups:
                yield Static(Content(group.title), classes="help-title")
                width = max(len(keys) for keys, _ in group.rows)
                lines = [
                    Content.assemble((keys.ljust(width), "bold"), "  ", what)
                    for keys, what in group.rows
                ]
                yield Static(Content("\n").join(lines), classes="help-group")

    def action_close(self) -> None:
        self.dismiss(None)
