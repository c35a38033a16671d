"""Make the terminal client's screenshots in docs/images/ (SVG, saved by Textual).

    .venv/bin/python scripts/tui_screenshots.py [--out docs/images]

A real `chatcore serve` process in a temporary folder, three people who know each other
(Ann in the terminal client; Bob and Cy driven by the client engine), a direct room and a
group with some history (a reply, an edit, a deletion, a picture, a sticker pack on the
server), then each main screen of Ann's app, headless at 110 x 34. Run it again after changing
how a screen looks, and commit the SVGs.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from screenshot_world import FAST, build_world, sent
from textual.pilot import Pilot

from chatcore.client.app import Client
from chatcore.testing.server import ServerProcess, start_server
from chatcore_tui.app import ChatApp
from chatcore_tui.screens.main import MainScreen

SIZE = (110, 34)


async def until(pilot: Pilot[Any], condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            if condition():
                return
        except Exception:  # not mounted yet
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} after 15 s")
        await pilot.pause(0.05)


async def shoot(server: ServerProcess, folder: Path, out: Path) -> list[str]:
    world = await build_world(server, folder)
    direct, group = world.direct, world.group

    app = ChatApp(Client.for_server(server.base_url, folder / "ann", **FAST))
    bob = Client.for_server(server.base_url, folder / "bob", **FAST)
    await bob.start()
    made: list[str] = []

    def save(name: str) -> None:
        app.save_screenshot(f"tui-{name}.svg", str(out))
        made.append(f"tui-{name}.svg")

    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: isinstance(app.screen, MainScreen), "main screen")
        main = app.main
        assert main is not None
        await until(pilot, lambda: app.client.connection_state == "ready", "connection")
        main.open_room(direct)
        await until(pilot, lambda: main.dialog.room_id == direct, "the direct room")
        await until(pilot, lambda: len(main.dialog.rows) >= 5, "its messages")
        await pilot.press(*"See you at 9")
        await pilot.pause(0.3)
        save("main")

        await sent(bob, group, "Who brings the map?")
        await until(pilot, lambda: app.screen.query("Toast"), "the toast")
        await pilot.pause(0.3)
        save("notification")
        await pilot.press("ctrl+r")
        await until(pilot, lambda: type(app.screen).__name__ == "QuickReply", "quick reply")
        await pilot.press(*"I have one!")
        await pilot.pause(0.2)
        save("quick-reply")
        await pilot.press("escape")
        app.clear_notifications()

        for key, screen, name in (
            ("ctrl+t", "ContactsScreen", "contacts"),
            ("ctrl+f", "SearchScreen", "search"),
            ("ctrl+s", "SettingsScreen", "settings"),
            ("ctrl+g", "StickerPicker", "stickers"),
            ("f1", "HelpScreen", "help"),
        ):
            await until(pilot, lambda: isinstance(app.screen, MainScreen), "main screen")
            await pilot.press(key)
            await until(pilot, lambda s=screen: type(app.screen).__name__ == s, screen)
            if name == "search":
                await pilot.press(*"snacks")
            if name == "contacts":
                await pilot.press("2")  # the invitations
            await pilot.pause(0.6)
            save(name)
            await pilot.press("escape")
    await bob.close()

    login = ChatApp(Client.for_server(server.base_url, folder / "new", **FAST))
    async with login.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: type(login.screen).__name__ == "LoginScreen", "login")
        await pilot.pause(0.3)
        login.save_screenshot("tui-login.svg", str(out))
        made.append("tui-login.svg")
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with start_server(folder / "server") as server:
            made = asyncio.run(shoot(server, folder, args.out.resolve()))
    print("\n".join(str(args.out / name) for name in made))


if __name__ == "__main__":
    main()
