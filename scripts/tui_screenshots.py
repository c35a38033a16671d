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
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image
from textual.pilot import Pilot

from chatcore.client.app import Client
from chatcore.testing.server import ServerProcess, start_server
from chatcore.testing.users import PASSWORD
from chatcore_tui.app import ChatApp
from chatcore_tui.screens.main import MainScreen

SIZE = (110, 34)
FAST = {"reconnect_min_seconds": 0.05, "reconnect_max_seconds": 0.5}


async def person(server: ServerProcess, folder: Path, username: str, name: str) -> Client:
    client = Client.for_server(server.base_url, folder, **FAST)
    await client.start()
    await client.register(username, PASSWORD, name)
    await client.login(username, PASSWORD)
    async with asyncio.timeout(10):
        await client.wait_for_state("ready")
    return client


async def befriend(one: Client, other: Client) -> None:
    invitation = await one.invite(other.user.id)
    await other.accept_invitation(invitation.id)


async def sent(client: Client, room_id: str, body: str, reply_to: str | None = None) -> str:
    entry = await client.send(room_id, body, reply_to=reply_to)
    return (await client.wait_sent(entry.ref)).id


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


def import_stickers(server: ServerProcess, folder: Path) -> None:
    pack = folder / "Happy Cats"
    pack.mkdir()
    for n, colour in enumerate(("orange", "gray", "black")):
        Image.new("RGB", (64, 64), colour).save(pack / f"{n}.png")
    (pack / "pack.json").write_text(
        '{"name": "Happy Cats", "stickers": [{"file": "0.png", "emoji": "😺"},'
        ' {"file": "1.png", "emoji": "😸"}, {"file": "2.png", "emoji": "😼"}]}'
    )
    command = [sys.executable, "-m", "chatcore", "stickers", "import", str(pack)]
    subprocess.run([*command, "--config", str(server.config_path)], check=True, cwd=server.folder)


async def shoot(server: ServerProcess, folder: Path, out: Path) -> list[str]:
    await asyncio.to_thread(import_stickers, server, folder)
    ann = await person(server, folder / "ann", "ann", "Ann Archer")
    bob = await person(server, folder / "bob", "bob", "Bob Baker")
    cy = await person(server, folder / "cy", "cyril", "Cyril Cole")
    dee = await person(server, folder / "dee", "dee", "Dee Dale")
    await befriend(ann, bob)
    await befriend(ann, cy)
    await dee.invite(ann.user.id)  # waiting for Ann in the contacts screen
    direct = (await bob.open_direct(ann.user.id)).room.id
    group = (await ann.create_group("Weekend trip", [bob.user.id, cy.user.id])).room.id
    first = await sent(bob, direct, "Morning! Did you get the tickets?")
    await sent(ann, direct, "Yes, two for Saturday.", reply_to=first)
    typo = await sent(bob, direct, "Grate, I'll bring the snacks")
    await bob.edit(direct, typo, "Great, I'll bring the snacks")
    oops = await sent(bob, direct, "wrong chat, sorry")
    await bob.delete(direct, oops)
    picture = folder / "view.png"
    Image.new("RGB", (320, 200), "skyblue").save(picture)
    await bob.wait_sent((await bob.send_file(direct, picture)).ref)
    await sent(cy, group, "Train at 9:10 from platform 4")
    await sent(bob, group, "I'll book a table for lunch")
    for client in (ann, bob, cy, dee):
        await client.close()

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
