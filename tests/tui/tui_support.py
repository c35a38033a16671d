"""What the terminal client's tests share: a started `ChatApp` under Textual's `run_test`.

    async with chat_app(server.base_url, tmp_path / "ann") as (app, pilot):
        await wait_until(pilot, lambda: main_screen(app) is not None, "the main screen")
        ...

The app is the real one (`chatcore_tui.app.ChatApp`) on a real `chatcore.Client` talking to a
real `chatcore serve` process; the test drives it with Textual's `Pilot` and reads what the
widgets show. Nothing sleeps and hopes: `wait_until` polls a condition between frames and
fails with what the screen showed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from engine_support import FAST, WAIT
from textual.content import Content
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Input, Static, TextArea
from textual.widgets._toast import Toast

from chatcore.client.app import Client
from chatcore.testing.users import PASSWORD, unique_username
from chatcore_tui.app import ChatApp
from chatcore_tui.screens.main import MainScreen

#: The terminal every test runs in.
SIZE = (120, 40)


@contextlib.asynccontextmanager
async def chat_app(
    server_url: str, folder: Path, **settings: Any
) -> AsyncIterator[tuple[ChatApp, Pilot[None]]]:
    """A `ChatApp` on a client of `server_url` keeping its device store in `folder`, running
    headless; closed (with its client) at the end. No event may have failed to show."""
    client = Client.for_server(server_url, folder, **{**FAST, **settings})
    app = ChatApp(client)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        yield app, pilot
    assert app.event_errors == [], app.event_errors


async def signed_up_device(server_url: str, folder: Path, username: str | None = None) -> str:
    """Register a user and log this device folder in as them (no connection); the user's id.
    A `chat_app` on the same folder then starts logged in."""
    client = Client.for_server(server_url, folder, **FAST)
    await client.start(connect=False)
    try:
        username = username or unique_username("tui")
        await client.register(username, PASSWORD)
        return (await client.login(username, PASSWORD)).id
    finally:
        await client.close()


async def wait_until(
    pilot: Pilot[Any],
    condition: Callable[[], object],
    what: str,
    timeout: float = WAIT,  # noqa: ASYNC109 (each wait states its bound where it waits)
) -> None:
    """Let the app run until `condition()` holds; fail after `timeout` seconds saying what was
    awaited and what the screen showed."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except Exception:  # a widget not mounted yet: not there yet
            pass
        if time.monotonic() > deadline:
            raise AssertionError(
                f"waited {timeout}s for {what}; the screen showed:\n{screen_text(pilot.app)}"
            )
        await pilot.pause(0.02)


async def poll(condition: Callable[[], Awaitable[object]], what: str) -> None:
    """Wait until the async `condition()` is true: a state outside the screen (the server's,
    another device's) that no event announces, looked at every 20 ms until WAIT is up."""
    try:
        async with asyncio.timeout(WAIT):
            while not await condition():  # noqa: ASYNC110 (no event to wait on)
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"not true after {WAIT}s: {what}") from None


def main_screen(app: ChatApp) -> MainScreen:
    """The main screen (under whatever is pushed on it); fails when it is not shown."""
    assert app.main is not None and app.main.is_attached, "the main screen is not shown"
    return app.main


def text_of(widget: Widget) -> str:
    """What a widget shows, as plain text."""
    if isinstance(widget, Toast):
        return widget.render().plain
    if isinstance(widget, TextArea):
        return widget.text
    if isinstance(widget, Input):
        return widget.value
    if isinstance(widget, Static):
        content = widget.content
        if isinstance(content, Content):
            return content.plain
        if isinstance(content, str):
            return Content.from_markup(content).plain
        return str(content)
    return ""


def screen_text(app: Any) -> str:
    """Every visible text widget of the current screen, one per line (for failure messages)."""
    lines = []
    for widget in app.screen.query("*"):
        if widget.display and widget.visible:
            text = text_of(widget).strip()
            if text:
                lines.append(f"  {type(widget).__name__}: {text}")
    main = getattr(app, "main", None)
    if main is not None and main.is_attached:
        lines[:0] = [f"  room: {' / '.join(text.splitlines())}" for text in room_texts(app)]
        lines += [f"  message: {text}" for text in dialog_texts(app)[-20:]]
    return "\n".join(lines[-60:])


def dialog_texts(app: ChatApp) -> list[str]:
    """The open dialog's rows, top to bottom."""
    return [row.shown for row in main_screen(app).dialog.rows]


def room_texts(app: ChatApp) -> list[str]:
    """The room list's entries, top to bottom (name line, then preview line)."""
    return [entry.text for entry in main_screen(app).room_list.ordered()]


async def click_room(pilot: Pilot[Any], app: ChatApp, room_id: str) -> None:
    """Click a room of the room list with the mouse."""
    room_list = main_screen(app).room_list
    offset = room_list.offset_of(room_id)
    assert offset is not None, f"room {room_id} is not on screen: {room_texts(app)}"
    assert await pilot.click(room_list, offset=(offset.x, offset.y))


def toasts(app: Any) -> list[str]:
    """The toasts on the screen now, each "title\nmessage"."""
    return [text_of(toast) for toast in app.screen.query(Toast)]


async def type_text(pilot: Pilot[Any], text: str) -> None:
    """Type `text` key by key into whatever has focus."""
    await pilot.press(*[_key(ch) for ch in text])


def _key(ch: str) -> str:
    names = {" ": "space", "?": "question_mark", "!": "exclamation_mark", ".": "full_stop"}
    return names.get(ch, ch)
