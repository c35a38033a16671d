"""HTTP clients for pushes side by side: CPU per request of the client, one at a time and many.

    .venv/bin/python bench/push_clients_bench.py [--requests 3000] [--concurrency 32] [--quick]

A push is one small POST (a few hundred bytes of JSON, three headers) and an empty answer. The
receiver is hypercorn serving a tiny ASGI app in a process of its own (HTTP/1.1, and HTTP/2 by
ALPN over TLS with a certificate of a CA made here), so that the client's process measures
only the client: its CPU time (`time.process_time`) over the requests, in µs per request,
sequential (one request at a time) and with `--concurrency` under way. Contenders:

- httpx, HTTP/1.1 keep-alive (http and https), and HTTP/2 (https, `http2=True`);
- aiohttp, HTTP/1.1 keep-alive (http);
- chatcore's own (`chatcore.server.push.connections.Pool`, on asyncio's transports): h11 for
  HTTP/1.1 keep-alive (http and https), h2 for HTTP/2 (https, every request a stream of one
  connection).

Prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson

from chatcore.server.push.connections import Pool, connect_link
from chatcore.server.push.endpoint import tls_context
from chatcore.testing.tls import make_tls

BODY = orjson.dumps(
    {
        "type": "message", "room_id": "r" * 32, "message_id": "m" * 32, "seq": 1234,
        "ts": 1_765_000_000_000, "sender_id": "u" * 32, "sender_name": "Ann",
        "room_name": "Team", "preview": "Lunch at 12? " * 4, "direct": False, "mention": False,
    }
)  # fmt: skip
HEADERS = {
    "Content-Type": "application/json",
    "X-Chatcore-Timestamp": "1765000000",
    "X-Chatcore-Signature": "sha256=" + "0" * 64,
}


def serve(plain: int, tls: int, cert: str, key: str) -> None:
    """The receiver process: hypercorn, http on `plain`, https (h2 and http/1.1) on `tls`."""
    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    config = Config()
    config.bind = [f"127.0.0.1:{tls}"]
    config.insecure_bind = [f"127.0.0.1:{plain}"]
    config.certfile, config.keyfile = cert, key
    config.alpn_protocols = ["h2", "http/1.1"]
    config.backlog = 1024
    config.keep_alive_timeout = 60
    config.h2_max_concurrent_streams = 100
    config.loglevel = "ERROR"
    config.accesslog = None
    asyncio.run(hypercorn_serve(app, config))  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: One request: await it, get the status.
Send = Callable[[], Awaitable[int]]


async def httpx_client(url: str, *, http2: bool, ca: str) -> tuple[Send, Callable[[], Any]]:
    verify = ssl.create_default_context(cafile=ca)
    client = httpx.AsyncClient(http2=http2, verify=verify, trust_env=False)

    async def send() -> int:
        response = await client.post(url, content=BODY, headers=HEADERS)
        return response.status_code

    return send, client.aclose


async def aiohttp_client(url: str) -> tuple[Send, Callable[[], Any]]:
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32), trust_env=False)

    async def send() -> int:
        async with session.post(url, data=BODY, headers=HEADERS) as response:
            await response.read()
            return response.status

    return send, session.close


async def lean_client(port: int, tls: ssl.SSLContext | None) -> tuple[Send, Callable[[], Any]]:
    connect = functools.partial(
        connect_link, address="127.0.0.1", port=port, tls=tls, server_name="127.0.0.1"
    )
    pool = Pool(connect, max_connections=32)
    scheme = "https" if tls else "http"
    headers = list(HEADERS.items())

    async def send() -> int:
        answer = await pool.request("/hook", f"127.0.0.1:{port}", scheme, headers, BODY)
        return answer.status

    async def close() -> None:
        pool.close()

    return send, close


async def run(send: Send, requests: int, concurrency: int) -> tuple[float, float, int]:
    """(CPU µs per request, requests/s, failed requests) of `requests` requests,
    `concurrency` under way. A failed request (a network error: the receiver is hypercorn,
    on a loaded machine) counts as a request all the same."""
    for _ in range(20):  # warm: connections made, code paths taken
        assert await send() == 201
    left, failed = requests, 0

    async def worker() -> None:
        nonlocal left, failed
        while left > 0:
            left -= 1
            try:
                status = await send()
            except Exception:
                failed += 1
                continue
            assert status == 201, status

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return cpu / requests * 1e6, requests / wall, failed


async def bench(
    args: argparse.Namespace, ca: str, plain: int, secure: int
) -> list[tuple[str, ...]]:
    """Every contender against the receiver listening on `plain` (http) and `secure` (https
    with a certificate of the CA in the PEM file `ca`)."""
    for port in (plain, secure):
        await wait_for(port)
    h2_tls = tls_context(ca)
    h1_tls = tls_context(ca)
    h1_tls.set_alpn_protocols(["http/1.1"])
    http, https = f"http://127.0.0.1:{plain}/hook", f"https://127.0.0.1:{secure}/hook"
    contenders: list[tuple[str, Callable[[], Awaitable[tuple[Send, Callable[[], Any]]]]]] = [
        ("httpx HTTP/1.1, http", lambda: httpx_client(http, http2=False, ca=ca)),
        ("aiohttp HTTP/1.1, http", lambda: aiohttp_client(http)),
        ("chatcore h11 HTTP/1.1, http", lambda: lean_client(plain, None)),
        ("httpx HTTP/1.1, https", lambda: httpx_client(https, http2=False, ca=ca)),
        ("chatcore h11 HTTP/1.1, https", lambda: lean_client(secure, h1_tls)),
        ("httpx HTTP/2, https", lambda: httpx_client(https, http2=True, ca=ca)),
        ("chatcore h2 HTTP/2, https", lambda: lean_client(secure, h2_tls)),
    ]
    rows = []
    for name, make in contenders:
        print(f"{name} ...", file=sys.stderr, flush=True)
        send, close = await make()
        try:
            one = await run(send, max(50, args.requests // 4), 1)
            many = await run(send, args.requests, args.concurrency)
        finally:
            await close()
        rows.append(
            (
                name, f"{one[0]:,.0f}", f"{one[1]:,.0f}", f"{many[0]:,.0f}", f"{many[1]:,.0f}",
                str(one[2] + many[2]),
            )
        )  # fmt: skip
    return rows


async def wait_for(port: int) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--quick", action="store_true", help="300 requests")
    parser.add_argument("--serve", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        plain, secure, cert, key = args.serve
        serve(int(plain), int(secure), cert, key)
        return
    if args.quick:
        args.requests = 300
    plain, secure = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        ca, cert, key = (str(p) for p in make_tls(Path(tmp)))
        command = [sys.executable, __file__, "--serve", str(plain), str(secure), cert, key]
        server = subprocess.Popen(command)
        try:
            rows = asyncio.run(bench(args, ca, plain, secure))
        finally:
            server.terminate()
            server.wait()
    print(
        f"\nPOST of {len(BODY)} bytes of JSON, empty 201 answer, hypercorn receiver in another "
        f"process; client CPU (process time) per request\n"
    )
    print(
        f"| client | CPU µs/request, 1 at a time | requests/s | CPU µs/request, "
        f"{args.concurrency} under way | requests/s | failed |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
