"""The webhook push adapter against a real HTTP server on a loopback port, recording exactly
what it receives and answering what each test asks of it."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest

import chatcore_push_webhook
from chatcore.models import Device
from chatcore.server.app import App
from chatcore.server.push import ssrf
from chatcore.server.push.endpoint import outcome_of
from chatcore.settings import ConfigError
from chatcore_push_webhook import WebhookAdapter, WebhookSettings

pytestmark = pytest.mark.anyio

SECRET = "s3cret-for-the-tests"
PUSH = {
    "type": "message",
    "room_id": "r1",
    "message_id": "m1",
    "seq": 7,
    "ts": 1700000000000,
    "sender_id": "u2",
    "sender_name": "Ann",
    "preview": "héllo ✓",
    "direct": True,
}


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Endpoint:
    """A webhook receiver: `answers[path]` is (status, headers) to reply with; a path under
    /hang/ blocks until the test ends (the server's own blocking, no sleep in the tests)."""

    port: int
    received: list[Received] = field(default_factory=list)
    answers: dict[str, tuple[int, dict[str, str]]] = field(default_factory=dict)
    release: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    state: Endpoint

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.received.append(
                Received("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            if self.path.startswith("/hang/"):
                state.release.wait(30)
                return
            status, headers = state.answers.get(self.path, (200, {}))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state = Endpoint(port=server.server_address[1])
    # A short poll interval: shutdown() waits for the next poll.
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join()


def settings(**overrides: Any) -> WebhookSettings:
    values: dict[str, Any] = {"secret": SECRET, "allow_private_endpoints": True}
    return WebhookSettings(**(values | overrides))


@pytest.fixture
async def adapter() -> Any:
    adapter = WebhookAdapter(settings(timeout_seconds=0.5))
    await adapter.start()
    yield adapter
    await adapter.close()


def device(url: str) -> Device:
    return Device(id="d1", user_id="u1", platform="webhook", endpoint=url, created_ts=1)


def verifies(secret: str, received: Received) -> bool:
    """How a receiver checks a push (the snippet of docs/push.md)."""
    timestamp = received.headers["x-chatcore-timestamp"]
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + received.body, hashlib.sha256)
    return hmac.compare_digest(
        received.headers["x-chatcore-signature"], f"sha256={mac.hexdigest()}"
    )


async def test_the_push_arrives_as_signed_json(adapter, endpoint):
    result = await adapter.send(device(endpoint.url("/hook?user=1")), PUSH)
    assert (result.outcome, result.detail) == ("sent", "HTTP 200")
    [got] = endpoint.received
    assert (got.method, got.path) == ("POST", "/hook?user=1")
    assert orjson.loads(got.body) == PUSH
    assert got.body == orjson.dumps(PUSH)
    assert got.headers["content-type"] == "application/json"
    assert got.headers["host"] == f"127.0.0.1:{endpoint.port}"
    assert got.headers["x-chatcore-timestamp"].isdigit()
    assert got.headers["x-chatcore-signature"].startswith("sha256=")
    assert verifies(SECRET, got)
    assert not verifies("another secret", got)
    tampered = Received(got.method, got.path, got.headers, got.body.replace(b"7", b"8"))
    assert not verifies(SECRET, tampered)


async def test_the_connection_goes_to_the_checked_address_with_the_name_as_host(
    adapter, endpoint, monkeypatch
):
    # Pinning (against DNS rebinding): whatever the name resolves to later, the request goes
    # to the address the check returned, naming the host in the Host header.
    checked = []

    async def resolve(url, **kwargs):
        checked.append((url, kwargs))
        return (ipaddress.ip_address("127.0.0.1"),)

    monkeypatch.setattr(ssrf, "resolve_endpoint", resolve)
    url = f"http://hooks.example:{endpoint.port}/pinned"
    result = await adapter.send(device(url), PUSH)
    assert result.outcome == "sent"
    assert checked == [(url, {"allow_private": True})]
    [got] = endpoint.received
    assert (got.path, got.headers["host"]) == ("/pinned", f"hooks.example:{endpoint.port}")


@pytest.mark.parametrize(
    ("status", "headers", "outcome", "retry_after"),
    [
        (200, {}, "sent", None),
        (202, {}, "sent", None),
        (404, {}, "gone", None),
        (410, {}, "gone", None),
        (429, {"Retry-After": "17"}, "retry", 17.0),
        (429, {}, "retry", None),
        (500, {}, "retry", None),
        (503, {"Retry-After": "120"}, "retry", 120.0),
        (400, {}, "failed", None),
        (401, {}, "failed", None),
        (413, {}, "failed", None),
        (302, {"Location": "http://169.254.169.254/"}, "failed", None),
    ],
)
async def test_each_status_maps_to_its_outcome(
    adapter, endpoint, status, headers, outcome, retry_after
):
    endpoint.answers["/status"] = (status, headers)
    result = await adapter.send(device(endpoint.url("/status")), PUSH)
    assert (result.outcome, result.retry_after_seconds) == (outcome, retry_after)
    assert result.detail.startswith(f"HTTP {status}")  # and the start of a refusal's body
    assert [r.path for r in endpoint.received] == ["/status"]  # a redirect is not followed


def test_retry_after_as_an_http_date():
    result = outcome_of(429, "Wed, 21 Oct 2015 07:28:00 GMT", 1445412470.0)
    assert result.retry_after_seconds == 10.0
    assert outcome_of(503, "soon", 0).retry_after_seconds is None


async def test_a_payload_over_the_limit_fails_without_a_request(endpoint):
    adapter = WebhookAdapter(settings(max_payload_bytes=256))
    await adapter.start()
    try:
        result = await adapter.send(device(endpoint.url("/big")), PUSH | {"preview": "x" * 300})
        small = await adapter.send(device(endpoint.url("/small")), PUSH)
    finally:
        await adapter.close()
    assert result.outcome == "failed"
    assert "over the limit of 256" in result.detail
    assert small.outcome == "sent"
    assert [r.path for r in endpoint.received] == ["/small"]


async def test_a_loopback_endpoint_is_refused_without_a_request(endpoint):
    adapter = WebhookAdapter(settings(allow_private_endpoints=False))
    await adapter.start()
    try:
        results = [
            await adapter.send(device(endpoint.url("/ssrf", host=host)), PUSH)
            for host in ("127.0.0.1", "localhost", "[::ffff:127.0.0.1]")
        ]
        bad_scheme = await adapter.send(device(f"ftp://127.0.0.1:{endpoint.port}/"), PUSH)
    finally:
        await adapter.close()
    for result in [*results, bad_scheme]:
        assert result.outcome == "failed"
    assert "loopback address" in results[0].detail
    assert "http or https" in bad_scheme.detail
    assert endpoint.received == []


async def test_an_endpoint_that_does_not_answer_in_time_is_retry(endpoint):
    adapter = WebhookAdapter(settings(timeout_seconds=0.2))
    await adapter.start()
    try:
        result = await adapter.send(device(endpoint.url("/hang/1")), PUSH)
    finally:
        await adapter.close()
    assert result.outcome == "retry"
    assert "did not answer in time" in result.detail
    assert [r.path for r in endpoint.received] == ["/hang/1"]  # it did get there


async def test_an_endpoint_that_refuses_connections_is_retry(adapter):
    with socket.socket() as bound:  # bound, not listening: a connection is refused
        bound.bind(("127.0.0.1", 0))
        result = await adapter.send(device(f"http://127.0.0.1:{bound.getsockname()[1]}/"), PUSH)
    assert result.outcome == "retry"
    assert "ConnectError" in result.detail


def app_with(section: dict[str, Any]) -> App:
    return App.from_config(
        overrides={"push_webhook": section},
        entry_points=False,
        extra_plugins=[chatcore_push_webhook],
    )


def test_the_adapter_is_contributed_only_with_a_secret(caplog):
    app = app_with({"secret": SECRET, "timeout_seconds": 2})
    [[adapter]] = app.hook.chatcore_push_adapters(app=app)
    assert isinstance(adapter, WebhookAdapter)
    assert (adapter.platform, adapter.max_payload_bytes) == ("webhook", 4096)
    assert adapter.settings.timeout_seconds == 2
    assert adapter.settings.allow_private_endpoints is False

    app = app_with({})
    with caplog.at_level(logging.INFO, logger="chatcore.server.push.off"):
        assert app.hook.chatcore_push_adapters(app=app) == []
        assert app.hook.chatcore_push_adapters(app=app) == []
    off = [r for r in caplog.records if "webhook pushes are off" in r.getMessage()]
    assert len(off) == 1


def test_a_blank_secret_is_a_config_error():
    with pytest.raises(ConfigError, match="must not be empty"):
        app_with({"secret": "  "})
    assert "s3cret" not in repr(settings())  # the secret stays out of logs and reprs
