"""The contacts screen: contacts with their presence, invitations, finding people, blocked users.

Four tabs (keys 1 to 4): *Contacts* (open a direct room, remove, block), *Invitations*
(incoming: accept or decline; outgoing: cancel), *Find people* (search the server's users and
invite them) and *Blocked* (unblock). The contacts and invitations are read from the device
store, so they show at once and offline; finding people and the blocked list ask the server.

The app's event reader calls `on_client_event` with every client event while this screen is
active: a `ContactChanged` reads the lists again (the engine has stored the change by then), a
`PresenceChanged` updates one contact's row in place. Dismissed with the id of a direct room
opened from a contact, or None.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import (
    Button,
    DataTable,
    Footer,
    Input,
    Label,
    Static,
    TabbedContent,
    TabPane,
)
from textual.widgets.data_table import CellDoesNotExist

from chatcore.client.errors import ClientError
from chatcore.client.events import ContactChanged, PresenceChanged
from chatcore.client.models import Contact, Invitation, User
from chatcore_tui.format import error_text

if TYPE_CHECKING:
    from chatcore.client.app import Client

#: Which tab each row action belongs to: the footer shows an action only on its tab.
ACTION_TABS: dict[str, tuple[str, ...]] = {
    "open_direct": ("contacts",),
    "remove": ("contacts",),
    "block": ("contacts", "find"),
    "accept": ("invitations",),
    "decline": ("invitations",),
    "cancel_invitation": ("invitations",),
    "invite": ("find",),
    "unblock": ("blocked",),
}
#: What takes the focus when a tab is shown.
TAB_FOCUS = {
    "contacts": "#contacts-table",
    "invitations": "#incoming-table",
    "find": "#find-query",
    "blocked": "#blocked-table",
}
#: Seconds of quiet typing before the server is asked for people.
FIND_DEBOUNCE_SECONDS = 0.3
#: Removing and blocking end a contact: the key is pressed twice within this many seconds.
CONFIRM_SECONDS = 4.0

ONLINE_MARK = Text("●", style="bold green")
OFFLINE_MARK = Text("○", style="dim")


def presence_mark(status: str) -> Text:
    """The mark shown beside a contact: a filled dot when online, an empty one else."""
    return ONLINE_MARK if status == "online" else OFFLINE_MARK


def selected_key(table: DataTable[Any]) -> str | None:
    """The key of the row under the table's cursor, None when the table is empty."""
    if table.row_count == 0:
        return None
    try:
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
    except CellDoesNotExist:
        return None


def refill(table: DataTable[Any], rows: Iterable[tuple[str, tuple[Any, ...]]]) -> None:
    """Replace the table's rows by `rows` (key, cells), keeping the cursor on the same key."""
    kept = selected_key(table)
    table.clear()
    for key, cells in rows:
        table.add_row(*cells, key=key)
    if kept is not None and kept in table.rows:
        table.move_cursor(row=table.get_row_index(kept))


class ContactsScreen(Screen[str | None]):
    """Contacts, invitations, finding people and blocked users (see the module's docstring)."""

    DEFAULT_CSS = """
    ContactsScreen TabPane { padding: 0 1; }
    ContactsScreen DataTable { height: 1fr; }
    ContactsScreen .hint { color: $text-muted; height: auto; }
    ContactsScreen .section { text-style: bold; margin-top: 1; }
    ContactsScreen .actions { height: auto; }
    ContactsScreen .actions Button { margin-right: 1; }
    ContactsScreen #find-query { margin-bottom: 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Back"),
        Binding("o", "open_direct", "Open chat"),
        Binding("r", "remove", "Remove"),
        Binding("b", "block", "Block"),
        Binding("a", "accept", "Accept"),
        Binding("d", "decline", "Decline"),
        Binding("x", "cancel_invitation", "Cancel invitation"),
        Binding("i", "invite", "Invite"),
        Binding("u", "unblock", "Unblock"),
        Binding("1", "show_tab('contacts')", "Contacts tab", show=False),
        Binding("2", "show_tab('invitations')", "Invitations tab", show=False),
        Binding("3", "show_tab('find')", "Find people", show=False),
        Binding("4", "show_tab('blocked')", "Blocked tab", show=False),
    ]

    def __init__(self, client: Client) -> None:
        super().__init__()
        self.client = client
        self._contact_ids: set[str] = set()
        self._invited_ids: set[str] = set()
        #: The destructive action asked once, on whom, and when (see `_confirmed`).
        self._armed: tuple[str, str, float] | None = None

    # --- layout ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with TabbedContent(id="tabs", initial="contacts"):
            with TabPane("Contacts [1]", id="contacts"):
                yield Static("", id="contacts-hint", markup=False, classes="hint")
                yield self._table("contacts-table", ("", "Name", "Username", "Presence"), "mark")
                with Horizontal(classes="actions"):
                    yield Button("Open chat (o)", id="open-direct", action="screen.open_direct")
                    yield Button("Remove (r)", id="remove", action="screen.remove")
                    yield Button("Block (b)", id="block", variant="error", action="screen.block")
            with TabPane("Invitations [2]", id="invitations"):
                with Vertical():
                    yield Label("Incoming", classes="section")
                    yield self._table("incoming-table", ("From", "Username", "Sent"))
                    with Horizontal(classes="actions"):
                        yield Button(
                            "Accept (a)", id="accept", variant="success", action="screen.accept"
                        )
                        yield Button("Decline (d)", id="decline", action="screen.decline")
                    yield Label("Outgoing", classes="section")
                    yield self._table("outgoing-table", ("To", "Username", "Sent"))
                    with Horizontal(classes="actions"):
                        yield Button(
                            "Cancel invitation (x)",
                            id="cancel-invitation",
                            action="screen.cancel_invitation",
                        )
            with TabPane("Find people [3]", id="find"):
                yield Input(placeholder="Name or username", id="find-query")
                yield Static(
                    "Type a name to find people.", id="find-hint", markup=False, classes="hint"
                )
                yield self._table("find-table", ("Name", "Username", ""), "relation")
                with Horizontal(classes="actions"):
                    yield Button(
                        "Invite (i)", id="invite", variant="primary", action="screen.invite"
                    )
                    yield Button(
                        "Block (b)", id="block-found", variant="error", action="screen.block"
                    )
            with TabPane("Blocked [4]", id="blocked"):
                yield Static("", id="blocked-hint", markup=False, classes="hint")
                yield self._table("blocked-table", ("Name", "Username"))
                with Horizontal(classes="actions"):
                    yield Button("Unblock (u)", id="unblock", action="screen.unblock")
        yield Footer()

    @staticmethod
    def _table(table_id: str, columns: tuple[str, ...], unnamed: str = "") -> DataTable[Any]:
        """A table with a row cursor; a column's key is its lowercased label, or `unnamed`."""
        table: DataTable[Any] = DataTable(id=table_id, cursor_type="row", zebra_stripes=True)
        for column in columns:
            table.add_column(column, key=column.lower() or unnamed)
        return table

    def on_mount(self) -> None:
        self.refresh_local()
        self.refresh_blocked()
        self.query_one("#contacts-table", DataTable).focus()

    # --- events from the client ----------------------------------------------------------------

    def on_client_event(self, event: object) -> None:
        """Called by the app's event reader for each client event while this screen shows."""
        if isinstance(event, PresenceChanged):
            self._show_presence(event.user_id, event.status)
        elif isinstance(event, ContactChanged):
            self.refresh_local()
            if event.event in ("blocked", "unblocked"):  # from another device of this user too
                self.refresh_blocked()

    def _show_presence(self, user_id: str, status: str) -> None:
        table = self.query_one("#contacts-table", DataTable)
        if user_id in table.rows:
            table.update_cell(user_id, "mark", presence_mark(status))
            table.update_cell(user_id, "presence", status)

    # --- loading -----------------------------------------------------------------------------

    @work(group="local", exclusive=True)
    async def refresh_local(self) -> None:
        """Contacts and invitations from the device store (no network: works offline)."""
        contacts = await self.client.contacts()
        incoming, outgoing = await self.client.invitations()
        self._show_contacts(contacts)
        self._show_invitations(incoming, outgoing)
        self._show_relations()

    def _show_contacts(self, contacts: list[Contact]) -> None:
        self._contact_ids = {c.user.id for c in contacts}
        ordered = sorted(contacts, key=lambda c: (c.presence != "online", c.user.display_name))
        refill(
            self.query_one("#contacts-table", DataTable),
            (
                (
                    c.user.id,
                    (presence_mark(c.presence), *_person_cells(c.user), c.presence),
                )
                for c in ordered
            ),
        )
        online = sum(c.presence == "online" for c in contacts)
        hint = (
            f"{len(contacts)} contacts, {online} online."
            if contacts
            else "No contacts yet: find people with 3."
        )
        self.query_one("#contacts-hint", Static).update(hint)

    def _show_invitations(self, incoming: list[Invitation], outgoing: list[Invitation]) -> None:
        self._invited_ids = {i.to_user.id for i in outgoing}
        refill(
            self.query_one("#incoming-table", DataTable),
            ((i.id, (*_person_cells(i.from_user), _when(i.ts))) for i in incoming),
        )
        refill(
            self.query_one("#outgoing-table", DataTable),
            ((i.id, (*_person_cells(i.to_user), _when(i.ts))) for i in outgoing),
        )
        tab = self.query_one(TabbedContent).get_tab("invitations")
        tab.label = f"Invitations ({len(incoming)}) [2]" if incoming else "Invitations [2]"

    @work(group="blocked", exclusive=True)
    async def refresh_blocked(self) -> None:
        """The blocked users (from the server)."""
        hint = self.query_one("#blocked-hint", Static)
        try:
            users = await self.client.blocked()
        except ClientError as exc:
            hint.update(f"The blocked users cannot be read: {error_text(exc)}")
            return
        refill(
            self.query_one("#blocked-table", DataTable),
            ((u.id, _person_cells(u)) for u in users),
        )
        hint.update(f"{len(users)} blocked." if users else "Nobody is blocked.")

    # --- finding people ------------------------------------------------------------------------

    @on(Input.Changed, "#find-query")
    def _query_changed(self, event: Input.Changed) -> None:
        self.find_people(event.value, FIND_DEBOUNCE_SECONDS)

    @on(Input.Submitted, "#find-query")
    def _query_submitted(self, event: Input.Submitted) -> None:
        self.find_people(event.value, 0)
        self.query_one("#find-table", DataTable).focus()

    @work(group="find", exclusive=True)
    async def find_people(self, query: str, delay: float) -> None:
        """Ask the server for people matching `query`, after `delay` seconds of quiet (a newer
        query cancels this one: the worker group is exclusive)."""
        hint = self.query_one("#find-hint", Static)
        table = self.query_one("#find-table", DataTable)
        query = query.strip()
        if not query:
            table.clear()
            hint.update("Type a name to find people.")
            return
        await asyncio.sleep(delay)
        hint.update("Searching…")
        try:
            users = await self.client.search_users(query)
        except ClientError as exc:
            hint.update(f"People cannot be searched now: {error_text(exc)}")
            return
        me = self._my_id()
        users = [u for u in users if u.id != me]
        refill(table, ((u.id, (*_person_cells(u), self._relation(u.id))) for u in users))
        hint.update(
            f"{len(users)} found: Enter or i invites." if users else f"Nobody matches {query!r}."
        )

    def _show_relations(self) -> None:
        """Mark the people found who are contacts or invited now (the lists just changed)."""
        found = self.query_one("#find-table", DataTable)
        for row_key in list(found.rows):
            if row_key.value is not None:
                found.update_cell(row_key, "relation", self._relation(row_key.value))

    def _relation(self, user_id: str) -> str:
        if user_id in self._contact_ids:
            return "contact"
        if user_id in self._invited_ids:
            return "invited"
        return ""

    def _my_id(self) -> str | None:
        account = self.client.account
        return account.user.id if account is not None else None

    # --- actions -------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        tabs = ACTION_TABS.get(action)
        if tabs is None:
            return True
        try:
            return self.query_one(TabbedContent).active in tabs
        except NoMatches:  # asked before the tabs are mounted
            return False

    @on(TabbedContent.TabActivated)
    def _tab_changed(self) -> None:
        self.refresh_bindings()

    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        self.query_one(TAB_FOCUS[tab]).focus()

    def action_close(self) -> None:
        self.dismiss(None)

    @on(DataTable.RowSelected)
    def _row_chosen(self, event: DataTable.RowSelected) -> None:
        """Enter (or a click on the highlighted row) does the row's main action."""
        main = {
            "contacts-table": self.action_open_direct,
            "incoming-table": self.action_accept,
            "find-table": self.action_invite,
        }.get(event.data_table.id or "")
        if main is not None:
            main()

    def action_open_direct(self) -> None:
        user_id = self._selected("#contacts-table", "Choose a contact first.")
        if user_id is not None:
            self._open_direct(user_id)

    @work(group="action")
    async def _open_direct(self, user_id: str) -> None:
        try:
            summary = await self.client.open_direct(user_id)
        except ClientError as exc:
            self.notify(
                f"The chat cannot be opened: {error_text(exc)}", severity="error", markup=False
            )
            return
        self.dismiss(summary.room.id)

    def action_remove(self) -> None:
        user_id = self._selected("#contacts-table", "Choose a contact first.")
        if user_id is None:
            return
        name = self._name_in("#contacts-table", user_id, 1)
        if self._confirmed("remove", user_id, f"Press r again to remove {name} from contacts."):
            self._run(
                f"Removed {name}.",
                f"{name} is not removed",
                lambda: self.client.remove_contact(user_id),
            )

    def action_block(self) -> None:
        on_find = self.query_one(TabbedContent).active == "find"
        table = "#find-table" if on_find else "#contacts-table"
        user_id = self._selected(table, "Choose someone first.")
        if user_id is None:
            return
        name = self._name_in(table, user_id, 0 if on_find else 1)
        warning = f"Press b again to block {name}: it also ends the contact."
        if self._confirmed("block", user_id, warning):
            self._run(
                f"Blocked {name}.",
                f"{name} is not blocked",
                lambda: self.client.block(user_id),
                blocked=True,
            )

    def action_unblock(self) -> None:
        user_id = self._selected("#blocked-table", "Choose a blocked user first.")
        if user_id is not None:
            name = self._name_in("#blocked-table", user_id, 0)
            self._run(
                f"Unblocked {name}.",
                f"{name} is still blocked",
                lambda: self.client.unblock(user_id),
                blocked=True,
            )

    def action_accept(self) -> None:
        invitation_id = self._selected("#incoming-table", "Choose an incoming invitation first.")
        if invitation_id is not None:
            name = self._name_in("#incoming-table", invitation_id, 0)
            self._run(
                f"{name} is a contact now.",
                f"The invitation from {name} is not accepted",
                lambda: self.client.accept_invitation(invitation_id),
            )

    def action_decline(self) -> None:
        invitation_id = self._selected("#incoming-table", "Choose an incoming invitation first.")
        if invitation_id is not None:
            name = self._name_in("#incoming-table", invitation_id, 0)
            self._run(
                f"Declined the invitation from {name}.",
                f"The invitation from {name} is not declined",
                lambda: self.client.decline_invitation(invitation_id),
            )

    def action_cancel_invitation(self) -> None:
        invitation_id = self._selected("#outgoing-table", "Choose an outgoing invitation first.")
        if invitation_id is not None:
            name = self._name_in("#outgoing-table", invitation_id, 0)
            self._run(
                f"Cancelled the invitation to {name}.",
                f"The invitation to {name} is not cancelled",
                lambda: self.client.decline_invitation(invitation_id),
            )

    def action_invite(self) -> None:
        user_id = self._selected("#find-table", "Find someone first.")
        if user_id is not None:
            name = self._name_in("#find-table", user_id, 0)
            self._run(
                f"Invited {name}.", f"{name} is not invited", lambda: self.client.invite(user_id)
            )

    # --- helpers -------------------------------------------------------------------------------

    def _confirmed(self, action: str, target: str, warning: str) -> bool:
        """True when the same action on the same person was asked moments ago; else ask for
        the key again (a contact ended by a stray key is not easily undone)."""
        now = asyncio.get_running_loop().time()
        armed = self._armed
        if armed is not None and armed[:2] == (action, target) and now - armed[2] < CONFIRM_SECONDS:
            self._armed = None
            return True
        self._armed = (action, target, now)
        self.notify(warning, severity="warning", timeout=CONFIRM_SECONDS, markup=False)
        return False

    def _selected(self, table_id: str, missing: str) -> str | None:
        key = selected_key(self.query_one(table_id, DataTable))
        if key is None:
            self.notify(missing, severity="warning", markup=False)
        return key

    def _name_in(self, table_id: str, key: str, column: int) -> str:
        return str(self.query_one(table_id, DataTable).get_row(key)[column])

    @work(group="action")
    async def _run(
        self,
        done: str,
        failed: str,
        call: Callable[[], Awaitable[object]],
        *,
        blocked: bool = False,
    ) -> None:
        """Make one change on the server, say so, and read the lists again (the engine also
        publishes a `ContactChanged`; reading twice costs little and needs no event reader)."""
        try:
            await call()
        except ClientError as exc:
            self.notify(f"{failed}: {error_text(exc)}", severity="error", markup=False)
            return
        self.notify(done, markup=False)
        self.refresh_local()
        if blocked:
            self.refresh_blocked()


def _person_cells(user: User) -> tuple[Text, Text]:
    # Text, not str: a table reads a str as markup, and a name may hold brackets.
    return (Text(user.display_name), Text(user.username))


def _when(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts / 1000).strftime("%Y-%m-%d %H:%M")
