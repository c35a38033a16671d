"""The settings screen: profile, theme and push notifications.

- *Profile*: display name and avatar (a path to an image file), saved with `client.set_profile`.
- *Appearance*: the theme, applied at once and kept in this device's preferences
  (`client.set_preferences`): it works offline.
- *Notifications*: the user's push settings on the server (`client.account_settings()["push"]`,
  docs/push.md "What each user decides"): pushes on or off, the level of direct and group rooms,
  a level per room ("mute a room"), previews, do not disturb. Saved with
  `client.update_account_settings({"push": ...})`; what the server refuses (a 400 names the
  key) is shown and nothing is saved.

Server-side changes need the server: offline, they fail with a clear message and the form keeps
what was typed. Ctrl+S saves what changed; Escape goes back.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, Select, Static, Switch

from chatcore.client.errors import ClientError
from chatcore.client.models import RoomSummary
from chatcore_tui.format import error_text
from chatcore_tui.screens.search import room_label

if TYPE_CHECKING:
    from chatcore.client.app import Client

#: A push level (docs/push.md): every message, only mentions, none.
LEVELS = (("all messages", "all"), ("mentions only", "mentions"), ("none", "none"))
#: A room's level may also be its kind's (the key is then removed from `push.rooms`).
ROOM_DEFAULT = "default"
ROOM_LEVELS = (("as its kind (direct/group)", ROOM_DEFAULT), *LEVELS)
#: What the server checks (chatcore.server.push.rules): a 24-hour clock time.
CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class SettingsError(ValueError):
    """What the form itself refuses before asking the server."""


def push_form_patch(
    *,
    enabled: bool,
    direct: str,
    group: str,
    preview: bool,
    dnd_on: bool,
    dnd_start: str,
    dnd_end: str,
    dnd_timezone: str,
    room_levels: dict[str, str | None],
) -> dict[str, Any]:
    """The `push` merge patch the form's values make; `SettingsError` for a bad clock time.

    `room_levels` maps a room id to its new level, None to go back to the kind's level (a
    null in a merge patch removes the key)."""
    patch: dict[str, Any] = {
        "enabled": enabled,
        "direct": direct,
        "group": group,
        "preview": preview,
        "dnd": None,
    }
    if dnd_on:
        for name, value in (("start", dnd_start), ("end", dnd_end)):
            if not CLOCK.match(value.strip()):
                raise SettingsError(
                    f"Do not disturb: the {name} must be a time as HH:MM (00:00 to 23:59), "
                    f"not {value.strip() or 'nothing'!r}."
                )
        patch["dnd"] = {
            "start": dnd_start.strip(),
            "end": dnd_end.strip(),
            "timezone": dnd_timezone.strip() or "UTC",
        }
    if room_levels:
        patch["rooms"] = dict(room_levels)
    return patch


class SettingsScreen(Screen[None]):
    """Profile, theme and push settings (see the module's docstring)."""

    DEFAULT_CSS = """
    SettingsScreen VerticalScroll { padding: 0 2; }
    SettingsScreen .section { text-style: bold; margin-top: 1; color: $accent; }
    SettingsScreen .row { height: auto; }
    SettingsScreen .row > Label { width: 26; padding-top: 1; }
    SettingsScreen .row > Input { width: 1fr; }
    SettingsScreen .row > Select { width: 1fr; }
    SettingsScreen .status { height: auto; margin: 0 0 1 0; }
    SettingsScreen .status.-error { color: $error; }
    SettingsScreen .status.-ok { color: $success; }
    SettingsScreen #dnd-start, SettingsScreen #dnd-end { width: 12; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Back"),
        Binding("ctrl+s", "save", "Save changes"),
    ]

    def __init__(self, client: Client) -> None:
        super().__init__()
        self.client = client
        #: The `push` object as the server last answered it.
        self._saved_push: dict[str, Any] = {}
        #: Room levels changed in the form and not saved yet (None: the kind's level).
        self._room_levels: dict[str, str | None] = {}
        self._profile_name = ""
        #: Whether the form shows the server's push settings: saving before would overwrite
        #: them with the form's defaults.
        self._push_loaded = False

    # --- layout ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Label("Profile", classes="section")
            with Horizontal(classes="row"):
                yield Label("Display name")
                yield Input(id="display-name", placeholder="Your name as others see it")
            with Horizontal(classes="row"):
                yield Label("Avatar (image file path)")
                yield Input(id="avatar-path", placeholder="~/Pictures/me.png")
            yield Button("Save profile", id="save-profile", action="screen.save_profile")
            yield Static("", id="profile-status", markup=False, classes="status")

            yield Label("Appearance", classes="section")
            with Horizontal(classes="row"):
                yield Label("Theme")
                yield Select(
                    ((name, name) for name in sorted(self.app.available_themes)),
                    value=self.app.theme,
                    allow_blank=False,
                    id="theme",
                )

            yield Label("Notifications", classes="section")
            with Horizontal(classes="row"):
                yield Label("Pushes")
                yield Switch(True, id="push-enabled")
            with Horizontal(classes="row"):
                yield Label("Direct rooms")
                yield Select(LEVELS, value="all", allow_blank=False, id="push-direct")
            with Horizontal(classes="row"):
                yield Label("Group rooms")
                yield Select(LEVELS, value="all", allow_blank=False, id="push-group")
            with Horizontal(classes="row"):
                yield Label("Message previews")
                yield Switch(True, id="push-preview")
            with Horizontal(classes="row"):
                yield Label("One room")
                yield Select[str]((), prompt="Choose a room", id="room-choice")
            with Horizontal(classes="row"):
                yield Label("That room's level")
                yield Select(ROOM_LEVELS, value=ROOM_DEFAULT, allow_blank=False, id="room-level")
            with Horizontal(classes="row"):
                yield Label("Do not disturb")
                yield Switch(False, id="dnd-on")
            with Horizontal(classes="row"):
                yield Label("From / to (HH:MM)")
                yield Input(placeholder="22:00", id="dnd-start")
                yield Input(placeholder="07:30", id="dnd-end")
            with Horizontal(classes="row"):
                yield Label("Time zone")
                yield Input(placeholder="UTC, or e.g. Europe/Berlin", id="dnd-timezone")
            yield Button("Save notifications", id="save-push", action="screen.save_push")
            yield Static("Reading the settings…", id="push-status", markup=False, classes="status")
        yield Footer()

    def on_mount(self) -> None:
        account = self.client.account
        if account is not None:
            self._profile_name = account.user.display_name
            self.query_one("#display-name", Input).value = self._profile_name
        self.query_one("#display-name", Input).focus()
        self._load_rooms()
        self._load_push()

    @work(group="rooms")
    async def _load_rooms(self) -> None:
        """The rooms to choose from, from the device store, named as the room list names them."""
        summaries = await self.client.rooms()
        me = self.client.account.user.id if self.client.account is not None else None
        self._show_rooms(summaries, {}, me)
        direct_members = {m for s in summaries if not s.room.name for m in s.room.member_ids}
        if not direct_members:
            return
        # Then the direct rooms by the other person's name (the server may be asked: slower).
        try:
            users = await self.client.users(direct_members)
        except ClientError:
            return  # the ids stay shown
        names = {user_id: user.display_name for user_id, user in users.items()}
        self._show_rooms(summaries, names, me)

    def _show_rooms(
        self, summaries: list[RoomSummary], names: dict[str, str], me: str | None
    ) -> None:
        choice = self.query_one("#room-choice", Select)
        chosen = choice.value
        choice.set_options((Text(room_label(s.room, names, me)), s.room.id) for s in summaries)
        if isinstance(chosen, str) and any(s.room.id == chosen for s in summaries):
            choice.value = chosen  # set_options cleared it

    @work(group="push", exclusive=True)
    async def _load_push(self) -> None:
        try:
            settings = await self.client.account_settings()
        except ClientError as exc:
            self._status(
                "#push-status",
                f"The notification settings cannot be read: {error_text(exc)}",
                False,
            )
            return
        self._show_push(settings.get("push") or {})
        self._push_loaded = True
        self._status("#push-status", "", None)

    def _show_push(self, push: dict[str, Any]) -> None:
        self._saved_push = push
        self.query_one("#push-enabled", Switch).value = bool(push.get("enabled", True))
        self.query_one("#push-direct", Select).value = push.get("direct", "all")
        self.query_one("#push-group", Select).value = push.get("group", "all")
        self.query_one("#push-preview", Switch).value = bool(push.get("preview", True))
        dnd = push.get("dnd")
        self.query_one("#dnd-on", Switch).value = dnd is not None
        if dnd is not None:
            self.query_one("#dnd-start", Input).value = str(dnd.get("start", ""))
            self.query_one("#dnd-end", Input).value = str(dnd.get("end", ""))
            self.query_one("#dnd-timezone", Input).value = str(dnd.get("timezone", ""))
        self._show_room_level()

    # --- theme: local, applied at once -------------------------------------------------------

    @on(Select.Changed, "#theme")
    def _theme_chosen(self, event: Select.Changed) -> None:
        name = event.value
        if not isinstance(name, str) or name == self.app.theme:
            return
        self.app.theme = name
        self._keep_theme(name)

    @work(group="theme", exclusive=True)
    async def _keep_theme(self, name: str) -> None:
        try:
            await self.client.set_preferences({"theme": name})
        except ClientError as exc:
            self.notify(
                f"The theme is not kept for next time: {error_text(exc)}",
                severity="error",
                markup=False,
            )

    # --- one room's level --------------------------------------------------------------------

    @on(Select.Changed, "#room-choice")
    def _room_chosen(self) -> None:
        self._show_room_level()

    def _show_room_level(self) -> None:
        room_id = self._chosen_room()
        if room_id is None:
            return
        level = self._room_levels.get(room_id, self._saved_rooms().get(room_id))
        self.query_one("#room-level", Select).value = level or ROOM_DEFAULT

    @on(Select.Changed, "#room-level")
    def _room_level_changed(self, event: Select.Changed) -> None:
        room_id = self._chosen_room()
        if room_id is None:
            return
        level = None if event.value == ROOM_DEFAULT else str(event.value)
        if level == self._saved_rooms().get(room_id):
            self._room_levels.pop(room_id, None)  # back to what the server has
        else:
            self._room_levels[room_id] = level

    def _chosen_room(self) -> str | None:
        value = self.query_one("#room-choice", Select).value
        return value if isinstance(value, str) else None

    def _saved_rooms(self) -> dict[str, str]:
        rooms = self._saved_push.get("rooms")
        return rooms if isinstance(rooms, dict) else {}

    # --- saving ------------------------------------------------------------------------------

    def action_save(self) -> None:
        """Save what changed: the profile when its fields changed, the push settings always
        (a merge patch of the same values changes nothing)."""
        if self._profile_changed():
            self.action_save_profile()
        self.action_save_push()

    def _profile_changed(self) -> bool:
        name = self.query_one("#display-name", Input).value.strip()
        avatar = self.query_one("#avatar-path", Input).value.strip()
        return bool(avatar) or name != self._profile_name

    def action_save_profile(self) -> None:
        name = self.query_one("#display-name", Input).value.strip()
        avatar = self.query_one("#avatar-path", Input).value.strip()
        if not name:
            self._status("#profile-status", "The display name cannot be empty.", False)
            return
        self._save_profile(name, Path(avatar).expanduser() if avatar else None)

    @work(group="profile", exclusive=True)
    async def _save_profile(self, name: str, avatar_path: Path | None) -> None:
        if avatar_path is not None and not await asyncio.to_thread(avatar_path.is_file):
            self._status("#profile-status", f"There is no file at {avatar_path}.", False)
            return
        self._status("#profile-status", "Saving…", None)
        try:
            user = await self.client.set_profile(
                display_name=name if name != self._profile_name else None,
                avatar=str(avatar_path) if avatar_path is not None else None,
            )
        except (ClientError, OSError) as exc:
            self._status("#profile-status", f"The profile was not saved: {error_text(exc)}", False)
            return
        self._profile_name = user.display_name
        self.query_one("#avatar-path", Input).value = ""
        self._status("#profile-status", "Profile saved.", True)

    def action_save_push(self) -> None:
        if not self._push_loaded:
            self._status(
                "#push-status",
                "The notification settings were not read from the server yet: nothing saved. "
                "Reading them again…",
                False,
            )
            self._load_push()
            return
        try:
            patch = push_form_patch(
                enabled=self.query_one("#push-enabled", Switch).value,
                direct=str(self.query_one("#push-direct", Select).value),
                group=str(self.query_one("#push-group", Select).value),
                preview=self.query_one("#push-preview", Switch).value,
                dnd_on=self.query_one("#dnd-on", Switch).value,
                dnd_start=self.query_one("#dnd-start", Input).value,
                dnd_end=self.query_one("#dnd-end", Input).value,
                dnd_timezone=self.query_one("#dnd-timezone", Input).value,
                room_levels=self._room_levels,
            )
        except SettingsError as exc:
            self._status("#push-status", str(exc), False)
            return
        self._save_push(patch)

    @work(group="push", exclusive=True)
    async def _save_push(self, patch: dict[str, Any]) -> None:
        self._status("#push-status", "Saving…", None)
        try:
            settings = await self.client.update_account_settings({"push": patch})
        except ClientError as exc:
            self._status("#push-status", f"Not saved: {error_text(exc)}", False)
            return
        self._room_levels.clear()
        self._show_push(settings.get("push") or {})
        self._status("#push-status", "Notification settings saved.", True)

    # --- helpers -------------------------------------------------------------------------------

    def _status(self, selector: str, text: str, ok: bool | None) -> None:
        """Say how a save went under its section; an error is also a notification."""
        status = self.query_one(selector, Static)
        status.update(text)
        status.set_class(ok is False, "-error")
        status.set_class(ok is True, "-ok")
        if ok is False:
            self.notify(text, severity="error", markup=False)

    def action_close(self) -> None:
        self.dismiss(None)
