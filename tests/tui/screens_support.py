"""What the TUI screens' tests share: a minimal host app for one screen, waits on widgets.

    async with hosted(client, ContactsScreen(client)) as (app, pilot):
        await until(pilot, lambda: rows(table) != [], lambda: f"table: {rows(table)}")

The host app pushes the screen under test over a started, real `chatcore.Client`, forwards the
client's events to its `on_client_event` (as the real app's single event reader does), and
records what the screen was dismissed with. Waits poll a condition between frames with a
deadline, and fail saying what the screen showed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from engine_support import FAST, WAIT
from textual.app import App
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import DataTable, OptionList, Static

from chatcore.client.app import Client
from chatcore.client.events import ClientEvent
from chatcore.testing.server import ServerProcess
from chatcore.testing.users import PASSWORD, unique_username

SIZE = (120, 40)


class Host(App[None]):
    """One screen over a client; `results` holds what the screen was dismissed with."""

    def __init__(self, client: Client, screen: Screen[Any]) -> None:
        super().__init__()
        self.client = client
        self.under_test = screen
        self.results: list[Any] = []
        self._reader: asyncio.Task[None] | None = None

    async def on_mount(self) -> None:
        self._reader = asyncio.create_task(self._forward(self.client.events()))
        await self.push_screen(self.under_test, self.results.append)

    async def _forward(self, events: AsyncIterator[ClientEvent]) -> None:
        async for event in events:
            handler = getattr(self.under_test, "on_client_event", None)
            if handler is not None and self.under_test.is_attached:
                handler(event)

    async def stop_reading(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


@contextlib.asynccontextmanager
async def hosted(client: Client, screen: Screen[Any]) -> AsyncIterator[tuple[Host, Pilot[None]]]:
    app = Host(client, screen)
    async with app.run_test(size=SIZE) as pilot:
        try:
            await until(pilot, lambda: app.screen is screen, lambda: f"screen {app.screen!r}")
            yield app, pilot
        finally:
            await app.stop_reading()


async def until(
    pilot: Pilot[Any],
    condition: Callable[[], bool],
    shown: Callable[[], object],
    timeout: float = WAIT,  # noqa: ASYNC109 (each wait states its bound where it waits)
) -> None:
    """Return once `condition()` holds; fail after `timeout` seconds with what `shown()` says
    the screen showed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"not shown after {timeout}s; the screen showed: {shown()}")
        await pilot.pause(0.02)


async def until_text(
    pilot: Pilot[Any],
    static: Static,
    wanted: str,
    timeout: float = WAIT,  # noqa: ASYNC109
) -> None:
    """Wait until `static` shows `wanted` (a part of its text)."""
    await until(pilot, lambda: wanted in text(static), lambda: f"{text(static)!r}", timeout)


async def until_rows(
    pilot: Pilot[Any],
    table: DataTable[Any],
    condition: Callable[[list[list[str]]], bool],
    timeout: float = WAIT,  # noqa: ASYNC109
) -> None:
    """Wait until the table's rows (cells as text) satisfy `condition`."""
    await until(
        pilot, lambda: condition(rows(table)), lambda: f"#{table.id}: {rows(table)}", timeout
    )


def rows(table: DataTable[Any]) -> list[list[str]]:
    """A table's cells as text, row by row."""
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def options(option_list: OptionList) -> list[str]:
    """An option list's lines as text (separators left out)."""
    return [str(option.prompt) for option in option_list.options]


def text(static: Static) -> str:
    return str(static.content)


async def person(server: ServerProcess | str, folder: Path, display_name: str) -> Client:
    """A started, connected client of a new user with `display_name`, of `server` (or of the
    server at that URL: a proxy in front of it)."""
    url = server if isinstance(server, str) else server.base_url
    client = Client.for_server(url, folder, **FAST)
    await client.start()
    try:
        username = unique_username("tui")
        await client.register(username, PASSWORD, display_name)
        await client.login(username, PASSWORD)
        async with asyncio.timeout(WAIT):
            await client.wait_for_state("ready")
    except BaseException:
        await client.close()
        raise
    return client


async def befriend(one: Client, other: Client) -> None:
    """Make `one` and `other` contacts (an invitation accepted), and wait until both devices
    hold the contact."""
    invitation = await one.invite(other.user.id)
    await other.accept_invitation(invitation.id)
    async with asyncio.timeout(WAIT):
        # Polled: the contact event reaches `one`'s device store by itself.
        while other.user.id not in {c.user.id for c in await one.contacts()}:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
