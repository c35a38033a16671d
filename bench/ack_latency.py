"""Durable sends over WebSocket: ack latency and throughput with group commit.

    .venv/bin/python bench/ack_latency.py [--senders 20] [--window 4] [--messages 4000]

Starts a real server (SQLite on a file, durable acks, default plugins) on free loopback ports,
puts every sender in one group room, and has each keep `window` sends in flight (a closed
loop). Prints a markdown table: messages/s and ack latency percentiles (send -> ack).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import orjson
from websockets.asyncio.client import connect

from chatcore.testing.server import start_server
from chatcore.testing.users import TestUser, new_user


async def sender(
    ws_url: str,
    token: str,
    room: str,
    count: int,
    window: int,
    acked: dict[str, float] | None = None,
) -> list[float]:
    """Send `count` messages, `window` in flight; the ack latencies. `acked`, when given, gets
    the time of each ack by message id."""
    latencies: list[float] = []
    sent_at: dict[str, float] = {}
    async with connect(ws_url, max_size=None) as ws:
        await ws.send(orjson.dumps({"type": "auth", "token": token}).decode())
        assert orjson.loads(await ws.recv())["type"] == "ready"
        next_id = 0
        inflight = 0
        while len(latencies) < count:
            while inflight < window and next_id < count:
                ref = f"r{next_id}"
                next_id += 1
                sent_at[ref] = time.perf_counter()
                frame = {"type": "send", "ref": ref, "room_id": room, "body": "x" * 64}
                await ws.send(orjson.dumps(frame).decode())
                inflight += 1
            event = orjson.loads(await ws.recv())
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


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as folder:
        overrides = {"websocket": {"rate_per_second": 1e6, "rate_burst": 1e6}}
        with start_server(Path(folder), overrides) as server:
            users, room = group_room(server.api, args.senders)
            each = args.messages // args.senders
            started = time.perf_counter()
            results = await asyncio.gather(
                *(sender(server.ws_url, u.access_token, room, each, args.window) for u in users)
            )
            elapsed = time.perf_counter() - started
    latencies = sorted(x * 1000 for r in results for x in r)
    q = statistics.quantiles(latencies, n=100)
    print("| senders | window | messages | msg/s | ack p50 ms | ack p99 ms |")
    print("|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {args.senders} | {args.window} | {len(latencies)} | {len(latencies) / elapsed:,.0f} "
        f"| {q[49]:.1f} | {q[98]:.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--senders", type=int, default=20)
    parser.add_argument("--window", type=int, default=4)
    parser.add_argument("--messages", type=int, default=4000)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
