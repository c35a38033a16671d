"""chatcore_apns against a real HTTP/2 server on a loopback port standing in for APNs.

The stand-in is hypercorn serving a small ASGI app over TLS, with a certificate authority made
here and trusted through `ca_file`, negotiating h2 by ALPN as api.push.apple.com does. TLS
rather than cleartext h2c: the adapter then runs exactly as in production (https, ALPN,
certificate verified), and the test sees from the ASGI scope that the request came over
HTTP/2. It records exactly what it receives; each test says what it answers.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypercorn.asyncio import serve
from hypercorn.config import Config

import chatcore_apns
from chatcore.models import Device
from chatcore.server.app import App, StartupError
from chatcore.settings import ConfigError
from chatcore.testing.tls import make_tls
from chatcore_apns.adapter import ApnsAdapter
from chatcore_apns.payload import MAX_BODY_BYTES, MAX_PUSH_BYTES, NEW_MESSAGE
from chatcore_apns.settings import ApnsSettings
from chatcore_apns.token import RENEW_AFTER_SECONDS, ProviderToken

pytestmark = pytest.mark.anyio

KEY_ID = "ABC123DEFG"
TEAM_ID = "TEAM456XYZ"
TOPIC = "com.example.chat"
TOKEN = "a1b2c3d4" * 8  # 32 bytes, as iOS makes them
SIGNING_KEY = ec.generate_private_key(ec.SECP256R1())
PEM = SIGNING_KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()

GROUP_PUSH = {
    "type": "message",
    "room_id": "0f3c9a",
    "message_id": "m1",
    "seq": 7,
    "ts": 1_700_000_000_000,
    "sender_id": "u2",
    "sender_name": "Ann",
    "room_name": 'Climbing "crew"',
    "preview": "héllo ✓",
    "direct": False,
    "mention": False,
}
ID_ONLY = {"type": "message", "room_id": "0f3c9a", "message_id": "m1", "seq": 7}


# --- the APNs stand-in ------------------------------------------------------------------------


@dataclass
class Received:
    http_version: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int

    @property
    def bearer(self) -> str:
        scheme, _, token = self.headers["authorization"].partition(" ")
        assert scheme == "bearer"
        return token

    def json(self) -> Any:
        return json.loads(self.body)


#: What the stand-in answers: status, headers, JSON body (None: an empty body). `respond` may
#: also be a coroutine function, to wait without blocking the server's other streams.
Answer = tuple[int, dict[str, str], dict[str, Any] | None]
HANG: Answer = (0, {}, None)


def ok(request: Received) -> Answer:
    return 200, {"apns-id": "5E3B2A10-0000-0000-0000-000000000000"}, None


@dataclass
class Apns:
    port: int
    ca_file: str
    received: list[Received] = field(default_factory=list)
    respond: Callable[[Received], Answer | Awaitable[Answer]] = ok
    release: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def apns_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Apns]:
    """hypercorn on a loopback port, TLS with ALPN h2, in a thread with its own event loop."""
    ca, cert, key = make_tls(tmp_path_factory.mktemp("apns-tls"))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    # Listening before hypercorn runs: a connection made before its accept loop starts waits in
    # the backlog instead of being refused.
    sock.listen(128)
    state = Apns(port=sock.getsockname()[1], ca_file=str(ca))

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {name.decode(): value.decode() for name, value in scope["headers"]}
        got = Received(
            scope["http_version"], scope["method"], scope["path"], headers, body, scope["client"][1]
        )
        state.received.append(got)
        answer = state.respond(got)
        if inspect.isawaitable(answer):
            answer = await answer
        if answer is HANG:  # never answers in time: released at the test's end
            await asyncio.to_thread(state.release.wait, 30)
            return
        status, extra, payload = answer
        content = json.dumps(payload).encode() if payload is not None else b""
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode(), v.encode()) for k, v in extra.items()],
            }
        )
        await send({"type": "http.response.body", "body": content})

    config = Config()
    config.bind = [f"fd://{sock.detach()}"]  # hypercorn owns the socket from here
    config.certfile, config.keyfile = str(cert), str(key)
    config.alpn_protocols = ["h2"]
    config.accesslog = config.errorlog = None
    config.graceful_timeout = 0.5
    started = threading.Event()
    loop: asyncio.AbstractEventLoop | None = None
    stop: asyncio.Event | None = None

    async def main() -> None:
        nonlocal loop, stop
        loop, stop = asyncio.get_running_loop(), asyncio.Event()
        started.set()
        await serve(app, config, shutdown_trigger=stop.wait, mode="asgi")  # type: ignore[arg-type]

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert started.wait(10), "the APNs stand-in did not start"
    try:
        yield state
    finally:
        state.release.set()
        assert loop is not None and stop is not None
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)


@pytest.fixture
def apns(apns_server: Apns) -> Iterator[Apns]:
    """The stand-in, fresh for one test: nothing received, answering 200."""
    apns_server.received, apns_server.respond = [], ok
    apns_server.release = threading.Event()
    yield apns_server
    apns_server.release.set()
    # APNs speaks HTTP/2 only: whatever a test sent must have arrived over it.
    assert {r.http_version for r in apns_server.received} <= {"2"}


def settings(apns: Apns, **overrides: Any) -> ApnsSettings:
    values = {
        "key": PEM,
        "key_id": KEY_ID,
        "team_id": TEAM_ID,
        "topic": TOPIC,
        "api_url": apns.url,
        "ca_file": apns.ca_file,
        "timeout_seconds": 2,
        **overrides,
    }
    return ApnsSettings(**values)


@pytest.fixture
async def adapter(apns: Apns) -> Any:
    adapter = ApnsAdapter(settings(apns))
    await adapter.start()
    yield adapter
    await adapter.close()


def device(token: str = TOKEN) -> Device:
    return Device(id="d1", user_id="u1", platform="apns", token=token, created_ts=1)


def json_size(push: dict[str, Any]) -> int:
    """Bytes of the push as compact UTF-8 JSON, as the adapter measures it."""
    return len(json.dumps(push, separators=(",", ":"), ensure_ascii=False).encode())


def verified_claims(bearer: str) -> dict[str, Any]:
    """The provider token's claims, checked as APNs checks them: ES256 with our public key."""
    assert jwt.get_unverified_header(bearer) == {"alg": "ES256", "kid": KEY_ID}
    claims: dict[str, Any] = jwt.decode(bearer, SIGNING_KEY.public_key(), algorithms=["ES256"])
    return claims


# --- what APNs receives -----------------------------------------------------------------------


async def test_a_group_push_arrives_over_http2_as_an_alert_with_the_push(apns) -> None:
    adapter = ApnsAdapter(settings(apns, expiration_seconds=3600))
    await adapter.start()
    try:
        before = int(time.time())
        result = await adapter.send(device(), GROUP_PUSH)
        after = int(time.time())
    finally:
        await adapter.close()

    assert (result.outcome, result.detail) == ("sent", "HTTP 200")
    [got] = apns.received
    assert got.http_version == "2"
    assert (got.method, got.path) == ("POST", f"/3/device/{TOKEN}")
    assert got.headers["apns-topic"] == TOPIC
    assert got.headers["apns-push-type"] == "alert"
    assert got.headers["apns-priority"] == "10"
    assert before + 3600 <= int(got.headers["apns-expiration"]) <= after + 3600
    assert "apns-collapse-id" not in got.headers
    claims = verified_claims(got.bearer)
    assert set(claims) == {"iss", "iat"}
    assert claims["iss"] == TEAM_ID and before <= claims["iat"] <= after
    assert got.json() == {
        "aps": {
            "alert": {"title": 'Climbing "crew"', "body": "Ann: héllo ✓"},
            "sound": "default",
            "thread-id": "0f3c9a",
            "mutable-content": 1,
        },
        "chatcore": GROUP_PUSH,
    }


async def test_a_direct_push_is_titled_with_the_sender(adapter, apns) -> None:
    direct = {**GROUP_PUSH, "direct": True, "room_name": "Ann & Bob"}
    assert (await adapter.send(device(), direct)).outcome == "sent"
    [got] = apns.received
    assert got.json()["aps"]["alert"] == {"title": "Ann", "body": "héllo ✓"}
    assert got.json()["chatcore"] == direct


async def test_an_id_only_push_says_new_message_for_the_extension_to_fill(adapter, apns) -> None:
    assert (await adapter.send(device(), ID_ONLY)).outcome == "sent"
    [got] = apns.received
    assert got.json() == {
        "aps": {
            "alert": {"title": NEW_MESSAGE},
            "sound": "default",
            "thread-id": "0f3c9a",
            "mutable-content": 1,
        },
        "chatcore": ID_ONLY,
    }


async def test_long_names_and_previews_are_cut_and_the_limit_fills_4096_bytes(apns) -> None:
    adapter = ApnsAdapter(settings(apns))
    await adapter.start()
    try:
        # A room id over its 64 bytes of thread id, a name over the title's 128: both cut.
        widest = {**GROUP_PUSH, "room_id": "r" * 80, "room_name": "é" * 200, "preview": ""}
        room = MAX_PUSH_BYTES - json_size(widest)
        exact = {**widest, "preview": "x" * room}
        assert json_size(exact) == MAX_PUSH_BYTES
        assert (await adapter.send(device(), exact)).outcome == "sent"
        over = await adapter.send(device(), {**exact, "preview": "x" * (room + 1)})
    finally:
        await adapter.close()
    assert over.outcome == "failed" and str(MAX_PUSH_BYTES) in over.detail
    [got] = apns.received  # the over-size push was not sent
    assert MAX_BODY_BYTES - 4 <= len(got.body) <= MAX_BODY_BYTES
    alert = got.json()["aps"]["alert"]
    assert alert["title"] == "é" * 62 + "…"  # 124 + 3 bytes of the 128
    assert alert["body"].startswith("Ann: xxx") and alert["body"].endswith("…")
    assert len(alert["body"].encode()) <= 512
    assert got.json()["aps"]["thread-id"] == "r" * 61 + "…"
    assert got.json()["chatcore"] == exact


async def test_the_provider_token_and_connection_are_reused_across_pushes(adapter, apns) -> None:
    for _ in range(3):
        assert (await adapter.send(device(), ID_ONLY)).outcome == "sent"
    first, *others = apns.received
    assert [r.bearer for r in others] == [first.bearer] * 2
    assert {r.client_port for r in apns.received} == {first.client_port}, "one connection"


def test_a_provider_token_is_renewed_after_50_minutes_and_on_expiry_once() -> None:
    tokens = ProviderToken(SIGNING_KEY, KEY_ID, TEAM_ID)
    start = 1_700_000_000.0
    first = tokens.current(start)
    assert verified_claims(first) == {"iss": TEAM_ID, "iat": 1_700_000_000}
    assert tokens.current(start + RENEW_AFTER_SECONDS - 1) == first
    second = tokens.current(start + RENEW_AFTER_SECONDS)
    assert second != first
    assert verified_claims(second)["iat"] == 1_700_000_000 + 50 * 60

    third = tokens.renew(second, start + RENEW_AFTER_SECONDS + 5)
    assert third != second and verified_claims(third)["iat"] == 1_700_003_005
    # Another push that failed with the second token as well: the third serves, no new one.
    assert tokens.renew(second, start + RENEW_AFTER_SECONDS + 6) == third


async def test_an_expired_provider_token_is_replaced_and_the_push_sent_once_more(
    adapter, apns
) -> None:
    stale: list[str] = []

    def expire_the_first_token(request: Received) -> Answer:
        if not stale:
            stale.append(request.bearer)
        if request.bearer == stale[0]:
            return 403, {}, {"reason": "ExpiredProviderToken"}
        return ok(request)

    apns.respond = expire_the_first_token
    result = await adapter.send(device(), GROUP_PUSH)
    assert result.outcome == "sent", result
    first, retried = apns.received
    assert retried.bearer != first.bearer
    assert verified_claims(retried.bearer)["iss"] == TEAM_ID
    assert retried.body == first.body and retried.path == first.path

    assert (await adapter.send(device(), ID_ONLY)).outcome == "sent"
    assert apns.received[2].bearer == retried.bearer, "the new token is kept"
    assert len(apns.received) == 3


async def test_pushes_in_flight_when_the_token_expires_renew_it_once(adapter, apns) -> None:
    stale: list[str] = []
    arrived = 0
    all_three = threading.Event()

    async def expire_the_first_token(request: Received) -> Answer:
        nonlocal arrived
        if not stale:
            stale.append(request.bearer)
        if request.bearer != stale[0]:
            return ok(request)
        arrived += 1
        if arrived == 3:
            all_three.set()
        # The three are in flight together before any answer comes back.
        await asyncio.to_thread(all_three.wait, 5)
        return 403, {}, {"reason": "ExpiredProviderToken"}

    apns.respond = expire_the_first_token
    results = await asyncio.gather(*(adapter.send(device(), ID_ONLY) for _ in range(3)))
    assert [r.outcome for r in results] == ["sent"] * 3
    assert all_three.is_set()
    retried = apns.received[3:]
    assert len(retried) == 3
    assert len({r.bearer for r in retried}) == 1, "one new token for all three"
    assert retried[0].bearer != stale[0]


async def test_a_new_token_refused_as_expired_too_fails_after_one_retry(adapter, apns) -> None:
    apns.respond = lambda request: (403, {}, {"reason": "ExpiredProviderToken"})
    result = await adapter.send(device(), ID_ONLY)
    assert result.outcome == "failed"
    assert "ExpiredProviderToken" in result.detail
    assert len(apns.received) == 2


@pytest.mark.parametrize(
    ("status", "headers", "reason", "outcome", "retry_after"),
    [
        (200, {}, None, "sent", None),
        (410, {}, "Unregistered", "gone", None),
        (410, {}, "ExpiredToken", "gone", None),
        (400, {}, "BadDeviceToken", "gone", None),
        (400, {}, "DeviceTokenNotForTopic", "gone", None),
        (400, {}, "BadTopic", "failed", None),
        (400, {}, "PayloadEmpty", "failed", None),
        (403, {}, "InvalidProviderToken", "failed", None),
        (404, {}, "BadPath", "failed", None),
        (413, {}, "PayloadTooLarge", "failed", None),
        (429, {"retry-after": "7"}, "TooManyRequests", "retry", 7.0),
        (429, {}, "TooManyProviderTokenUpdates", "retry", None),
        (500, {}, "InternalServerError", "retry", None),
        (503, {"retry-after": "120"}, "ServiceUnavailable", "retry", 120.0),
    ],
)
async def test_each_answer_of_apns_is_its_outcome(
    adapter, apns, status, headers, reason, outcome, retry_after
) -> None:
    body = {"reason": reason, "timestamp": 1_700_000_000_000} if reason else None
    apns.respond = lambda request: (status, headers, body)
    result = await adapter.send(device(), ID_ONLY)
    assert (result.outcome, result.retry_after_seconds) == (outcome, retry_after)
    assert result.detail == f"HTTP {status}" + (f": {reason}" if reason else "")
    assert len(apns.received) == 1


async def test_apns_not_answering_in_time_or_unreachable_is_retry(apns) -> None:
    apns.respond = lambda request: HANG
    # Long enough for the TLS and HTTP/2 handshakes on a loaded machine, so the request does
    # reach the service and it is the answer that times out.
    adapter = ApnsAdapter(settings(apns, timeout_seconds=1.5))
    await adapter.start()
    try:
        result = await adapter.send(device(), ID_ONLY)
    finally:
        await adapter.close()
    assert (result.outcome, result.detail) == ("retry", "APNs did not answer in time")
    assert len(apns.received) == 1  # it did get there

    with socket.socket() as bound:  # bound, not listening: the connection is refused
        bound.bind(("127.0.0.1", 0))
        closed = f"https://127.0.0.1:{bound.getsockname()[1]}"
        adapter = ApnsAdapter(settings(apns, api_url=closed))
        await adapter.start()
        try:
            result = await adapter.send(device(), ID_ONLY)
        finally:
            await adapter.close()
    assert result.outcome == "retry" and "ConnectError" in result.detail


async def test_the_certificate_is_verified(apns) -> None:
    adapter = ApnsAdapter(settings(apns, ca_file=None))  # the system's CAs: ours is unknown
    await adapter.start()
    try:
        result = await adapter.send(device(), ID_ONLY)
    finally:
        await adapter.close()
    assert result.outcome == "retry" and "CERTIFICATE_VERIFY_FAILED" in result.detail
    assert apns.received == []


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a1b2c3d4" * 8 + "0", "zz" * 32, "../../../x" + "0" * 32, "a1 b2" * 10, "00" * 101],
)
async def test_a_token_that_is_not_hex_is_refused_without_a_request(adapter, apns, token) -> None:
    result = await adapter.send(device(token), ID_ONLY)
    assert (result.outcome, result.detail) == ("failed", "the device token is not APNs' hex")
    assert apns.received == []


async def test_a_push_over_max_payload_bytes_is_refused_without_a_request(apns) -> None:
    adapter = ApnsAdapter(settings(apns, max_payload_bytes=256))
    await adapter.start()
    try:
        result = await adapter.send(device(), {**GROUP_PUSH, "preview": "x" * 200})
        small = await adapter.send(device(), GROUP_PUSH)
    finally:
        await adapter.close()
    assert (result.outcome, "over the limit of 256" in result.detail) == ("failed", True)
    assert small.outcome == "sent"
    assert len(apns.received) == 1


async def test_the_key_can_come_from_a_p8_file(apns, tmp_path) -> None:
    path = tmp_path / "AuthKey_ABC123DEFG.p8"
    path.write_text(PEM)
    adapter = ApnsAdapter(settings(apns, key=None, key_file=str(path)))
    await adapter.start()
    try:
        assert (await adapter.send(device(), ID_ONLY)).outcome == "sent"
    finally:
        await adapter.close()
    assert verified_claims(apns.received[0].bearer)["iss"] == TEAM_ID


async def test_an_unreadable_or_wrong_key_file_stops_the_start(apns, tmp_path) -> None:
    missing = ApnsAdapter(settings(apns, key=None, key_file=str(tmp_path / "none.p8")))
    with pytest.raises(StartupError, match=r"apns.key_file .*none.p8: cannot be read"):
        await missing.start()

    rsa_pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=1024)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    (tmp_path / "rsa.p8").write_text(rsa_pem)
    wrong = ApnsAdapter(settings(apns, key=None, key_file=str(tmp_path / "rsa.p8")))
    with pytest.raises(StartupError, match="not a P-256") as error:
        await wrong.start()
    assert rsa_pem.splitlines()[1] not in str(error.value)


# --- config and the hook ----------------------------------------------------------------------


def app_with(section: dict[str, Any]) -> App:
    return App.from_config(
        overrides={"apns": section}, entry_points=False, extra_plugins=[chatcore_apns]
    )


def test_the_adapter_is_offered_only_when_configured(caplog) -> None:
    app = app_with({"key": PEM, "key_id": KEY_ID, "team_id": TEAM_ID, "topic": TOPIC})
    [[adapter]] = app.hook.chatcore_push_adapters(app=app)
    assert isinstance(adapter, ApnsAdapter)
    assert (adapter.platform, adapter.max_payload_bytes) == ("apns", MAX_PUSH_BYTES)
    assert adapter.url == "https://api.push.apple.com"

    sandbox = app_with(
        {"key": PEM, "key_id": KEY_ID, "team_id": TEAM_ID, "topic": TOPIC, "environment": "sandbox"}
    )
    [[adapter]] = sandbox.hook.chatcore_push_adapters(app=sandbox)
    assert adapter.url == "https://api.sandbox.push.apple.com"

    app = app_with({})
    with caplog.at_level(logging.INFO, logger="chatcore.server.push.off"):
        assert app.hook.chatcore_push_adapters(app=app) == []
        assert app.hook.chatcore_push_adapters(app=app) == []
    off = [r for r in caplog.records if "APNs pushes are off" in r.getMessage()]
    assert len(off) == 1


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"key": PEM, "team_id": TEAM_ID}, "missing: key_id, topic"),
        ({"key_id": KEY_ID, "team_id": TEAM_ID, "topic": TOPIC}, "missing: key (or key_file)"),
        ({"topic": TOPIC}, "missing: key (or key_file), key_id, team_id"),
        (
            {"key": PEM, "key_file": "k.p8", "key_id": KEY_ID, "team_id": TEAM_ID, "topic": TOPIC},
            "set key or key_file, not both",
        ),
        ({"key": PEM, "key_id": "abc", "team_id": TEAM_ID, "topic": TOPIC}, "key_id"),
        ({"key": PEM, "key_id": KEY_ID, "team_id": TEAM_ID, "topic": "a b"}, "topic"),
        (
            {
                "key": PEM,
                "key_id": KEY_ID,
                "team_id": TEAM_ID,
                "topic": TOPIC,
                "api_url": "http://x",
            },
            "api_url",
        ),
        ({"environment": "staging"}, "environment"),
    ],
)
def test_settings_errors_say_what_is_wrong(section, message) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        app_with(section)


@pytest.mark.parametrize(
    "key",
    [
        ec.generate_private_key(ec.SECP384R1()),
        rsa.generate_private_key(public_exponent=65537, key_size=1024),
    ],
)
def test_a_key_that_is_not_p256_is_a_config_error_that_does_not_echo_it(key) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    section = {"key": pem, "key_id": KEY_ID, "team_id": TEAM_ID, "topic": TOPIC}
    with pytest.raises(ConfigError, match="key: not a P-256") as error:
        app_with(section)
    assert pem.splitlines()[1] not in str(error.value)
    with pytest.raises(ConfigError, match="key: not a PEM private key") as error:
        app_with({**section, "key": "MIGTAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBHkwdwIBAQQg"})
    assert "MIGTAgEA" not in str(error.value)
    assert "BEGIN" not in repr(ApnsSettings(key=PEM, key_id=KEY_ID, team_id=TEAM_ID, topic=TOPIC))
