"""The login and registration screen, shown when the device has no logged-in account.

Log in with a username and a password; Register creates the account (with an optional
display name) and then logs in with it. Errors show under the form, in words (wrong
password, server unreachable); on success the app switches to the main screen.
"""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, Static

from chatcore.client.errors import ApiError, ClientError
from chatcore_tui.format import error_text


class LoginScreen(Screen[None]):
    """Username, password, optional display name; Log in or Register."""

    HELP_TITLE = "Login"

    DEFAULT_CSS = """
    LoginScreen { align: center middle; }
    LoginScreen > #login-form {
        width: 60;
        height: auto;
        padding: 1 2;
        border: thick $accent;
        background: $surface;
    }
    LoginScreen #login-title { text-style: bold; margin-bottom: 1; }
    LoginScreen #login-server { color: $text-muted; margin-bottom: 1; }
    LoginScreen Label { margin-top: 1; }
    LoginScreen #login-error { color: $text-error; margin-top: 1; height: auto; }
    LoginScreen #login-error.-progress { color: $text-muted; }
    LoginScreen #login-buttons { height: auto; margin-top: 1; }
    LoginScreen Button { margin-right: 1; }
    """

    BINDINGS = [
        Binding("ctrl+l", "log_in", "Log in", show=True),
        Binding("ctrl+n", "register", "Register", show=True),
    ]

    def __init__(self, client: Any) -> None:
        super().__init__()
        self.client = client
        self._busy = False
        self._username = Input(id="login-username")
        self._password = Input(password=True, id="login-password")
        self._display_name = Input(id="login-display-name")
        self._error_line = Static("", id="login-error")

    def compose(self) -> ComposeResult:
        with Vertical(id="login-form"):
            yield Static(Content("Log in to chat"), id="login-title")
            server = self.client.settings.client.server_url
            yield Static(Content(f"Server: {server}"), id="login-server")
            yield Label("Username")
            yield self._username
            yield Label("Password")
            yield self._password
            yield Label("Display name (when registering; optional)")
            yield self._display_name
            yield self._error_line
            with Horizontal(id="login-buttons"):
                yield Button("Log in", variant="primary", id="login-log-in")
                yield Button("Register", id="login-register")
        yield Footer()

    def on_mount(self) -> None:
        account = self.client.account
        if account is not None:  # logged out: the same person, most likely
            self._username.value = account.user.username
            self._password.focus()
        else:
            self._username.focus()

    @on(Button.Pressed, "#login-log-in")
    @on(Input.Submitted, "#login-username, #login-password")
    def action_log_in(self) -> None:
        self._start(register=False)

    @on(Button.Pressed, "#login-register")
    @on(Input.Submitted, "#login-display-name")
    def action_register(self) -> None:
        self._start(register=True)

    def _start(self, *, register: bool) -> None:
        username = self._username.value.strip()
        password = self._password.value
        display_name = self._display_name.value.strip() or None
        if not username or not password:
            self.show_error("Enter a username and a password.")
            return
        if self._busy:
            return
        self._busy = True
        self.show_error("Registering…" if register else "Logging in…", error=False)
        self.run_worker(self._enter(username, password, display_name, register), group="login")

    async def _enter(
        self, username: str, password: str, display_name: str | None, register: bool
    ) -> None:
        try:
            if register:
                await self.client.register(username, password, display_name)
            await self.client.login(username, password)
        except ApiError as exc:
            self.show_error(_login_error(exc, register))
            return
        except ClientError as exc:
            self.show_error(error_text(exc))
            return
        finally:
            self._busy = False
        self._username = Input(id="login-username")
        self._password = Input(password=True, id="login-password")
        self._display_name = Input(id="login-display-name")
        self._error_line = Static("", id="login-error")
        self._password.value = ""
        show_main = getattr(self.app, "show_main", None)
        if show_main is not None:  # from the app's own queue: this screen goes away
            self.app.call_later(show_main)

    def show_error(self, text: str, *, error: bool = True) -> None:
        self._error_line.update(Content(text))
        self._error_line.set_class(not error, "-progress")


def _login_error(exc: ApiError, register: bool) -> str:
    if exc.status == 401 or exc.code in ("unauthorized", "invalid_credentials"):
        return "Wrong username or password."
    if register and exc.code == "conflict":
        return "That username is taken: choose another, or log in."
    return exc.message or exc.code
