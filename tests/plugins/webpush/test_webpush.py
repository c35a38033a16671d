"""chatcore_webpush against a real HTTP server on loopback standing in for a push service.

The test is the browser: it makes the subscription's keys, decrypts what the push service got
(http_ece, RFC 8291) and checks the VAPID token (PyJWT) with a public key it derived itself.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import socket
import threading
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import http_ece
import jwt
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import chatcore_webpush
from chatcore.cli import build_cli
from chatcore.models import Device, WebPushKeys
from chatcore.server.push import ssrf
from chatcore.settings import ConfigError, build_settings
from chatcore.state import State
from chatcore_webpush.adapter import WebPushAdapter
from chatcore_webpush.settings import MAX_PLAINTEXT_BYTES, WebPushSettings

SUBJECT = "mailto:ops@chat.example"
PUSH = {
    "type": "message",
    "room_id": "r1",
    "message_id": "m1",
    "seq": 7,
    "ts": 1_700_000_000_000,
    "sender_name": "Ann",
    "preview": "héllo ✓",
    "direct": True,
}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def point(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


# --- the push service -------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class PushService:
    """Answers each POST with `status` and `headers`, recording exactly what it got."""

    port: int = 0
    status: int = 201
    headers: dict[str, str] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    hang: threading.Event | None = None

    def url(self, path: str = "/push/sub-1") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def service() -> Iterator[PushService]:
    state = PushService()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            state.received.append(Received(self.path, dict(self.headers.items()), body))
            if state.hang is not None:
                state.hang.wait(30)  # never answers in time: released at teardown
                return
            self.send_response(state.status)
            for name, value in state.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        if state.hang is not None:
            state.hang.set()
        server.shutdown()
        server.server_close()
        thread.join()


# --- the browser and the server's config ------------------------------------------------------


@dataclass
class Browser:
    """A subscription's keys, made as a browser makes them."""

    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    def device(self, endpoint: str) -> Device:
        keys = WebPushKeys(p256dh=b64url(point(self.key)), auth=b64url(self.auth))
        return Device(
            id="d1", user_id="u1", platform="webpush", endpoint=endpoint, keys=keys, created_ts=1
        )

    def decrypt(self, body: bytes) -> bytes:
        plain: bytes = http_ece.decrypt(
            body, private_key=self.key, auth_secret=self.auth, version="aes128gcm"
        )
        return plain


VAPID = ec.generate_private_key(ec.SECP256R1())


def settings(**overrides: Any) -> WebPushSettings:
    raw = VAPID.private_numbers().private_value.to_bytes(32, "big")
    values = {
        "vapid_private_key": b64url(raw),
        "vapid_subject": SUBJECT,
        "allow_private_endpoints": True,
        **overrides,
    }
    return WebPushSettings(**values)


async def send(device: Device, push: dict[str, Any], **overrides: Any) -> Any:
    adapter = WebPushAdapter(settings(**overrides))
    await adapter.start()
    try:
        return await adapter.send(device, push)
    finally:
        await adapter.close()


# --- what the push service receives -----------------------------------------------------------


@pytest.mark.anyio
async def test_the_push_arrives_encrypted_for_the_subscription_and_signed(service) -> None:
    browser = Browser()
    result = await send(browser.device(service.url()), PUSH, ttl_seconds=600)

    assert result.outcome == "sent", result
    [got] = service.received
    assert got.path == "/push/sub-1"
    headers = {name.lower(): value for name, value in got.headers.items()}
    assert headers["content-encoding"] == "aes128gcm"
    assert headers["ttl"] == "600"
    assert json.loads(browser.decrypt(got.body)) == PUSH

    scheme, _, params = headers["authorization"].partition(" ")
    assert scheme == "vapid"
    parts = dict(p.strip().split("=", 1) for p in params.split(","))
    assert set(parts) == {"t", "k"}
    assert unb64url(parts["k"]) == point(VAPID)
    origin = f"http://127.0.0.1:{service.port}"
    claims = jwt.decode(parts["t"], VAPID.public_key(), algorithms=["ES256"], audience=origin)
    assert claims["sub"] == SUBJECT
    assert time.time() < claims["exp"] <= time.time() + 24 * 3600
    assert jwt.get_unverified_header(parts["t"])["alg"] == "ES256"


@pytest.mark.anyio
async def test_a_push_of_exactly_the_limit_fills_the_4096_bytes_and_one_more_fails(
    service,
) -> None:
    # RFC 8291 §4: 4096 bytes of body hold at most 3993 of plaintext in aes128gcm.
    assert MAX_PLAINTEXT_BYTES == 3993
    browser = Browser()
    exact = {**PUSH, "preview": ""}
    room = MAX_PLAINTEXT_BYTES - len(json.dumps(exact, separators=(",", ":")).encode())
    exact["preview"] = "x" * room
    assert (await send(browser.device(service.url()), exact)).outcome == "sent"
    [got] = service.received
    assert len(got.body) == 4096
    assert json.loads(browser.decrypt(got.body)) == exact

    over = {**exact, "preview": "x" * (room + 1)}
    result = await send(browser.device(service.url()), over)
    assert result.outcome == "failed"
    assert str(MAX_PLAINTEXT_BYTES) in result.detail
    assert len(service.received) == 1, "an oversized push must not be sent"


@pytest.mark.parametrize(
    ("status", "headers", "outcome", "retry_after"),
    [
        (201, {}, "sent", None),
        (200, {}, "sent", None),
        (404, {}, "gone", None),
        (410, {}, "gone", None),
        (429, {"Retry-After": "7"}, "retry", 7.0),
        (503, {"Retry-After": "Fri, 01 Jan 2100 00:00:00 GMT"}, "retry", "future"),
        (500, {}, "retry", None),
        (400, {}, "failed", None),
        (403, {}, "failed", None),
        (302, {"Location": "http://169.254.169.254/"}, "failed", None),
    ],
)
@pytest.mark.anyio
async def test_the_push_services_answer_is_the_outcome(
    service, status, headers, outcome, retry_after
) -> None:
    service.status, service.headers = status, headers
    result = await send(Browser().device(service.url()), PUSH)
    assert result.outcome == outcome, result
    if retry_after == "future":
        assert result.retry_after_seconds is not None and result.retry_after_seconds > 86400
    else:
        assert result.retry_after_seconds == retry_after
    assert len(service.received) == 1, "one request, redirects not followed"


@pytest.mark.anyio
async def test_an_unreachable_or_silent_push_service_is_retried(service) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    result = await send(Browser().device(f"http://127.0.0.1:{closed}/push/x"), PUSH)
    assert result.outcome == "retry", result

    service.hang = threading.Event()
    # 1.5 s: the handshakes fit on a loaded machine; it is the answer that times out.
    result = await send(Browser().device(service.url()), PUSH, timeout_seconds=1.5)
    assert result.outcome == "retry", result
    assert len(service.received) == 1


@pytest.mark.anyio
async def test_a_loopback_endpoint_is_refused_without_a_request(service) -> None:
    device = Browser().device(service.url())
    result = await send(device, PUSH, allow_private_endpoints=False)
    assert result.outcome == "failed"
    assert "loopback" in result.detail
    assert service.received == []


@pytest.mark.anyio
async def test_the_request_goes_to_the_checked_address_not_a_new_lookup(
    service, monkeypatch
) -> None:
    # Stands in for a name that resolved to a checked address: "push.invalid" has no DNS
    # answer, so the request reaches the service only through the address the check returned.
    checked: list[str] = []

    async def resolved(url: str, **options: Any) -> tuple[Any, ...]:
        checked.append(url)
        return (ipaddress.ip_address("127.0.0.1"),)

    monkeypatch.setattr(ssrf, "resolve_endpoint", resolved)
    endpoint = f"http://push.invalid:{service.port}/push/pinned"
    result = await send(Browser().device(endpoint), PUSH)
    assert result.outcome == "sent", result
    assert checked == [endpoint]
    [got] = service.received
    assert got.path == "/push/pinned"
    assert got.headers["Host"] == f"push.invalid:{service.port}"


@pytest.mark.anyio
async def test_plain_http_and_bad_keys_are_refused_without_a_request(service) -> None:
    # A public address, so only the scheme refuses it (nothing listens there for the test).
    result = await send(
        Browser().device("http://93.184.216.34/push/x"), PUSH, allow_private_endpoints=False
    )
    assert (result.outcome, "https" in result.detail) == ("failed", True)

    device = Browser(auth=os.urandom(8)).device(service.url())
    result = await send(device, PUSH)
    assert (result.outcome, "auth" in result.detail) == ("failed", True)
    off_curve = (
        Browser()
        .device(service.url())
        .model_copy(
            update={
                "keys": WebPushKeys(p256dh=b64url(b"\x04" + b"\x01" * 64), auth=b64url(b"a" * 16))
            }
        )
    )
    assert (await send(off_curve, PUSH)).outcome == "failed"
    assert service.received == []


# --- config and command -----------------------------------------------------------------------


def test_without_a_vapid_key_no_adapter_is_offered(caplog) -> None:
    """Off without a VAPID key, said once per app however often the hook is asked."""
    settings = build_settings({}, [("webpush", WebPushSettings)])
    app = SimpleNamespace(settings=settings, state=State())
    with caplog.at_level("INFO", logger="chatcore.server.push.off"):
        assert chatcore_webpush.chatcore_push_adapters(app) is None  # type: ignore[arg-type]
        assert chatcore_webpush.chatcore_push_adapters(app) is None  # type: ignore[arg-type]
    off = [r for r in caplog.records if "Web Push pushes are off" in r.getMessage()]
    assert len(off) == 1
    assert "vapid_private_key" in off[0].getMessage()

    key = b64url(VAPID.private_numbers().private_value.to_bytes(32, "big"))
    raw = {"webpush": {"vapid_private_key": key, "vapid_subject": SUBJECT}}
    app = SimpleNamespace(settings=build_settings(raw, [("webpush", WebPushSettings)]))
    [adapter] = chatcore_webpush.chatcore_push_adapters(app)  # type: ignore[arg-type,misc]
    assert (adapter.platform, adapter.max_payload_bytes) == ("webpush", MAX_PLAINTEXT_BYTES)


def test_the_vapid_settings_are_checked_without_echoing_the_key() -> None:
    pem = VAPID.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    assert settings(vapid_private_key=pem).vapid_private_key is not None

    wrong = b64url(os.urandom(40))
    with pytest.raises(ConfigError) as bad:
        build_settings(
            {"webpush": {"vapid_private_key": wrong, "vapid_subject": SUBJECT}},
            [("webpush", WebPushSettings)],
        )
    assert "vapid_private_key" in str(bad.value) and wrong not in str(bad.value)

    with pytest.raises(ConfigError, match="vapid_subject is required"):
        build_settings(
            {"webpush": {"vapid_private_key": b64url(os.urandom(32))}},
            [("webpush", WebPushSettings)],
        )


def loaded_public_key(private: str) -> bytes:
    key = ec.derive_private_key(int.from_bytes(unb64url(private), "big"), ec.SECP256R1())
    return point(key)


def test_vapid_keys_prints_config_lines_and_the_matching_public_key() -> None:
    result = CliRunner().invoke(build_cli(None), ["push", "vapid-keys"])
    assert result.exit_code == 0, result.output
    config, _, rest = result.output.partition("\n\n")
    section = tomllib.loads(config)["webpush"]
    assert section["vapid_subject"] == "mailto:admin@example.com"
    public = unb64url(rest.strip().splitlines()[-1])
    assert len(public) == 65 and public[0] == 4
    assert loaded_public_key(section["vapid_private_key"]) == public
    assert WebPushSettings(**section).vapid_private_key is not None

    result = CliRunner().invoke(build_cli(None), ["push", "vapid-keys", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) == {"vapid_private_key", "vapid_subject", "application_server_key"}
    public = unb64url(data["application_server_key"])
    assert loaded_public_key(data["vapid_private_key"]) == public
    assert data["vapid_private_key"] != section["vapid_private_key"], "a new pair each time"
