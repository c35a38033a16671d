"""Benchmark the client's device store (`chatcore_device_sqlite`) on the paths a chat app waits on.

- catch-up: `--messages` messages of one room stored with `add_messages` in batches of the
  server's sync size (1000) and of 500, search index included; the total time (target < 1 s for
  10,000) and the per-batch latency.
- opening a room: the newest page (50) of a room holding `--big-room` messages, read
  `--reads` times; p50 and p99 (target < 5 ms for 100,000).
- the room list: `list_rooms` over `--rooms` rooms of `--per-room` messages each.

Prints a markdown table. Not a test: the numbers depend on the machine and its disks.

    .venv/bin/python bench/device_store_bench.py [--messages 10000] [--big-room 100000]

Each scenario runs on a fresh file in a temporary folder (WAL, synchronous=NORMAL, the store's
settings), like a device's.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from chatcore.client.models import Message, Room
from chatcore_device_sqlite import SqliteDeviceStore

ME = "u-me"
SENDERS = ("u-me", "u-ann", "u-bob", "u-cy")
WORDS = "lunch meeting report photo weekend train coffee deadline party review".split()


@asynccontextmanager
async def fresh_store(folder: Path, name: str) -> AsyncIterator[SqliteDeviceStore]:
    store = SqliteDeviceStore(folder / name / "client.db")
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def messages(room_id: str, first: int, count: int) -> list[Message]:
    """`count` messages of `room_id` from seq `first`, as a catch-up page brings them."""
    return [
        Message.trusted(
            {
                "room_id": room_id,
                "sender_id": SENDERS[seq % len(SENDERS)],
                "ref": f"ref-{seq}",
                "kind": "text",
                "body": f"{WORDS[seq % 10]} and {WORDS[seq * 7 % 10]}, message number {seq}",
                "media_id": None,
                "sticker_id": None,
                "reply_to": None,
                "ts": 1_700_000_000_000 + seq,
                "id": f"{room_id}-{seq:08d}",
                "seq": seq,
                "edited_ts": None,
                "deleted": False,
            }
        )
        for seq in range(first, first + count)
    ]


def room(room_id: str) -> Room:
    return Room(id=room_id, kind="group", name=room_id, member_ids=SENDERS)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def fill(store: SqliteDeviceStore, room_id: str, total: int, batch: int) -> list[float]:
    """Store `total` messages of `room_id` in batches; each batch's latency in ms."""
    await store.save_rooms([room(room_id)])
    latencies = []
    for first in range(1, total + 1, batch):
        page = messages(room_id, first, min(batch, total + 1 - first))
        t0 = time.perf_counter()
        stored = await store.add_messages(page, ME)
        latencies.append((time.perf_counter() - t0) * 1000)
        assert len(stored.new) == len(page), "every message of a page is new"
    cursors = await store.cursors()
    assert cursors[room_id] == total, "the cursor is at the last message"
    return latencies


async def catch_up(folder: Path, total: int, batch: int) -> str:
    async with fresh_store(folder, f"catch-up-{batch}") as store:
        started = time.perf_counter()
        latencies = await fill(store, "room", total, batch)
        elapsed = time.perf_counter() - started
        assert len(await store.search("coffee", limit=total)) > 0, "the index was built"
    return (
        f"| catch-up: add_messages, {total:,} messages in batches of {batch} "
        f"| total {elapsed * 1000:,.0f} ms ({total / elapsed:,.0f} messages/s) "
        f"| p50 batch {statistics.median(latencies):.1f} ms, "
        f"p99 {percentile(latencies, 99):.1f} ms | < 1 s for 10,000 |"
    )


async def newest_page(folder: Path, total: int, reads: int) -> str:
    async with fresh_store(folder, "big-room") as store:
        await fill(store, "big", total, 1000)
        latencies = []
        for _ in range(reads):
            t0 = time.perf_counter()
            page = await store.history("big", limit=50)
            latencies.append((time.perf_counter() - t0) * 1000)
            assert page[0].seq == total and len(page) == 50
    return (
        f"| open a room: history(limit=50), room of {total:,} messages, {reads} reads "
        f"| p50 {statistics.median(latencies):.2f} ms | p99 {percentile(latencies, 99):.2f} ms "
        "| < 5 ms |"
    )


async def room_list(folder: Path, rooms: int, per_room: int, reads: int) -> str:
    async with fresh_store(folder, "many-rooms") as store:
        for r in range(rooms):
            await fill(store, f"room-{r:03d}", per_room, per_room)
            await store.set_read(f"room-{r:03d}", per_room // 2)
        latencies = []
        for _ in range(reads):
            t0 = time.perf_counter()
            listed = await store.list_rooms()
            latencies.append((time.perf_counter() - t0) * 1000)
            assert len(listed) == rooms and listed[0].last_message is not None
    return (
        f"| room list: list_rooms, {rooms} rooms of {per_room} messages, {reads} reads "
        f"| p50 {statistics.median(latencies):.2f} ms | p99 {percentile(latencies, 99):.2f} ms "
        "| |"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--big-room", type=int, default=100_000)
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--rooms", type=int, default=200)
    parser.add_argument("--per-room", type=int, default=100)
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for batch in (1000, 500):
            rows.append(await catch_up(folder, args.messages, batch))
        rows.append(await newest_page(folder, args.big_room, args.reads))
        rows.append(await room_list(folder, args.rooms, args.per_room, 50))
    print("| scenario | time | detail | target |")
    print("|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    asyncio.run(main())
