"""One idle `chatcore.Client` in a process of its own, for bench/client_bench.py's memory figure.

Logs in on a fresh device store, waits until the connection is `ready` and the store holds
`--rooms` rooms, stays idle for `--idle` seconds, collects garbage, then prints one JSON line:
the process's resident set (VmRSS, kB) after the imports, after `start()` (device store and
media cache open, no connection yet) and once idle (with its private part, RssAnon), and how
long reaching `ready` took.

    .venv/bin/python bench/client_idle.py --server URL --data-dir DIR --username NAME \
        --rooms 200 < password

The client is the only thing this process holds, so its resident set is the client's cost
(the interpreter included).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time
from pathlib import Path

from chatcore.client.app import Client


def status_kb(field: str) -> int:
    """A memory figure of this process in kB from /proc/self/status (Linux): `VmRSS` (the
    resident set), `RssAnon` (its private part: the heap, not the mapped libraries)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def rss_kb() -> int:
    return status_kb("VmRSS")


async def idle_client(args: argparse.Namespace, password: str) -> dict[str, float]:
    imported = rss_kb()
    client = Client.for_server(args.server, Path(args.data_dir))
    async with asyncio.timeout(args.timeout):
        await client.start()
        try:
            started = rss_kb()
            t0 = time.perf_counter()
            await client.login(args.username, password)  # started with connect: it connects
            await client.wait_for_state("ready")
            ready_ms = (time.perf_counter() - t0) * 1000
            rooms = len(await client.rooms())
            if rooms != args.rooms:
                raise RuntimeError(f"the device store holds {rooms} rooms, not {args.rooms}")
            await asyncio.sleep(args.idle)  # idle: nothing but the engine's pings to do
            gc.collect()
            idle, idle_anon = rss_kb(), status_kb("RssAnon")
        finally:
            await client.close()
    return {
        "imported_kb": imported,
        "started_kb": started,
        "idle_kb": idle,
        "idle_anon_kb": idle_anon,
        "ready_ms": ready_ms,
        "rooms": rooms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", required=True, help="the server's base URL")
    parser.add_argument("--data-dir", required=True, help="a folder for a fresh device store")
    parser.add_argument("--username", required=True, help="the password comes on stdin")
    parser.add_argument("--rooms", type=int, required=True, help="rooms the user is in")
    parser.add_argument("--idle", type=float, default=1.0, help="seconds idle before measuring")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    password = sys.stdin.readline().rstrip("\n")
    print(json.dumps(asyncio.run(idle_client(args, password))))


if __name__ == "__main__":
    main()
