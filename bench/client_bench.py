"""Benchmark the client engine (`chatcore.Client`) on what a chat app waits for.

Every scenario runs a real `chatcore.Client` (device store and media cache on files) against
one real `chatcore serve` process on loopback, flood control off; users and rooms are made
over REST, and the messages a scenario needs on the server are sent beforehand, pipelined on
one raw WebSocket session (that time is not counted).

1. catch-up: Bob's device was in a direct room, then closed; Ann sends `--messages` into the
   room. Timed: a new Client on Bob's device store, from `start()` until the connection is
   `ready` and the room's cursor shows every message stored (target: 1 s for 10,000).
2. newest page: a room of `--big-room` messages in the device store (filled with the store's
   own `add_messages`); `client.history(room, limit=50)` read `--reads` times, p50 and p99
   (target: under 5 ms).
3. outbox flush: Ann queues `--outbox` sends offline, closes, starts again: timed from the
   connection attempt (`ConnectionChanged(connecting)`) to the last `OutboxChanged(sent)`,
   once per `--windows` send window (target: 2,000 messages/s).
4. idle client: Bob in `--rooms` group rooms of `--per-room` messages each, connected, `ready`,
   idle: the resident memory of the process holding only that client (bench/client_idle.py),
   and of a bare `import chatcore.client.app` for reference (target: under 40 MB).

Prints a markdown table. Not a test: the numbers depend on the machine and its load.

    .venv/bin/python bench/client_bench.py [--quick] [--messages 10000] [--windows 32,64,256]
    .venv/bin/python bench/client_bench.py --profile catch-up.prof   # cProfile of (1)

`--profile` records the catch-up of (1) in the client's process (its event loop's thread, where
the engine runs; the server is another process) and prints the top of it to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import dataclasses
import json
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
from device_store_bench import ME, messages, percentile, room
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect

from chatcore.client.app import Client
from chatcore.client.events import ClientEvent, ConnectionChanged, OutboxChanged
from chatcore.testing.server import ServerProcess, start_server
from chatcore.testing.users import TestUser, new_user

BENCH = Path(__file__).resolve().parent
#: The flood control out of the way: one session sends thousands of frames a second.
SERVER_OVERRIDES = {"websocket": {"rate_per_second": 100_000, "rate_burst": 100_000}}
#: The bound on any one step (a setup, a timed run): a stuck bench fails instead of hanging.
STEP_SECONDS = 90.0
WORDS = "lunch meeting report photo weekend train coffee deadline party review".split()
#: What the bare reference process runs: the import alone, then its resident set.
BARE_IMPORT = (
    "import chatcore.client.app, json\n"
    "status = dict(line.split(':', 1) for line in open('/proc/self/status'))\n"
    "print(json.dumps({k: int(status[k].split()[0]) for k in ('VmRSS', 'RssAnon')}))"
)


@dataclass
class Sizes:
    messages: int = 10_000
    big_room: int = 100_000
    reads: int = 200
    outbox: int = 1_000
    windows: tuple[int, ...] = (32, 64, 256)
    rooms: int = 200
    per_room: int = 3
    idle: float = 1.0


QUICK = Sizes(messages=300, big_room=2_000, reads=20, outbox=100, rooms=10, per_room=2, idle=0.2)


@dataclass
class Row:
    """A line of the table; `met` is None where the run's size is not the target's."""

    scenario: str
    figure: str
    detail: str
    target: str
    met: bool | None = None

    def markdown(self) -> str:
        met = "" if self.met is None else ("yes" if self.met else "no")
        return f"| {self.scenario} | {self.figure} | {self.detail} | {self.target} | {met} |"


def body(n: int) -> str:
    """A chat-sized text (about 40 bytes)."""
    return f"{WORDS[n % 10]} and {WORDS[n * 7 % 10]}, message number {n}"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds >= 0.1 else f"{seconds * 1000:.1f} ms"


# --- people, rooms and messages on the server (setup, not timed) ---------------------------------


async def people(server: ServerProcess, count: int) -> list[TestUser]:
    """`count` fresh users, registered and logged in over REST."""
    return [await asyncio.to_thread(new_user, server.api) for _ in range(count)]


async def create_rooms(
    server: ServerProcess, owner: TestUser, requests: Sequence[dict[str, Any]]
) -> list[str]:
    """`POST /rooms` for each request body, as `owner`; the new rooms' ids."""
    ids = []
    async with httpx.AsyncClient(base_url=server.api, headers=owner.headers, timeout=30) as http:
        for request in requests:
            reply = await http.post("/rooms", json=request)
            if reply.status_code != 201:
                raise RuntimeError(f"room not created: {reply.status_code} {reply.text}")
            ids.append(str(reply.json()["id"]))
    return ids


async def direct_room(server: ServerProcess, owner: TestUser, other: TestUser) -> str:
    [room_id] = await create_rooms(server, owner, [{"kind": "direct", "user_id": other.id}])
    return room_id


async def send_pipelined(server: ServerProcess, sender: TestUser, sends: Sequence[str]) -> None:
    """Send a text into each room of `sends` (room ids, in order) on one WebSocket session,
    every frame written without waiting for an ack; return once all are acked."""
    prefix = uuid.uuid4().hex[:8]  # refs unique across calls (the server stores a ref once)
    async with ws_connect(server.ws_url, max_size=None) as ws:
        await ws.send(orjson.dumps({"type": "auth", "token": sender.access_token}).decode())
        first = orjson.loads(await ws.recv())
        if first.get("type") != "ready":
            raise RuntimeError(f"the server refused the session: {first}")
        # Acks are read while frames are written: a session that does not read its acks
        # fills the server's send buffer, and the server closes it.
        acks = asyncio.create_task(count_acks(ws, len(sends)))
        for n, room_id in enumerate(sends):
            frame = {"type": "send", "ref": f"{prefix}-{n}", "room_id": room_id, "body": body(n)}
            await ws.send(orjson.dumps(frame).decode())
        await acks


async def count_acks(ws: ClientConnection, expected: int) -> None:
    acked = 0
    while acked < expected:
        frame = orjson.loads(await ws.recv())
        if frame.get("type") == "ack":
            acked += 1
        elif frame.get("type") == "error":
            raise RuntimeError(f"a send was refused: {frame}")


# --- 1. catch-up -----------------------------------------------------------------------------


@contextlib.contextmanager
def profiled(path: Path | None) -> Iterator[None]:
    """Profile this thread (the event loop's: the engine runs there) into `path`."""
    if path is None:
        yield
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        profiler.dump_stats(path)
        stats = pstats.Stats(str(path), stream=sys.stderr).strip_dirs()
        stats.sort_stats("cumulative").print_stats(30)
        stats.sort_stats("tottime").print_stats(25)


async def catch_up(server: ServerProcess, folder: Path, total: int, profile: Path | None) -> Row:
    ann, bob = await people(server, 2)
    room_id = await direct_room(server, ann, bob)
    bob_dir = folder / "catch-up-bob"
    # Bob's device has been in the room: logged in, caught up, closed.
    client = Client.for_server(server.base_url, bob_dir)
    try:
        await client.start()
        await client.login(bob.username, bob.password)
        await client.wait_for_state("ready")
    finally:
        await client.close()
    await send_pipelined(server, ann, [room_id] * total)

    client = Client.for_server(server.base_url, bob_dir)
    try:
        cpu0, t0 = time.process_time(), time.perf_counter()
        with profiled(profile):
            await client.start()
            await client.wait_for_state("ready")
            cursor = (await client.store.cursors()).get(room_id)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        stored = len(await client.history(room_id, limit=total + 1))
    finally:
        await client.close()
    if cursor != total or stored != total:
        raise RuntimeError(f"caught up to {cursor}, {stored} stored, of {total}")
    return Row(
        f"1 catch-up of {total:,} missed messages",
        ms(elapsed),
        f"{total / elapsed:,.0f} messages/s; start() to `ready`, all stored; client CPU {ms(cpu)}",
        "≤ 1 s for 10,000",
        elapsed <= 1.0 if total == 10_000 else None,
    )


# --- 2. newest page --------------------------------------------------------------------------


async def newest_page(server: ServerProcess, folder: Path, total: int, reads: int) -> Row:
    client = Client.for_server(server.base_url, folder / "big-room")
    try:
        await client.start(connect=False)
        store = client.store
        await store.save_rooms([room("big")])
        for first in range(1, total + 1, 1000):
            await store.add_messages(messages("big", first, min(1000, total + 1 - first)), ME)
        latencies = []
        for _ in range(reads):
            t0 = time.perf_counter()
            page = await client.history("big", limit=50)
            latencies.append(time.perf_counter() - t0)
            if len(page) != 50 or page[0].seq != total:
                raise RuntimeError("history did not return the newest page")
    finally:
        await client.close()
    p50, p99 = statistics.median(latencies), percentile(latencies, 99)
    return Row(
        f"2 newest page of a room of {total:,} (history, limit 50)",
        f"p50 {p50 * 1000:.2f} ms",
        f"p99 {p99 * 1000:.2f} ms over {reads} reads, through the Client",
        "< 5 ms",
        p99 < 0.005 if total == 100_000 else None,
    )


# --- 3. outbox flush -------------------------------------------------------------------------


@dataclass
class Flush:
    window: int
    count: int
    connecting: float  # seconds after start() the connection attempt began
    catching_up: float  # ... the WebSocket was up and authenticated
    last_sent: float  # ... the last entry was announced sent

    @property
    def rate(self) -> float:
        return self.count / (self.last_sent - self.connecting)


async def watch_flush(
    events: AsyncIterator[ClientEvent], t0: float, count: int, window: int
) -> Flush | None:
    """Read events until `count` entries are sent; when each step happened (after `t0`)."""
    marks: dict[str, float] = {}
    sent = 0
    async for event in events:
        if isinstance(event, ConnectionChanged):
            marks.setdefault(event.state, time.perf_counter() - t0)
        elif isinstance(event, OutboxChanged):
            if event.entry.state == "failed":
                raise RuntimeError(f"a send failed: {event.entry.error_message}")
            sent += event.entry.state == "sent"
            if sent == count:
                last = time.perf_counter() - t0
                return Flush(window, count, marks["connecting"], marks["catching_up"], last)
    return None


async def outbox_flush(server: ServerProcess, folder: Path, count: int, window: int) -> Flush:
    ann, bob = await people(server, 2)  # fresh: no earlier run's messages to catch up
    room_id = await direct_room(server, ann, bob)
    ann_dir = folder / f"outbox-{window}"
    client = Client.for_server(server.base_url, ann_dir, send_window=window)
    try:
        await client.start(connect=False)  # offline: the sends stay in the outbox
        await client.login(ann.username, ann.password)
        for n in range(count):
            await client.send(room_id, body(n))
    finally:
        await client.close()

    # The app starts again with a full outbox: its connection comes up and sends it.
    client = Client.for_server(server.base_url, ann_dir, send_window=window)
    events = client.events()  # subscribed before the start: every event is seen
    t0 = time.perf_counter()
    watcher = asyncio.create_task(watch_flush(events, t0, count, window))
    try:
        await client.start()
        flush = await watcher
    finally:
        watcher.cancel()
        await client.close()
    if flush is None:
        raise RuntimeError("the client closed before its outbox was sent")
    return flush


def flush_rows(flushes: list[Flush]) -> list[Row]:
    best = max(flushes, key=lambda f: f.rate)
    return [
        Row(
            f"3 outbox of {f.count:,} flushed, send_window {f.window}",
            f"{f.rate:,.0f} messages/s",
            f"{ms(f.last_sent - f.connecting)} from the connection attempt to the last sent "
            f"(WebSocket up after {ms(f.catching_up - f.connecting)})"
            + ("; best of the windows tried" if f is best and len(flushes) > 1 else ""),
            "≥ 2,000 messages/s for 1,000",
            f.rate >= 2000 if f.count == 1000 else None,
        )
        for f in flushes
    ]


# --- 4. an idle client in many rooms ---------------------------------------------------------


async def run_json(args: Sequence[str], stdin: str = "") -> dict[str, Any]:
    """Run a Python process, return the JSON object of its last line of output."""
    process = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await process.communicate(stdin.encode())
    except asyncio.CancelledError:
        process.kill()
        await process.wait()
        raise
    if process.returncode != 0:
        raise RuntimeError(f"{args[1]} failed ({process.returncode}):\n{err.decode()}")
    return dict(json.loads(out.decode().splitlines()[-1]))


async def idle_rooms(
    server: ServerProcess, folder: Path, rooms: int, per_room: int, idle: float
) -> list[Row]:
    ann, bob = await people(server, 2)
    groups = [{"kind": "group", "name": f"room {n}", "member_ids": [bob.id]} for n in range(rooms)]
    room_ids = await create_rooms(server, ann, groups)
    await send_pipelined(server, ann, [r for r in room_ids for _ in range(per_room)])
    command = [sys.executable, str(BENCH / "client_idle.py"), "--server", server.base_url]
    command += ["--data-dir", str(folder / "idle-bob"), "--username", bob.username]
    command += ["--rooms", str(rooms), "--idle", str(idle)]
    measured = await run_json(command, stdin=bob.password + "\n")
    bare = await run_json([sys.executable, "-c", BARE_IMPORT])
    idle_mb = measured["idle_kb"] / 1024
    return [
        Row(
            f"4 idle client in {rooms} rooms, `ready`",
            f"{idle_mb:.1f} MB RSS",
            f"private {measured['idle_anon_kb'] / 1024:.1f} MB; after imports "
            f"{measured['imported_kb'] / 1024:.1f} MB, after start() "
            f"{measured['started_kb'] / 1024:.1f} MB; {rooms * per_room:,} messages; "
            f"ready {measured['ready_ms']:,.0f} ms after login",
            "< 40 MB for 200 rooms",
            idle_mb < 40 if rooms == 200 else None,
        ),
        Row(
            "4 reference: `python -c 'import chatcore.client.app'`",
            f"{bare['VmRSS'] / 1024:.1f} MB RSS",
            f"private {bare['RssAnon'] / 1024:.1f} MB; the interpreter and the client's "
            "imports, nothing started",
            "",
        ),
    ]


# --- the run -----------------------------------------------------------------------------------


async def run_all(
    server: ServerProcess, folder: Path, sizes: Sizes, profile: Path | None
) -> list[Row]:
    rows = []
    async with asyncio.timeout(STEP_SECONDS):
        rows.append(await catch_up(server, folder, sizes.messages, profile))
    async with asyncio.timeout(STEP_SECONDS):
        rows.append(await newest_page(server, folder, sizes.big_room, sizes.reads))
    flushes = []
    for window in sizes.windows:
        async with asyncio.timeout(STEP_SECONDS):
            flushes.append(await outbox_flush(server, folder, sizes.outbox, window))
    rows += flush_rows(flushes)
    async with asyncio.timeout(STEP_SECONDS):
        rows += await idle_rooms(server, folder, sizes.rooms, sizes.per_room, sizes.idle)
    return rows


def parse_sizes(args: argparse.Namespace) -> Sizes:
    sizes = dataclasses.replace(QUICK) if args.quick else Sizes()
    for name in ("messages", "big_room", "reads", "outbox", "rooms", "per_room"):
        value = getattr(args, name)
        if value is not None:
            setattr(sizes, name, value)
    if args.windows:
        sizes.windows = tuple(int(w) for w in args.windows.split(","))
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks that it runs")
    for name in ("messages", "big-room", "reads", "outbox", "rooms", "per-room"):
        parser.add_argument(f"--{name}", type=int)
    parser.add_argument("--windows", help="send windows to try, comma-separated (32,64,256)")
    parser.add_argument("--profile", type=Path, help="cProfile the catch-up into this file")
    args = parser.parse_args()
    sizes = parse_sizes(args)

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with start_server(folder / "server", SERVER_OVERRIDES) as server:
            rows = asyncio.run(run_all(server, folder, sizes, args.profile))
    print("| scenario | figure | detail | target | met |")
    print("|---|---:|---|---|---|")
    print("\n".join(row.markdown() for row in rows))
    print(f"\nwhole run: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
