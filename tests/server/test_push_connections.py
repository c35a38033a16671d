"""The connections pushes go out on (`EndpointClient` over `chatcore.server.push.connections`),
against real servers on loopback: hypercorn for HTTP/1.1 and, over TLS with ALPN, HTTP/2;
small asyncio servers for what a well-behaved server does not do (drop a kept connection,
answer with a huge body)."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypercorn.asyncio import serve
from hypercorn.config import Config

from chatcore.server.push import ssrf
from chatcore.server.push.endpoint import EndpointClient
from chatcore.testing.server import free_port
from chatcore.testing.tls import make_tls

pytestmark = pytest.mark.anyio

BODY = b'{"type": "message", "room_id": "r1"}'


@dataclass
class Seen:
    """What the server saw of each request: HTTP version, the client's port (one per
    connection), the Host / :authority, the body."""

    requests: list[tuple[str, int, str, bytes]] = field(default_factory=list)


@asynccontextmanager
async def hypercorn_server(tls_folder: Path | None = None) -> AsyncIterator[tuple[int, Seen, str]]:
    """(port, what it saw, CA file or "") of hypercorn serving a tiny ASGI app that answers 201;
    with `tls_folder`, https (h2 and http/1.1 by ALPN) with a certificate for 127.0.0.1."""
    seen = Seen()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        host = dict(scope["headers"]).get(b"host", b"").decode()
        seen.requests.append((scope["http_version"], scope["client"][1], host, body))
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    port, ca = free_port(), ""
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.loglevel = "ERROR"
    config.accesslog = None
    if tls_folder is not None:
        ca_path, cert, key = make_tls(tls_folder)
        config.certfile, config.keyfile, ca = str(cert), str(key), str(ca_path)
        config.alpn_protocols = ["h2", "http/1.1"]
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    try:
        await until_listening(port)
        yield port, seen, ca
    finally:
        stop.set()
        await task


async def until_listening(port: int) -> None:
    async with asyncio.timeout(10):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.01)
                continue
            writer.close()
            return


@asynccontextmanager
async def client(**options: Any) -> AsyncIterator[EndpointClient]:
    made = EndpointClient(options.pop("timeout_seconds", 5.0), allow_private=True, **options)
    await made.start()
    try:
        yield made
    finally:
        await made.close()


async def test_http11_connections_are_kept_and_reused(tmp_path: Path) -> None:
    async with hypercorn_server() as (port, seen, _), client() as pushes:
        url = f"http://127.0.0.1:{port}/hook"
        results = [
            await pushes.post(url, BODY, {"Content-Type": "application/json"}) for _ in range(5)
        ]
    assert [r.outcome for r in results] == ["sent"] * 5
    assert {(version, host, body) for version, _, host, body in seen.requests} == {
        ("1.1", f"127.0.0.1:{port}", BODY)
    }
    assert len({client_port for _, client_port, _, _ in seen.requests}) == 1  # one connection


async def test_concurrent_pushes_share_one_http2_connection(tmp_path: Path) -> None:
    async with hypercorn_server(tmp_path) as (port, seen, ca), client(ca_file=ca) as pushes:
        url = f"https://127.0.0.1:{port}/push/sub"
        results = await asyncio.gather(*(pushes.post(url, BODY, {}) for _ in range(20)))
    assert [r.outcome for r in results] == ["sent"] * 20
    assert {(version, host, body) for version, _, host, body in seen.requests} == {
        ("2", f"127.0.0.1:{port}", BODY)
    }
    assert len({client_port for _, client_port, _, _ in seen.requests}) == 1  # streams of one


async def test_the_pinned_address_gets_the_name_and_its_certificate_must_match_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The connection goes to the checked address, but TLS verifies the certificate against the
    # endpoint's name: a server whose certificate is not for that name is not talked to.
    async def resolved(url: str, **options: Any) -> tuple[Any, ...]:
        return (ipaddress.ip_address("127.0.0.1"),)

    monkeypatch.setattr(ssrf, "resolve_endpoint", resolved)
    async with hypercorn_server(tmp_path) as (port, seen, ca), client(ca_file=ca) as pushes:
        result = await pushes.post(f"https://push.invalid:{port}/sub", BODY, {})
    assert result.outcome == "retry"
    assert result.detail.startswith("ConnectError:")
    assert "certificate" in result.detail.lower() or "hostname" in result.detail.lower()
    assert seen.requests == []


async def test_an_untrusted_certificate_is_refused(tmp_path: Path) -> None:
    async with hypercorn_server(tmp_path) as (port, seen, _), client() as pushes:
        result = await pushes.post(f"https://127.0.0.1:{port}/sub", BODY, {})
    assert result.outcome == "retry"
    assert "certificate" in result.detail.lower()
    assert seen.requests == []


@asynccontextmanager
async def raw_server(answer: bytes, *, close_after: bool) -> AsyncIterator[tuple[int, list[bytes]]]:
    """A server answering each request's head with `answer`; `close_after` drops the
    connection after each answer although the answer said nothing of closing it."""
    heads: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
                heads.append(head)
                writer.write(answer)
                await writer.drain()
                if close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], heads
    finally:
        server.close()
        await server.wait_closed()


async def test_a_kept_connection_the_server_dropped_does_not_fail_the_next_push() -> None:
    ok = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
    async with raw_server(ok, close_after=True) as (port, heads), client() as pushes:
        url = f"http://127.0.0.1:{port}/hook"
        results = [await pushes.post(url, BODY, {}) for _ in range(3)]
    assert [r.outcome for r in results] == ["sent"] * 3, results
    assert len(heads) == 3  # each sent once


async def test_a_huge_refusal_body_is_not_read_and_its_start_is_the_detail() -> None:
    body = b"x" * 5_000_000
    answer = b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    async with raw_server(answer, close_after=False) as (port, _), client() as pushes:
        result = await pushes.post(f"http://127.0.0.1:{port}/hook", BODY, {})
        again = await pushes.post(f"http://127.0.0.1:{port}/hook", BODY, {})
    assert (result.outcome, result.detail) == ("failed", "HTTP 400: " + "x" * 256)
    assert again.outcome == "failed"  # on a new connection: the old one was not read on
