"""New group: a name and members picked from the contacts; dismissed with the new room's id.

The contacts come from the device store (at once, offline too); creating the group needs the
server (`client.create_group`), and what it refuses is said in the dialog. Ctrl+S (or the
Create button) creates it; Escape cancels (dismissed with None).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Input, Label, SelectionList, Static

from chatcore.client.errors import ClientError
from chatcore_tui.format import error_text

if TYPE_CHECKING:
    from chatcore.client.app import Client


class NewGroupScreen(ModalScreen[str | None]):
    """Create a group room (see the module's docstring)."""

    DEFAULT_CSS = """
    NewGroupScreen { align: center middle; }
    NewGroupScreen > Vertical {
        width: 70; height: 80%; border: round $accent; background: $surface; padding: 0 1;
    }
    NewGroupScreen #group-members { height: 1fr; }
    NewGroupScreen #group-status { height: auto; color: $text-muted; }
    NewGroupScreen #group-status.-error { color: $error; }
    NewGroupScreen Horizontal { height: auto; }
    NewGroupScreen Horizontal Button { margin-right: 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Cancel"),
        Binding("ctrl+s", "create", "Create group"),
    ]

    def __init__(self, client: Client) -> None:
        super().__init__()
        self.client = client

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("New group", classes="title")
            yield Input(placeholder="Group name", id="group-name")
            yield Label("Members (space picks, Enter too):")
            yield SelectionList[str](id="group-members")
            yield Static("", id="group-status", markup=False)
            with Horizontal():
                yield Button(
                    "Create (ctrl+s)", id="create", variant="primary", action="screen.create"
                )
                yield Button("Cancel (esc)", id="cancel", action="screen.close")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#group-name", Input).focus()
        self._load_contacts()

    @work(group="contacts")
    async def _load_contacts(self) -> None:
        contacts = await self.client.contacts()
        members = self.query_one("#group-members", SelectionList)
        members.add_options(
            (Text(f"{c.user.display_name} (@{c.user.username})"), c.user.id)
            for c in sorted(contacts, key=lambda c: c.user.display_name.casefold())
        )
        if contacts:
            members.highlighted = 0  # Space picks the first at once
        else:
            self._say("No contacts yet: a group of one can take members later.", error=False)

    @on(Input.Submitted, "#group-name")
    def _name_entered(self) -> None:
        self.query_one("#group-members", SelectionList).focus()

    def action_create(self) -> None:
        name = self.query_one("#group-name", Input).value.strip()
        if not name:
            self._say("The group needs a name.", error=True)
            self.query_one("#group-name", Input).focus()
            return
        self._create(name, list(self.query_one("#group-members", SelectionList).selected))

    @work(group="create", exclusive=True)
    async def _create(self, name: str, member_ids: list[str]) -> None:
        self._say("Creating…", error=False)
        try:
            summary = await self.client.create_group(name, member_ids)
        except ClientError as exc:
            self._say(f"The group was not created: {error_text(exc)}", error=True)
            return
        self.dismiss(summary.room.id)

    def _say(self, text: str, *, error: bool) -> None:
        status = self.query_one("#group-status", Static)
        status.update(text)
        status.set_class(error, "-error")
        if error:
            self.notify(text, severity="error", markup=False)

    def action_close(self) -> None:
        self.dismiss(None)
