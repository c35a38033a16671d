"""Pushes to offline members: what they cost the senders, and how fast they arrive.

    .venv/bin/python bench/push_bench.py [--members 20] [--messages 1000] [--window 4]
        [--rate 100] [--concurrency 32] [--push-node redis://127.0.0.1:6379]
        [--storage postgresql+asyncpg://postgres@127.0.0.1:5432/test] [--quick]

Starts real servers (default plugins; SQLite on a file unless `--storage` names a database
URL, then a fresh schema of it, dropped afterwards) on free loopback ports: one without a push
adapter, one with webhook pushes to a receiver on loopback (a process of its own, on asyncio,
so that it measures chatcore rather than itself). A sender keeps `window` sends in flight
(closed loop) into a group room whose other members are offline, each with one webhook device,
so every message makes one push per member. Scenarios, each on fresh users:

- pushes off, then on, with 1 offline member: sends/s and the chat node's CPU per message;
- `--members` offline members (that many pushes per message): pushes/s, one node to one
  receiver, saturated (from the first send to the last arrival);
- 1 offline member at a fixed `--rate` (messages/s = pushes/s): ack -> push latency (from the
  send's ack at the sender to the push's arrival at the receiver, the same clock).

Prints markdown tables. With `--push-node`, a second process on the same storage sends the
pushes and the chat node only routes and queues them (`[push] send = false`, woken over
Redis); CPU is then given per process. `measure()` is what `make bench` (bench/harness.py)
calls.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from ack_latency import sender

from chatcore.testing.server import ServerProcess, start_server
from chatcore.testing.users import TestUser, new_user

SECRET = "bench-secret"
SENDS = {"secret": SECRET, "allow_private_endpoints": True}  # [push_webhook] of the senders
UNPACED = {"websocket": {"rate_per_second": 1e6, "rate_burst": 1e6}}


class Receiver:
    """A webhook receiver in a process of its own (so that neither the sender's loop nor the
    server shares its interpreter lock): records when each push arrived (wall clock) and
    answers `GET /arrivals?since=N` with the arrivals from the N-th on."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve-receiver"], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())
        self.http = httpx.Client(timeout=30)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def count(self) -> int:
        return int(self.http.get(self.url("/count")).json())

    def arrivals(self, since: int) -> list[tuple[str, float]]:
        return [tuple(a) for a in self.http.get(self.url(f"/arrivals?since={since}")).json()]

    def close(self) -> None:
        self.http.close()
        self.process.terminate()
        self.process.wait()


def serve_receiver() -> None:
    """The receiver process: HTTP/1.1 keep-alive on asyncio streams, enough of it for webhook
    POSTs (a thread per request, as `http.server` does, would measure the receiver)."""
    arrivals: list[tuple[str, float]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                lines = head.decode("latin-1").split("\r\n")
                headers = {
                    k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if lines[0].startswith("GET"):
                    path = lines[0].split()[1]
                    if path.startswith("/count"):
                        data = orjson.dumps(len(arrivals))
                    else:
                        data = orjson.dumps(arrivals[int(path.rpartition("=")[2]) :])
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(data))
                    writer.write(data)
                else:
                    arrivals.append((orjson.loads(body)["message_id"], time.time()))
                    writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=4096)
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

    asyncio.run(main())


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid`, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def setup(api: str, receiver: Receiver, members: int) -> tuple[TestUser, str]:
    """A sender, and a group room of offline members with one webhook device each."""
    alice, others = new_user(api), [new_user(api) for _ in range(members)]
    with httpx.Client(base_url=api, timeout=30) as http:
        group = {"kind": "group", "name": "bench", "member_ids": [m.id for m in others]}
        room = http.post("/rooms", json=group, headers=alice.headers).json()["id"]
        for i, member in enumerate(others):
            device = {"platform": "webhook", "endpoint": receiver.url(f"/m{i}")}
            reply = http.post("/push/devices", json=device, headers=member.headers)
            assert reply.status_code == 201, reply.text
    return alice, str(room)


@dataclass
class Nodes:
    """The chat node the sender talks to, and the push node when there is one."""

    chat: ServerProcess
    push: ServerProcess | None = None

    def cpu(self) -> tuple[float, float]:
        assert self.chat.process is not None
        pushing = 0.0
        if self.push is not None:
            assert self.push.process is not None
            pushing = cpu_seconds(self.push.process.pid)
        return cpu_seconds(self.chat.process.pid), pushing


@asynccontextmanager
async def storage_of(url: str | None, folder: Path) -> AsyncIterator[dict[str, Any]]:
    """`[storage]`: SQLite on a file in `folder`, or a fresh schema of the database at `url`
    (PostgreSQL), dropped afterwards."""
    if url is None or url.startswith("sqlite"):
        yield {"url": url or f"sqlite+aiosqlite:///{folder / 'chat.db'}"}
        return
    schema = f"bench_push_{uuid.uuid4().hex[:10]}"
    try:
        yield {"url": url, "schema": schema}
    finally:
        conn = await asyncpg.connect(url.replace("+asyncpg", ""))
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


@contextmanager
def nodes(
    folder: Path, storage: dict[str, Any], *, push: bool, concurrency: int, push_node: str | None
) -> Iterator[Nodes]:
    """A chat node, with webhook pushes or without; with `push_node` (a Redis URL) the pushes
    are sent by a second node on the same storage, woken over that Redis (docs/deploy.md)."""
    overrides: dict[str, Any] = UNPACED | {"storage": storage, "logging": {"level": "WARNING"}}
    with ExitStack() as stack:
        if not push:
            yield Nodes(stack.enter_context(start_server(folder / "chat-off", overrides)))
            return
        overrides |= {"push_webhook": SENDS, "push": {"concurrency": concurrency}}
        pusher = None
        if push_node:
            broker = {"url": push_node, "channel_prefix": f"bench{os.getpid()}:"}
            overrides |= {"broker": broker}
            pusher = stack.enter_context(start_server(folder / "push-node", overrides))
            overrides |= {"push": {"concurrency": concurrency, "send": False}}
        chat = stack.enter_context(start_server(folder / "chat-node", overrides))
        yield Nodes(chat, pusher)


async def scenario(
    servers: Nodes, receiver: Receiver, *, members: int, messages: int, window: int,
    rate: float = 0.0,
) -> dict[str, float]:  # fmt: skip
    """Send `messages` into a room of `members` offline members (0: pushes off, nobody
    there), at most `rate` a second (0: as fast as acks come); wait for every push."""
    alice, room = await asyncio.to_thread(setup, servers.chat.api, receiver, members)
    before = await asyncio.to_thread(receiver.count)
    expected = messages * members
    cpu_before, started = servers.cpu(), time.perf_counter()
    acked: dict[str, float] = {}
    interval = 1 / rate if rate else 0.0
    latencies = await sender(
        servers.chat.ws_url, alice.access_token, room, messages, window,
        acked=acked, interval=interval,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    deadline = time.monotonic() + 300
    while await asyncio.to_thread(receiver.count) - before < expected:
        assert time.monotonic() < deadline, "not every push arrived within 300 s"
        await asyncio.sleep(0.05)
    cpu_after = servers.cpu()
    arrivals = await asyncio.to_thread(receiver.arrivals, before)
    to_wall = time.time() - time.perf_counter()  # the receiver stamps wall-clock time
    result = {
        "sends_per_s": messages / elapsed,
        "ack_p50_ms": statistics.median(latencies) * 1000,
        "ack_p99_ms": percentile(latencies, 99) * 1000,
        "chat_cpu_ms": (cpu_after[0] - cpu_before[0]) / messages * 1000,
        "push_cpu_ms": (cpu_after[1] - cpu_before[1]) / messages * 1000,
    }
    if expected:
        delays = [(t - to_wall - acked[message_id]) * 1000 for message_id, t in arrivals]
        drained = max(t for _, t in arrivals) - (to_wall + started)
        result |= {
            "push_p50_ms": statistics.median(delays),
            "push_p99_ms": percentile(delays, 99),
            "pushes_per_s": expected / drained,
        }
    return result


@dataclass
class Sizes:
    messages: int = 1000  # per saturated scenario
    members: int = 20  # offline members of the pushes/s scenario
    paced: int = 500  # messages of the latency scenario
    rate: float = 100.0  # its pushes per second
    window: int = 4
    concurrency: int = 32

    @classmethod
    def quick(cls) -> Sizes:
        return cls(messages=200, members=10, paced=150)


async def run_all(
    sizes: Sizes, *, storage_url: str | None = None, push_node: str | None = None
) -> dict[str, dict[str, float]]:
    """Every scenario of the module docstring; their figures by name."""
    results: dict[str, dict[str, float]] = {}
    receiver = Receiver()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            async with storage_of(storage_url, folder / "off") as storage:
                (folder / "off").mkdir()
                with nodes(folder / "off", storage, push=False, concurrency=0, push_node=None) as s:
                    say("pushes off ...")
                    results["off"] = await scenario(
                        s, receiver, members=0, messages=sizes.messages, window=sizes.window
                    )
            async with storage_of(storage_url, folder / "on") as storage:
                (folder / "on").mkdir()
                with nodes(
                    folder / "on", storage, push=True, concurrency=sizes.concurrency,
                    push_node=push_node,
                ) as s:  # fmt: skip
                    say("pushes on, 1 offline member ...")
                    results["on"] = await scenario(
                        s, receiver, members=1, messages=sizes.messages, window=sizes.window
                    )
                    say(f"pushes on, {sizes.members} offline members ...")
                    results["many"] = await scenario(
                        s, receiver, members=sizes.members,
                        messages=max(1, sizes.messages // sizes.members * 4),
                        window=sizes.window,
                    )  # fmt: skip
                    say(f"pushes on, 1 offline member, {sizes.rate:g} messages/s ...")
                    results["paced"] = await scenario(
                        s, receiver, members=1, messages=sizes.paced, window=sizes.window,
                        rate=sizes.rate,
                    )  # fmt: skip
    finally:
        receiver.close()
    return results


def measure(quick: bool = False) -> dict[str, float]:
    """The push figures of `make bench` (bench/harness.py), on SQLite, the chat node sending:
    `sends_off` and `sends_on` (sends/s, pushes off and on, one offline member per message),
    `pushes_per_s` (one node to one webhook receiver, saturated), `ack_push_p50_ms` and
    `ack_push_p99_ms` (ack -> push arrival at 100 pushes/s). Starts and stops its own servers
    and receiver; progress goes to stderr, nothing to stdout."""
    results = asyncio.run(run_all(Sizes.quick() if quick else Sizes()))
    return {
        "sends_off": results["off"]["sends_per_s"],
        "sends_on": results["on"]["sends_per_s"],
        "pushes_per_s": results["many"]["pushes_per_s"],
        "ack_push_p50_ms": results["paced"]["push_p50_ms"],
        "ack_push_p99_ms": results["paced"]["push_p99_ms"],
    }


def print_tables(results: dict[str, dict[str, float]], sizes: Sizes, args: Any) -> None:
    where = "a push node sends" if args.push_node else "the chat node sends"
    storage = args.storage.split("+")[0] if args.storage else "sqlite"
    print(
        f"\nwebhook pushes to a receiver on loopback, {storage}, {where}, window {sizes.window}\n"
    )
    print("| scenario | messages | sends/s | ack p50 ms | ack p99 ms | CPU ms/msg chat node "
          "| CPU ms/msg push node | pushes/s | ack → push p50 ms | p99 ms |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    names = {
        "off": ("pushes off", sizes.messages),
        "on": ("pushes on, 1 offline member", sizes.messages),
        "many": (
            f"pushes on, {sizes.members} offline members",
            max(1, sizes.messages // sizes.members * 4),
        ),
        "paced": (f"pushes on, 1 offline member, {sizes.rate:g} msg/s", sizes.paced),
    }
    for key, (name, count) in names.items():
        r = results[key]
        pushing = f"{r['push_cpu_ms']:.2f}" if args.push_node else "-"
        pushes = (
            f"{r['pushes_per_s']:,.0f} | {r['push_p50_ms']:.1f} | {r['push_p99_ms']:.1f}"
            if "pushes_per_s" in r
            else "- | - | -"
        )
        print(
            f"| {name} | {count} | {r['sends_per_s']:,.0f} | {r['ack_p50_ms']:.2f} | "
            f"{r['ack_p99_ms']:.2f} | {r['chat_cpu_ms']:.2f} | {pushing} | {pushes} |"
        )
    ratio = results["on"]["sends_per_s"] / results["off"]["sends_per_s"]
    print(f"\nsends/s pushes on / off: {ratio:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=Sizes.members)
    parser.add_argument("--messages", type=int, default=Sizes.messages)
    parser.add_argument("--window", type=int, default=Sizes.window)
    parser.add_argument("--rate", type=float, default=Sizes.rate, help="paced messages/s")
    parser.add_argument("--paced", type=int, default=Sizes.paced, help="paced messages")
    parser.add_argument("--concurrency", type=int, default=Sizes.concurrency)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a few seconds")
    parser.add_argument(
        "--push-node",
        metavar="REDIS_URL",
        help="send pushes from a second process (a push node) woken over this Redis",
    )
    parser.add_argument(
        "--storage", metavar="URL", help="a database URL (PostgreSQL) instead of SQLite"
    )
    parser.add_argument("--serve-receiver", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_receiver:
        serve_receiver()
        return
    sizes = Sizes.quick() if args.quick else Sizes(
        messages=args.messages, members=args.members, paced=args.paced, rate=args.rate,
        window=args.window, concurrency=args.concurrency,
    )  # fmt: skip
    results = asyncio.run(run_all(sizes, storage_url=args.storage, push_node=args.push_node))
    print_tables(results, sizes, args)


if __name__ == "__main__":
    main()
