"""Benchmark the terminal client (`chatcore_tui`): how soon it is usable, how soon a message shows.

- start: a device store holding `--rooms` rooms of `--per-room` messages each (100,000 by
  default; every fourth room with its newest `--unread` unread), logged in to a real
  `chatcore serve` process. From `ChatApp` starting (Textual's
  headless driver, `run_test`) to *interactive*: the room list holds every room, the most
  active room's newest page is in the dialog and the composer has the focus. Target: 300 ms.
  Also the imports a `chatcore client` process pays before that (a fresh interpreter).
- message on screen: another user sends `--messages` messages (one every `--interval`
  seconds) into the open room; from the engine announcing each (`MessageReceived`, read by a
  subscriber of `client.events()` beside the app's) to its row in the dialog. Target: 50 ms.
- room list: the same for a message into another room: its row moved to the top.

Prints a markdown table. Not a test: the numbers depend on the machine.

    .venv/bin/python bench/tui_bench.py [--rooms 200] [--per-room 500] [--messages 50]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from chatcore.client.app import Client
from chatcore.client.events import MessageReceived
from chatcore.client.models import Message, Room
from chatcore.testing.server import ServerProcess, start_server
from chatcore.testing.users import PASSWORD, TestUser, register_and_login
from chatcore_tui.app import ChatApp
from chatcore_tui.screens.main import MainScreen

WORDS = "lunch meeting report photo weekend train coffee deadline party review".split()
NO_FLOOD_CONTROL = {"rate_per_second": 100_000, "rate_burst": 100_000}
#: How often a measurement looks at the screen (seconds).
POLL = 0.001


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def seeded_messages(room: Room, count: int, me: str, peer: str) -> list[Message]:
    base = 1_700_000_000_000
    return [
        Message.trusted(
            {
                "room_id": room.id,
                "sender_id": me if seq % 3 == 0 else peer,
                "ref": f"seed-{room.id}-{seq}",
                "kind": "text",
                "body": f"{WORDS[seq % 10]} and {WORDS[seq * 7 % 10]}, message {seq}",
                "media_id": None,
                "sticker_id": None,
                "reply_to": None,
                "ts": base + seq * 60_000,
                "id": f"m-{room.id}-{seq}",
                "seq": seq,
                "edited_ts": None,
                "deleted": False,
            }
        )
        for seq in range(1, count + 1)
    ]


def server_side(server: ServerProcess, rooms: int) -> tuple[TestUser, TestUser]:
    """Two users, and `rooms` groups of both on the server (blocking: run in a thread)."""
    with httpx.Client(base_url=server.api, timeout=30) as http:
        me, peer = register_and_login(http, prefix="me"), register_and_login(http, prefix="peer")
        for n in range(rooms):
            body = {"kind": "group", "name": f"room {n:03}", "member_ids": [peer.id]}
            reply = http.post("/rooms", json=body, headers=me.headers)
            assert reply.status_code == 201, reply.text
    return me, peer


async def seed(
    server: ServerProcess, folder: Path, rooms: int, per_room: int, unread: int
) -> TestUser:
    """Two users with `rooms` groups on the server; the first one's device store holding
    `per_room` messages in each, every fourth room with its newest `unread` unread. Returns
    the second user (who sends later)."""
    me, peer = await asyncio.to_thread(server_side, server, rooms)
    client = Client.for_server(server.base_url, folder)
    await client.start(connect=False)
    try:
        await client.login(me.username, PASSWORD)
        server_rooms = await client.api.rooms()
        await client.store.save_rooms(server_rooms)
        for n, room in enumerate(server_rooms):
            await client.store.add_messages(seeded_messages(room, per_room, me.id, peer.id), me.id)
            # Read as a person leaves them: a few rooms with some unread, most read.
            await client.store.set_read(room.id, per_room - unread * (n % 4 == 0))
    finally:
        await client.close()
    return peer


async def wait_for(condition: Callable[[], bool], what: str, limit: float = 30.0) -> float:
    """Poll `condition` every POLL seconds; the perf_counter when it first held."""
    deadline = time.perf_counter() + limit
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"not {what} after {limit} s")
        await asyncio.sleep(POLL)
    return time.perf_counter()


def interactive(app: ChatApp, rooms: int) -> bool:
    """The room list holds every room, the dialog a page of the open room, and the composer
    has the focus: the user can read and type."""
    main = app.main
    if not isinstance(app.screen, MainScreen) or main is None:
        return False
    dialog = main.dialog
    return (
        len(main.room_list.ordered()) >= rooms
        and dialog.room_id is not None
        and len(dialog.rows) > 0
        and main.composer.has_focus
    )


async def start_once(server_url: str, folder: Path, rooms: int) -> float:
    """One start of the app on the device in `folder`: milliseconds to interactive."""
    app = ChatApp(Client.for_server(server_url, folder))
    started = time.perf_counter()
    async with app.run_test(size=(120, 40)):
        ready = await wait_for(lambda: interactive(app, rooms), "interactive")
    return (ready - started) * 1000


async def measure(server: ServerProcess, folder: Path, args: argparse.Namespace) -> list[str]:
    peer = await seed(server, folder, args.rooms, args.per_room, args.unread)
    starts = [await start_once(server.base_url, folder, args.rooms) for _ in range(args.starts)]
    client = Client.for_server(server.base_url, folder)
    app = ChatApp(client)
    arrived: dict[str, float] = {}

    async def watch() -> None:
        async for event in client.events():
            if isinstance(event, MessageReceived) and event.live:
                arrived[event.message.body] = time.perf_counter()

    async def latency(shown: float, body: str) -> float:
        """From the engine's announcement to the screen (0 when the screen was first)."""
        await wait_for(lambda: body in arrived, "announced")
        return max(0.0, shown - arrived[body]) * 1000

    watcher = asyncio.create_task(watch())
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(lambda: interactive(app, args.rooms), "interactive")
        main = app.main
        assert main is not None
        await pilot.pause()

        # A room of its own for the live messages: the seeded ones hold seqs the server's
        # rooms have not reached.
        async with httpx.AsyncClient(base_url=server.api, timeout=30) as http:
            me_id = client.user.id
            reply = await http.post(
                "/rooms",
                json={"kind": "group", "name": "live", "member_ids": [me_id]},
                headers=peer.headers,
            )
            live = reply.json()["id"]
            other = await http.post(
                "/rooms",
                json={"kind": "group", "name": "elsewhere", "member_ids": [me_id]},
                headers=peer.headers,
            )
            elsewhere = other.json()["id"]
            await wait_for(lambda: main.room_list.row(live) is not None, "live room listed")
            await wait_for(lambda: main.room_list.row(elsewhere) is not None, "room listed")
            main.open_room(live)
            await wait_for(lambda: main.dialog.room_id == live, "live room open")

            on_screen: list[float] = []
            for n in range(args.messages):
                body = f"live message {n}"
                await http.post(
                    f"/rooms/{live}/messages",
                    json={"ref": f"live-{n}", "body": body},
                    headers=peer.headers,
                )
                shown = await wait_for(
                    lambda body=body: any(r.message.body == body for r in main.dialog.rows[-3:]),
                    "shown",
                )
                on_screen.append(await latency(shown, body))
                await asyncio.sleep(args.interval)

            moved: list[float] = []
            for n in range(args.messages // 2):
                body = f"elsewhere {n}"
                # Another room first, so that each message moves "elsewhere" to the top.
                await http.post(
                    f"/rooms/{live}/messages",
                    json={"ref": f"between-{n}", "body": f"between {n}"},
                    headers=peer.headers,
                )
                await wait_for(lambda: main.room_list.ordered()[0].room_id == live, "live on top")
                await http.post(
                    f"/rooms/{elsewhere}/messages",
                    json={"ref": f"else-{n}", "body": body},
                    headers=peer.headers,
                )
                top = await wait_for(
                    lambda: main.room_list.ordered()[0].room_id == elsewhere, "moved to the top"
                )
                moved.append(await latency(top, body))
                await asyncio.sleep(args.interval)
    watcher.cancel()
    return [
        row(f"start to interactive ({args.starts} starts)", starts, "300 ms"),
        row("message on screen (open room)", on_screen, "50 ms"),
        row("message in another room: row on top", moved, "50 ms"),
    ]


def row(name: str, values: list[float], target: str) -> str:
    return (
        f"| {name} | {statistics.median(values):.1f} ms | {pct(values, 99):.1f} ms "
        f"| {max(values):.1f} ms | {target} |"
    )


def import_seconds() -> float:
    """A fresh interpreter importing what `chatcore client` loads before the app starts."""
    code = "import chatcore.client.app, chatcore_tui.app, chatcore_device_sqlite.store"
    runs = []
    for _ in range(3):
        begun = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        runs.append(time.perf_counter() - begun)
    return min(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rooms", type=int, default=200)
    parser.add_argument("--per-room", type=int, default=500)
    parser.add_argument(
        "--unread", type=int, default=20, help="unread messages in every fourth room"
    )
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--interval", type=float, default=0.05)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with start_server(folder / "server", {"websocket": NO_FLOOD_CONTROL}) as server:
            rows = asyncio.run(measure(server, folder / "device", args))
        # The same device with its server gone: what the app costs alone (its connection
        # attempts are refused at once), without a server process sharing the cores.
        offline = [
            asyncio.run(start_once(server.base_url, folder / "device", args.rooms))
            for _ in range(args.starts)
        ]
        rows.insert(1, row(f"start, server down ({args.starts} starts)", offline, "300 ms"))
    total = args.rooms * args.per_room
    print(f"\n{args.rooms} rooms, {total:,} stored messages; one run, Textual headless\n")
    print("| scenario | p50 | p99 | max | target |")
    print("|---|---|---|---|---|")
    for line in rows:
        print(line)
    print(
        f"| imports of a fresh `chatcore client` process | {import_seconds() * 1000:.0f} ms | | | |"
    )


if __name__ == "__main__":
    main()
