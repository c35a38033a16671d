"""Benchmark `SqlStorage.store_messages` (group commit) on SQLite and PostgreSQL.

Stores `--messages` messages in sequential batches of 1, 10 and 100 drafts, in two shapes:
into one group room of 10 senders (every batch takes the same room lock), and spread over 20
direct rooms (a batch across rooms, as under the 1:1 load of `make bench`); prints a markdown
table of throughput, batch latency and this process's CPU per batch and per message. Not a
test: the times depend on the machine, its disks and its load; the CPU figures less so.

    .venv/bin/python bench/storage_bench.py [--messages 3000] [--postgres URL | --no-postgres]
        [--sizes 1,10,100] [--shapes group,direct]

SQLite runs on a file in a temporary folder (WAL, synchronous=NORMAL, the defaults).
PostgreSQL runs in a fresh schema of the given database, dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import text

from chatcore.errors import ChatError
from chatcore.models import Draft
from chatcore_sql.settings import SqlStorageSettings
from chatcore_sql.storage import SqlStorage, build_storage

BATCH_SIZES = (1, 10, 100)
SENDERS = 10  # members of the group room, who take turns
DIRECT_ROOMS = 20
DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


@asynccontextmanager
async def sqlite_storage(folder: Path) -> AsyncIterator[SqlStorage]:
    storage = build_storage(
        SqlStorageSettings(url=f"sqlite+aiosqlite:///{folder / 'bench.db'}")  # WAL, NORMAL
    )
    assert storage is not None
    await storage.start()
    try:
        yield storage
    finally:
        await storage.close()


@asynccontextmanager
async def postgres_storage(url: str) -> AsyncIterator[SqlStorage]:
    schema = f"chatcore_bench_{uuid.uuid4().hex[:12]}"
    storage = build_storage(SqlStorageSettings(url=url, schema=schema))
    assert storage is not None
    await storage.start()
    try:
        yield storage
    finally:
        async with storage.engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await storage.close()


async def make_rooms(storage: SqlStorage, shape: str) -> list[tuple[str, list[str]]]:
    """The rooms a run sends into, each with its senders: one group room of SENDERS members,
    or DIRECT_ROOMS direct rooms of two."""
    tag = uuid.uuid4().hex[:8]
    if shape == "group":
        users = [
            await storage.create_user(f"bench-{tag}-{i}", "x", f"Bench {i}") for i in range(SENDERS)
        ]
        room = await storage.create_group_room(users[0].id, "bench", [u.id for u in users], 0)
        return [(room.id, [u.id for u in users])]
    rooms = []
    for k in range(DIRECT_ROOMS):
        a = await storage.create_user(f"bench-{tag}-a{k}", "x", f"A {k}")
        b = await storage.create_user(f"bench-{tag}-b{k}", "x", f"B {k}")
        room, _ = await storage.create_direct_room(a.id, b.id, 0)
        rooms.append((room.id, [a.id, b.id]))
    return rooms


async def run(
    storage: SqlStorage, shape: str, batch_size: int, total: int
) -> tuple[float, float, list[float]]:
    """Store `total` messages in batches; return (seconds, CPU seconds of this process, all
    its threads, and per-batch latencies in ms)."""
    rooms = await make_rooms(storage, shape)
    batches = [
        [
            Draft(
                room_id=rooms[n % len(rooms)][0],
                sender_id=rooms[n % len(rooms)][1][n // len(rooms) % len(rooms[n % len(rooms)][1])],
                ref=f"r{n}",
                body=f"message number {n} of the benchmark",
                ts=n,
            )
            for n in range(first, min(first + batch_size, total))
        ]
        for first in range(0, total, batch_size)
    ]
    latencies: list[float] = []
    started, cpu_started = time.perf_counter(), time.process_time()
    for drafts in batches:
        t0 = time.perf_counter()
        results = await storage.store_messages(drafts)
        latencies.append((time.perf_counter() - t0) * 1000)
        if any(isinstance(r, ChatError) or not r.created for r in results):
            raise RuntimeError(f"a draft was not stored: {results}")
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    stored = 0
    for room_id, _ in rooms:
        last = await storage.get_room(room_id)
        assert last is not None
        stored += last.last_seq
    assert stored == total, "seqs must be gapless"
    return elapsed, cpu, latencies


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument(
        "--postgres", default=os.environ.get("CHATCORE_TEST_POSTGRES_URL", DEFAULT_POSTGRES)
    )
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--sizes", default=",".join(map(str, BATCH_SIZES)), help="batch sizes")
    parser.add_argument("--shapes", default="group,direct", help="group and/or direct")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        backends = [("SQLite (file, WAL, NORMAL)", sqlite_storage(Path(folder)))]
        if not args.no_postgres:
            backends.append(("PostgreSQL", postgres_storage(args.postgres)))
        for name, opened in backends:
            async with opened as storage:
                for shape in args.shapes.split(","):
                    for size in (int(size) for size in args.sizes.split(",")):
                        elapsed, cpu, latencies = await run(storage, shape, size, args.messages)
                        where = (
                            "1 group room" if shape == "group" else f"{DIRECT_ROOMS} direct rooms"
                        )
                        rows.append(
                            f"| {name} | {where} | {size} | {args.messages} | "
                            f"{args.messages / elapsed:,.0f} | "
                            f"{statistics.median(latencies):.2f} | "
                            f"{percentile(latencies, 99):.2f} | "
                            f"{cpu / len(latencies) * 1000:.2f} | "
                            f"{cpu / args.messages * 1e6:.0f} |"
                        )
    # CPU: this process's, every thread (SQLite's work included; PostgreSQL's server not). Steadier
    # than the times on a shared machine.
    print(
        "| backend | rooms | batch size | messages | messages/s | p50 batch ms | p99 batch ms "
        "| CPU ms/batch | CPU µs/message |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    asyncio.run(main())
