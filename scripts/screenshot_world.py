"""The little world both clients' screenshots show (scripts/tui_screenshots.py and
scripts/webapp_screenshots.py): a real server with a sticker pack, Ann who knows Bob and Cyril
(Dee's invitation waiting for her), a direct room with some history (a reply, an edit, a
deletion, a picture) and a group. Everyone but Ann is driven by the client engine."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from chatcore.client.app import Client
from chatcore.testing.server import ServerProcess
from chatcore.testing.users import PASSWORD

FAST = {"reconnect_min_seconds": 0.05, "reconnect_max_seconds": 0.5}


@dataclass
class World:
    direct: str  # Ann and Bob's room
    group: str  # "Weekend trip": Ann, Bob and Cyril


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


async def build_world(server: ServerProcess, folder: Path) -> World:
    """Make it; device stores in `folder`/<name> (Ann's is `folder`/ann)."""
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
    return World(direct, group)
