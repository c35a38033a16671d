"""Durable sends over WebSocket: ack latency, throughput and server CPU with group commit.

    .venv/bin/python bench/ack_latency.py [--senders 20] [--window 4] [--messages 4000]
        [--storage sqlite|postgres|both] [--storage-off] [--rate MSG_PER_S]

Starts a real server (default plugins, durable acks) on free loopback ports, puts every sender
in one group room, and has each keep `window` sends in flight (a closed loop); with `--rate`
the sends are also paced to that many messages per second in all. Prints a markdown table:
messages/s, ack latency percentiles (send -> ack), and the server's CPU per message (user +
system time of the server process, every thread, from /proc), a figure that depends far less
on what else the machine runs than the times do.

`--storage` picks SQLite on a file (WAL, synchronous=NORMAL) and/or PostgreSQL (a fresh schema
of `CHATCORE_TEST_POSTGRES_URL`, dropped afterwards); `--storage-off` runs each also with
bench/volatile_storage.py (messages kept in memory: what `make bench` calls storage off), so
the rows show what durable storage costs a send. The senders are Python clients in this
process: at saturation they may be the bottleneck (see the CPU column, and `make bench` for the
Node load generator).
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import volatile_storage
from sqlalchemy.engine import make_url
from websockets.asyncio.client import connect

from chatcore.testing.server import ServerProcess, start_server
from chatcore.testing.services import postgres_url
from chatcore.testing.users import TestUser, new_user


async def sender(
    ws_url: str,
    token: str,
    room: str,
    count: int,
    window: int,
    acked: dict[str, float] | None = None,
    interval: float = 0.0,
) -> list[float]:
    """Send `count` messages, `window` in flight, at most one per `interval` seconds; the ack
    latencies. `acked`, when given, gets the time of each ack by message id."""
    latencies: list[float] = []
    sent_at: dict[str, float] = {}
    async with connect(ws_url, max_size=None) as ws:
        await ws.send(orjson.dumps({"type": "auth", "token": token}).decode())
        assert orjson.loads(await ws.recv())["type"] == "ready"
        next_id = 0
        inflight = 0
        started = time.perf_counter()
        while len(latencies) < count:
            while inflight < window and next_id < count:
                due = started + next_id * interval
                if interval and time.perf_counter() < due:
                    break
                ref = f"r{next_id}"
                next_id += 1
                sent_at[ref] = time.perf_counter()
                frame = {"type": "send", "ref": ref, "room_id": room, "body": "x" * 64}
                await ws.send(orjson.dumps(frame).decode())
                inflight += 1
            if interval and inflight == 0:
                await asyncio.sleep(max(0.0, started + next_id * interval - time.perf_counter()))
                continue
            timeout = None
            if interval and inflight < window and next_id < count:
                timeout = max(0.0, started + next_id * interval - time.perf_counter())
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout)
            except TimeoutError:
                continue  # time for the next paced send
            event = orjson.loads(raw)
            if event["type"] == "ack":
                now = time.perf_counter()
                latencies.append(now - sent_at.pop(event["ref"]))
                if acked is not None:
                    acked[event["message"]["id"]] = now
                inflight -= 1
            elif event["type"] == "error":
                raise RuntimeError(event)
    return latencies


def group_room(api: str, senders: int) -> tuple[list[TestUser], str]:
    users = [new_user(api) for _ in range(senders)]
    reply = httpx.post(
        f"{api}/rooms",
        json={"kind": "group", "name": "bench", "member_ids": [u.id for u in users[1:]]},
        headers=users[0].headers,
    )
    return users, str(reply.json()["id"])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid`, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@asynccontextmanager
async def postgres_schema() -> AsyncIterator[dict[str, Any]]:
    """`[storage]` on a fresh schema of the test database, dropped afterwards."""
    url, schema = postgres_url(), f"bench_ack_{uuid.uuid4().hex[:10]}"
    try:
        yield {"url": url, "schema": schema}
    finally:
        conn = await asyncpg.connect(
            make_url(url).set(drivername="postgresql").render_as_string(False)
        )
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


async def measure(server: ServerProcess, args: argparse.Namespace) -> tuple[str, ...]:
    users, room = await asyncio.to_thread(group_room, server.api, args.senders)
    each = args.messages // args.senders
    interval = args.senders / args.rate if args.rate else 0.0
    assert server.process is not None
    pid = server.process.pid
    cpu_started, started = cpu_seconds(pid), time.perf_counter()
    results = await asyncio.gather(
        *(
            sender(server.ws_url, u.access_token, room, each, args.window, interval=interval)
            for u in users
        )
    )
    elapsed, cpu = time.perf_counter() - started, cpu_seconds(pid) - cpu_started
    latencies = sorted(x * 1000 for r in results for x in r)
    q = statistics.quantiles(latencies, n=100)
    return (
        f"{len(latencies) / elapsed:,.0f}",
        f"{q[49]:.1f}",
        f"{q[98]:.1f}",
        f"{cpu / len(latencies) * 1e6:.0f}",
    )


async def run_one(args: argparse.Namespace, storage: dict[str, Any], off: bool) -> tuple[str, ...]:
    """One server (storage as given, or storage off), measured."""
    overrides: dict[str, Any] = {
        "websocket": {"rate_per_second": 1e6, "rate_burst": 1e6},
        "logging": {"level": "WARNING"},
        **({"storage": storage} if storage else {}),
    }
    env = volatile_storage.load_in(overrides) if off else {}
    with (
        tempfile.TemporaryDirectory() as folder,
        start_server(Path(folder), overrides, env) as server,
    ):
        return await measure(server, args)


async def run(args: argparse.Namespace) -> None:
    backends = ["sqlite", "postgres"] if args.storage == "both" else [args.storage]
    rows = []
    for backend in backends:
        for off in (False, True) if args.storage_off else (False,):
            if backend == "postgres":
                async with postgres_schema() as storage:
                    figures = await run_one(args, storage, off)
            else:
                figures = await run_one(args, {}, off)
            rows.append(
                f"| {backend}{' storage off' if off else ''} | {args.senders} | {args.window} "
                f"| {args.rate or '-'} | {args.messages} | " + " | ".join(figures) + " |"
            )
    print(
        "| storage | senders | window | paced msg/s | messages | msg/s | ack p50 ms "
        "| ack p99 ms | server CPU µs/msg |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


def node_scenarios(args: argparse.Namespace) -> None:
    """`make bench`'s storage rows alone: (d) storage on/off at saturation and PostgreSQL's ack
    p99 at a fixed rate, (e) catch-up, with the harness's Node load generator, pinning and
    interleaving (bench/harness.py's own functions; the world is the 1:1 pairs and the
    catch-up room only)."""
    import harness  # bench/harness.py, next to this file

    sizes = harness.Sizes(trials=args.trials, seconds=args.seconds, idle=0, fanout=(2,))
    world = harness.World(sizes)
    notes: list[str] = []
    # The harness's helpers as they stand (another edition may take the notes list or not).
    takes_notes = "notes" in inspect.signature(harness.chatcore_contenders).parameters
    extra = (notes,) if takes_notes else ()
    wanted = ["sqlite", "postgres"] if args.storage == "both" else [args.storage]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.sched_setaffinity(0, {harness.SERVER_CORE})  # servers inherit the server core
        contenders: list[Any] = []
        try:
            if "sqlite" in wanted:
                contenders += harness.chatcore_contenders(
                    ["chatcore", "chatcore-storage-off"],
                    folder / "sqlite",
                    {"url": f"sqlite+aiosqlite:///{folder / 'sqlite' / 'chat.db'}"},
                    world,
                    *extra,
                )
            if "postgres" in wanted:
                schema = f"bench_{uuid.uuid4().hex[:8]}"
                contenders += harness.chatcore_contenders(
                    ["chatcore-pg", "chatcore-pg-storage-off"],
                    folder / "pg",
                    {"url": postgres_url(), "schema": schema},
                    world,
                    *extra,
                )
            for contender in contenders:
                harness.pin(contender.pid, harness.SERVER_CORE)
            os.sched_setaffinity(0, {harness.LOAD_CORE})
            by_name = {c.name: c for c in contenders}
            rows = storage_rows(harness, sizes, world, by_name, folder)
        finally:
            for contender in contenders:
                contender.stop()
    print(harness.table(rows))


def storage_rows(
    harness: Any, sizes: Any, world: Any, by_name: dict[str, Any], folder: Path
) -> list[Any]:
    senders = [(a, f"pair{k}") for k, (a, _) in enumerate(world.pairs)]
    receivers = [b for _, b in world.pairs]

    def pairs(contender: Any, rate: int = 0) -> dict[str, Any]:
        return dict(
            harness.load_trial(
                contender,
                folder,
                sizes,
                senders=senders,
                receivers=receivers,
                expect=2,
                window=sizes.window if rate == 0 else 64,
                rate=rate,
            )
        )

    rows = []
    for on, off in (
        ("chatcore", "chatcore-storage-off"),
        ("chatcore-pg", "chatcore-pg-storage-off"),
    ):
        if on in by_name:
            where = f"d storage on/off ({on})"
            result = harness.interleave(where, [by_name[on], by_name[off]], pairs, sizes.trials)
            for key, metric in (
                ("messages_per_s", "messages/s"),
                ("cpu_us_per_delivery", "server CPU µs per delivery"),
            ):
                rows.append(harness.summarize(where, metric, result, key, subject=on, baseline=off))
    for name in ("chatcore", "chatcore-pg"):
        if name in by_name:
            where = f"d {name} at {sizes.pg_rate:,} msg/s"
            result = harness.interleave(
                where, [by_name[name]], lambda c: pairs(c, sizes.pg_rate), sizes.trials
            )
            rows.append(
                harness.summarize(
                    where, "ack p99 ms", result, "ack_p99_ms", subject=name, baseline=None
                )
            )
    for name in ("chatcore", "chatcore-pg"):
        if name not in by_name:
            continue
        contender, room = by_name[name], by_name[name].rooms["catchup"]
        fill = {"token": contender.tokens["c0"], "room": room, "count": sizes.catchup, "window": 64}
        harness.one_shot({"mode": "fill", "url": contender.url, "fill": fill}, folder)
        catchup = {"token": contender.tokens["c1"], "room": room, "after_seq": 0}
        runs = {
            name: [
                harness.one_shot(
                    {"mode": "catchup", "url": contender.url, "catchup": catchup}, folder
                )
                for _ in range(sizes.trials)
            ]
        }
        rows.append(
            harness.summarize(
                f"e catch-up of {sizes.catchup:,} ({name})",
                "sync ms",
                runs,
                "sync_ms",
                subject=name,
                baseline=None,
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--senders", type=int, default=20)
    parser.add_argument("--window", type=int, default=4)
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--storage", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--storage-off", action="store_true", help="also run with storage off")
    parser.add_argument("--rate", type=float, default=0.0, help="pace sends to this msg/s in all")
    parser.add_argument(
        "--node",
        action="store_true",
        help="make bench's storage rows (d, e) with its Node load generator instead",
    )
    parser.add_argument("--trials", type=int, default=3, help="with --node")
    parser.add_argument("--seconds", type=float, default=2.0, help="with --node")
    args = parser.parse_args()
    if args.node:
        node_scenarios(args)
    else:
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
