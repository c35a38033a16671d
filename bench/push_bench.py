"""Pushes to offline members: what they cost the senders, and how fast they arrive.

    .venv/bin/python bench/push_bench.py [--members 20] [--messages 300] [--window 4]
                                         [--concurrency 32] [--push-node redis://127.0.0.1:6379]

Starts a real server (SQLite on a file, default plugins) twice on free loopback ports: once
without a push adapter, once with webhook pushes to a receiver on loopback (a process of its
own, on asyncio, so that it measures chatcore rather than itself). A sender keeps `window`
sends in flight (closed loop) into a group room whose other `members` are offline, each with
one webhook device, so every message makes `members` pushes. Prints markdown tables: sends/s
and ack latency with pushes off and on, then how long pushes took from the send's ack to the
receiver, and how many arrived per second. With `--push-node`, a second process on the same
storage sends the pushes and the chat node only queues them (`[push] send = false`, woken
over Redis).
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
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import orjson
from ack_latency import sender

from chatcore.testing.server import start_server
from chatcore.testing.users import TestUser, new_user

SECRET = "bench-secret"
SENDS = {"secret": SECRET, "allow_private_endpoints": True}  # [push_webhook] of the senders


class Receiver:
    """A webhook receiver in a process of its own (so that neither the sender's loop nor the
    server shares its interpreter lock): records when each push arrived (wall clock) and
    answers `GET /arrivals` with them."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve-receiver"], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())
        self.http = httpx.Client(timeout=30)  # one: each new client builds a TLS context

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def arrivals(self) -> list[tuple[str, float]]:
        return [tuple(a) for a in self.http.get(self.url("/arrivals")).json()]

    def close(self) -> None:
        self.http.close()
        self.process.terminate()
        self.process.wait()


def serve_receiver() -> None:
    """The receiver process: HTTP/1.1 on asyncio streams, enough of it for webhook POSTs (a
    thread per request, as `http.server` does, would measure the receiver, not chatcore)."""
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
                    data = orjson.dumps(arrivals)
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


def setup(api: str, receiver: Receiver, members: int) -> tuple[TestUser, str]:
    """The sender, and a group room of offline members with one webhook device each."""
    alice, others = new_user(api), [new_user(api) for _ in range(members)]
    with httpx.Client(base_url=api, timeout=30) as http:
        group = {"kind": "group", "name": "bench", "member_ids": [m.id for m in others]}
        room = http.post("/rooms", json=group, headers=alice.headers).json()["id"]
        for i, member in enumerate(others):
            device = {"platform": "webhook", "endpoint": receiver.url(f"/m{i}")}
            reply = http.post("/push/devices", json=device, headers=member.headers)
            assert reply.status_code == 201, reply.text
    return alice, str(room)


async def run(push: bool, args: argparse.Namespace, receiver: Receiver) -> dict[str, Any]:
    overrides: dict[str, Any] = {"websocket": {"rate_per_second": 1e6, "rate_burst": 1e6}}
    if push:
        overrides["push_webhook"] = SENDS
        overrides["push"] = {"concurrency": args.concurrency}
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        if push and args.push_node:
            # The chat node only queues; a second process on the same storage sends, woken
            # over Redis (docs/deploy.md).
            shared = {
                "storage": {"url": f"sqlite+aiosqlite:///{folder / 'chat.db'}"},
                "broker": {"url": args.push_node, "channel_prefix": f"bench{os.getpid()}:"},
            }
            pusher = {
                **shared,
                "push_webhook": overrides["push_webhook"],
                "push": overrides["push"],
            }
            overrides |= shared | {"push": {**overrides["push"], "send": False}}
            stack.enter_context(start_server(folder / "push-node", pusher))
        server = stack.enter_context(start_server(folder / "chat-node", overrides))
        alice, room = await asyncio.to_thread(setup, server.api, receiver, args.members)
        expected = args.messages * args.members if push else 0
        before = len(await asyncio.to_thread(receiver.arrivals))
        started = time.perf_counter()
        acked, latencies = await sender_with_acks(server.ws_url, alice.access_token, room, args)
        elapsed = time.perf_counter() - started
        state = "on" if push else "off"
        print(f"pushes {state}: {args.messages / elapsed:.0f} sends/s", file=sys.stderr)
        deadline = time.monotonic() + 300
        while len(arrivals := (await asyncio.to_thread(receiver.arrivals))[before:]) < expected:
            assert time.monotonic() < deadline, f"{len(arrivals)} of {expected} pushes arrived"
            await asyncio.sleep(0.1)
        to_wall = time.time() - time.perf_counter()  # the receiver stamps wall-clock time
        drained = max((t for _, t in arrivals), default=to_wall + started) - (to_wall + started)
    result: dict[str, Any] = {
        "sends_per_s": args.messages / elapsed,
        "ack_p50": statistics.median(latencies) * 1000,
        "ack_p99": percentile(latencies, 99) * 1000,
    }
    if push:
        delays = [
            (arrived - to_wall - acked[message_id]) * 1000 for message_id, arrived in arrivals
        ]
        result.update(
            push_p50=statistics.median(delays),
            push_p99=percentile(delays, 99),
            push_max=max(delays),
            pushes_per_s=expected / drained,
        )
    return result


async def sender_with_acks(
    ws_url: str, token: str, room: str, args: argparse.Namespace
) -> tuple[dict[str, float], list[float]]:
    """`ack_latency.sender`, and when each message was acked (by id, for push delays)."""
    acked: dict[str, float] = {}
    latencies = await sender(ws_url, token, room, args.messages, args.window, acked)
    return acked, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--window", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=32, help="[push] concurrency")
    parser.add_argument(
        "--push-node",
        metavar="REDIS_URL",
        help="send pushes from a second process (a push node) woken over this Redis",
    )
    parser.add_argument("--serve-receiver", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_receiver:
        serve_receiver()
        return

    async def both() -> tuple[dict[str, Any], dict[str, Any]]:
        receiver = Receiver()
        try:
            return await run(False, args, receiver), await run(True, args, receiver)
        finally:
            receiver.close()

    off, on = asyncio.run(both())
    print(
        f"\n{args.messages} messages into a group of 1 sender + {args.members} offline members "
        f"(one webhook device each), window {args.window}, SQLite\n"
    )
    print("| pushes | sends/s | ack p50 ms | ack p99 ms |")
    print("|---|---:|---:|---:|")
    for name, r in (("off", off), ("on (webhook)", on)):
        print(f"| {name} | {r['sends_per_s']:.0f} | {r['ack_p50']:.2f} | {r['ack_p99']:.2f} |")
    print("\n| pushes sent | pushes/s (to the last) | ack → push p50 ms | p99 ms | max ms |")
    print("|---:|---:|---:|---:|---:|")
    print(
        f"| {args.messages * args.members} | {on['pushes_per_s']:.0f} | {on['push_p50']:.1f} | "
        f"{on['push_p99']:.1f} | {on['push_max']:.1f} |"
    )


if __name__ == "__main__":
    main()
