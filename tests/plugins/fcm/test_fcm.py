"""chatcore_fcm against a real HTTP server on loopback standing in for Google: its OAuth token
endpoint and the FCM HTTP v1 `messages:send` endpoint, recording exactly what each gets.

The test is Google: it makes the service account's RSA key, checks the signed JWT with the
public half (PyJWT), and answers each request as the test asks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import anyio.to_thread
import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

import chatcore_fcm
from chatcore.models import Device
from chatcore.server.app import App
from chatcore.settings import ConfigError
from chatcore_fcm.adapter import FcmAdapter
from chatcore_fcm.settings import MAX_MEASURED_BYTES, MAX_PUSH_BYTES, FcmSettings

pytestmark = pytest.mark.anyio

PROJECT = "chat-proj-1"
EMAIL = "pusher@chat-proj-1.iam.gserviceaccount.com"
KEY_ID = "0123456789abcdef"
SEND_PATH = f"/v1/projects/{PROJECT}/messages:send"
DEVICE_TOKEN = "fcm-registration-token-1"

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()

GROUP_PUSH = {
    "type": "message",
    "room_id": "r1",
    "message_id": "m1",
    "seq": 7,
    "ts": 1_700_000_000_000,
    "sender_id": "u2",
    "sender_name": "Ann",
    "room_name": "Team ✓",
    "preview": 'héllo "there"',
    "direct": False,
    "mention": True,
}
ID_ONLY_PUSH = {"type": "message", "room_id": "r1", "message_id": "m1", "seq": 7}


# --- Google -----------------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


Answer = tuple[int, dict[str, str], bytes]


@dataclass
class Google:
    """The token endpoint (`/token`) and FCM (`/v1/projects/.../messages:send`).

    Each endpoint answers from its queue of answers in order, then by default: a new access
    token `tok-<n>` lasting `expires_in`, and 200 for a send. `token_gate`, when set, holds
    token requests until the test opens it; `hang_sends` makes sends never answer (both are
    released at teardown).
    """

    port: int = 0
    tokens: list[Received] = field(default_factory=list)
    sends: list[Received] = field(default_factory=list)
    token_answers: list[Answer] = field(default_factory=list)
    send_answers: list[Answer] = field(default_factory=list)
    expires_in: int = 3600
    token_gate: threading.Event | None = None
    token_arrived: threading.Event = field(default_factory=threading.Event)
    hang_sends: bool = False
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, path: str, received: Received) -> Answer | None:
        with self.lock:
            if path == "/token":
                self.tokens.append(received)
                self.token_arrived.set()
                if self.token_answers:
                    return self.token_answers.pop(0)
                token = {"access_token": f"tok-{len(self.tokens)}", "expires_in": self.expires_in}
                return 200, {}, orjson.dumps(token | {"token_type": "Bearer"})
            self.sends.append(received)
            if self.hang_sends:
                return None
            if self.send_answers:
                return self.send_answers.pop(0)
            return 200, {}, orjson.dumps({"name": f"projects/{PROJECT}/messages/1"})


@pytest.fixture
def google() -> Iterator[Google]:
    state = Google()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {name.lower(): value for name, value in self.headers.items()}
            received = Received(self.path, headers, body)
            if self.path == "/token" and state.token_gate is not None:
                state.token_arrived.set()
                state.token_gate.wait(10)
            answer = state.answer(self.path, received)
            if answer is None:
                state.release.wait(30)  # never answers in time: released at teardown
                return
            status, extra, content = answer
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    # A short poll interval: shutdown() waits for the next poll.
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        if state.token_gate is not None:
            state.token_gate.set()
        server.shutdown()
        server.server_close()
        thread.join()


# --- the server's config ----------------------------------------------------------------------


def account(token_uri: str | None, **changes: Any) -> dict[str, Any]:
    """A service account key as Google gives it (`None` drops a key)."""
    data = {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": KEY_ID,
        "private_key": PEM,
        "client_email": EMAIL,
        "client_id": "1234567890",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
#: Checked once: loading an RSA key checks it (some 70 ms), too slow to repeat in every test.
CONFIGURED = FcmSettings(service_account_json=json.dumps(account(GOOGLE_TOKEN_URI)))


def settings(google: Google, **overrides: Any) -> FcmSettings:
    """The checked config pointed at `google` (token_url overrides the key's token_uri),
    with `overrides` of plain fields."""
    values = {"api_url": google.url(), "token_url": google.url("/token"), "timeout_seconds": 2}
    return CONFIGURED.model_copy(update=values | overrides)


def device(token: str = DEVICE_TOKEN) -> Device:
    return Device(id="d1", user_id="u1", platform="fcm", token=token, created_ts=1)


class Started:
    """An adapter started for one test and closed after it."""

    def __init__(self, adapter_settings: FcmSettings) -> None:
        self.adapter = FcmAdapter(adapter_settings)

    async def __aenter__(self) -> FcmAdapter:
        await self.adapter.start()
        return self.adapter

    async def __aexit__(self, *exc: object) -> None:
        await self.adapter.close()


async def send(google: Google, push: dict[str, Any], **overrides: Any) -> Any:
    async with Started(settings(google, **overrides)) as adapter:
        return await adapter.send(device(), push)


async def waited(event: threading.Event) -> bool:
    """Wait (in a thread: the event loop keeps running) for a server-side event, 5 s at most."""
    return await anyio.to_thread.run_sync(event.wait, 5)


def google_error(status: int, code: str, message: str, *details: dict[str, Any]) -> bytes:
    error = {"code": status, "message": message, "status": code, "details": list(details)}
    return orjson.dumps({"error": error})


def fcm_error(code: str) -> dict[str, Any]:
    return {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}


# --- the access token -------------------------------------------------------------------------


async def test_the_token_is_fetched_with_a_jwt_signed_by_the_service_account(google) -> None:
    before = int(time.time())
    result = await send(google, GROUP_PUSH)
    assert result.outcome == "sent", result

    [got] = google.tokens
    assert got.path == "/token"
    assert got.headers["content-type"] == "application/x-www-form-urlencoded"
    form = parse_qs(got.body.decode(), strict_parsing=True)
    assert set(form) == {"grant_type", "assertion"}
    assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    [assertion] = form["assertion"]

    token_url = google.url("/token")
    claims = jwt.decode(assertion, KEY.public_key(), algorithms=["RS256"], audience=token_url)
    assert set(claims) == {"iss", "scope", "aud", "iat", "exp"}
    assert claims["iss"] == EMAIL
    assert claims["scope"] == "https://www.googleapis.com/auth/firebase.messaging"
    assert claims["aud"] == token_url
    assert before <= claims["iat"] <= time.time()
    assert claims["exp"] == claims["iat"] + 3600
    header = jwt.get_unverified_header(assertion)
    assert (header["alg"], header["kid"]) == ("RS256", KEY_ID)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(assertion, other.public_key(), algorithms=["RS256"], audience=token_url)

    [sent] = google.sends
    assert sent.headers["authorization"] == "Bearer tok-1"


async def test_the_token_is_reused_until_five_minutes_before_it_expires(google) -> None:
    async with Started(settings(google)) as adapter:
        results = [await adapter.send(device(), GROUP_PUSH) for _ in range(3)]
    assert [r.outcome for r in results] == ["sent"] * 3
    assert len(google.tokens) == 1
    assert [s.headers["authorization"] for s in google.sends] == ["Bearer tok-1"] * 3

    # 300 s left is inside the margin: each send fetches anew; 360 s is outside it.
    for expires_in, fetches in ((300, 2), (360, 1)):
        google.tokens.clear()
        google.expires_in = expires_in
        async with Started(settings(google)) as adapter:
            for _ in range(2):
                assert (await adapter.send(device(), GROUP_PUSH)).outcome == "sent"
        assert len(google.tokens) == fetches, expires_in


async def test_a_failed_early_renewal_keeps_the_token_in_hand(google) -> None:
    # 300 s left: due for renewal at once, still usable for 4 minutes. The renewal failing
    # (503) leaves the old token in use, and the next send tries again.
    google.expires_in = 300
    async with Started(settings(google)) as adapter:
        assert (await adapter.send(device(), GROUP_PUSH)).outcome == "sent"
        google.token_answers = [(503, {}, b"")]
        assert (await adapter.send(device(), GROUP_PUSH)).outcome == "sent"
        assert (await adapter.send(device(), GROUP_PUSH)).outcome == "sent"
    assert len(google.tokens) == 3
    assert [s.headers["authorization"] for s in google.sends] == [
        "Bearer tok-1",
        "Bearer tok-1",
        "Bearer tok-3",
    ]


async def test_concurrent_sends_share_one_token_fetch(google) -> None:
    google.token_gate = threading.Event()
    async with Started(settings(google)) as adapter:
        sends = [asyncio.create_task(adapter.send(device(), GROUP_PUSH)) for _ in range(8)]
        assert await waited(google.token_arrived)
        google.token_gate.set()
        results = await asyncio.gather(*sends)
    assert [r.outcome for r in results] == ["sent"] * 8
    assert len(google.tokens) == 1
    assert [s.headers["authorization"] for s in google.sends] == ["Bearer tok-1"] * 8


async def test_concurrent_sends_share_a_token_failure_too(google) -> None:
    # The token endpoint is down: the sends waiting for the one fetch share its failure
    # rather than each trying again behind it.
    google.token_gate = threading.Event()
    google.token_answers = [(503, {"Retry-After": "30"}, b"")]
    async with Started(settings(google)) as adapter:
        sends = [asyncio.create_task(adapter.send(device(), GROUP_PUSH)) for _ in range(4)]
        assert await waited(google.token_arrived)
        google.token_gate.set()
        results = await asyncio.gather(*sends)
        assert [(r.outcome, r.retry_after_seconds) for r in results] == [("retry", 30.0)] * 4
        assert (len(google.tokens), google.sends) == (1, [])
        # The next send, later, tries again.
        assert (await adapter.send(device(), GROUP_PUSH)).outcome == "sent"
    assert len(google.tokens) == 2


async def test_a_401_fetches_a_new_token_and_sends_once_more(google) -> None:
    google.send_answers = [(401, {}, google_error(401, "UNAUTHENTICATED", "expired"))]
    async with Started(settings(google)) as adapter:
        assert (await adapter.send(device(), GROUP_PUSH)).outcome == "sent"
        assert (await adapter.send(device(), GROUP_PUSH)).outcome == "sent"
    assert len(google.tokens) == 2
    assert [s.headers["authorization"] for s in google.sends] == [
        "Bearer tok-1",
        "Bearer tok-2",
        "Bearer tok-2",  # the new token is kept
    ]
    assert google.sends[0].body == google.sends[1].body


async def test_a_second_401_is_failed_without_a_third_try(google, caplog) -> None:
    refused: Answer = (
        401,
        {},
        google_error(401, "UNAUTHENTICATED", "Request had invalid credentials"),
    )
    google.send_answers = [refused, refused]
    with caplog.at_level(logging.ERROR, logger="chatcore_fcm.adapter"):
        result = await send(google, GROUP_PUSH)
    assert (result.outcome, result.detail) == (
        "failed",
        "HTTP 401: UNAUTHENTICATED: Request had invalid credentials",
    )
    assert (len(google.tokens), len(google.sends)) == (2, 2)
    assert EMAIL in caplog.text


async def test_a_401_for_missing_apple_credentials_is_failed_without_a_new_token(google) -> None:
    # THIRD_PARTY_AUTH_ERROR: the Firebase project lacks a usable APNs key; our token is fine.
    refused = google_error(
        401, "UNAUTHENTICATED", "Auth error from APNS", fcm_error("THIRD_PARTY_AUTH_ERROR")
    )
    google.send_answers = [(401, {}, refused)]
    async with Started(settings(google)) as adapter:
        result = await adapter.send(device(), GROUP_PUSH)
        assert (await adapter.send(device(), GROUP_PUSH)).outcome == "sent"
    assert result.outcome == "failed"
    assert "THIRD_PARTY_AUTH_ERROR" in result.detail
    assert len(google.tokens) == 1
    assert [s.headers["authorization"] for s in google.sends] == ["Bearer tok-1"] * 2


@pytest.mark.parametrize(
    ("answer", "outcome", "retry_after"),
    [
        ((500, {"Retry-After": "12"}, b"backend error"), "retry", 12.0),
        ((429, {}, b""), "retry", None),
        ((400, {}, b'{"error":"invalid_grant","error_description":"Invalid JWT"}'), "failed", None),
        ((401, {}, b'{"error":"invalid_client"}'), "failed", None),
        ((404, {}, b"not here"), "failed", None),  # not `gone`: no device was refused
        ((200, {}, b'{"token_type":"Bearer"}'), "retry", None),
    ],
)
async def test_a_token_endpoint_that_fails_sends_nothing(
    google, caplog, answer, outcome, retry_after
) -> None:
    google.token_answers = [answer, answer]
    with caplog.at_level(logging.ERROR, logger="chatcore_fcm.adapter"):
        async with Started(settings(google)) as adapter:
            results = [await adapter.send(device(), GROUP_PUSH) for _ in range(2)]
    for result in results:
        assert (result.outcome, result.retry_after_seconds) == (outcome, retry_after)
        assert result.detail.startswith(f"token endpoint: HTTP {answer[0]}")
    assert (len(google.tokens), google.sends) == (2, [])
    refusals = [r for r in caplog.records if "refused the service account" in r.getMessage()]
    assert len(refusals) == (1 if outcome == "failed" else 0)  # said once, not per send
    if answer[0] == 400:
        assert "invalid_grant: Invalid JWT" in refusals[0].getMessage()


async def test_an_unreachable_token_endpoint_is_retry(google) -> None:
    with socket.socket() as bound:  # bound, not listening: a connection is refused
        bound.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{bound.getsockname()[1]}/token"
        result = await send(google, GROUP_PUSH, token_url=closed)
    assert result.outcome == "retry"
    assert "ConnectError" in result.detail
    assert google.sends == []


# --- the message ------------------------------------------------------------------------------


async def test_a_group_push_with_a_preview_is_a_notification_and_string_data(google) -> None:
    result = await send(google, GROUP_PUSH, ttl_seconds=600)
    assert (result.outcome, result.detail) == ("sent", "HTTP 200")
    [got] = google.sends
    assert got.path == SEND_PATH
    assert got.headers["authorization"] == "Bearer tok-1"
    assert got.headers["content-type"] == "application/json"
    assert got.json() == {
        "message": {
            "token": DEVICE_TOKEN,
            "notification": {"title": "Team ✓", "body": 'Ann: héllo "there"'},
            "data": {
                "type": "message",
                "room_id": "r1",
                "message_id": "m1",
                "seq": "7",
                "ts": "1700000000000",
                "sender_id": "u2",
                "sender_name": "Ann",
                "room_name": "Team ✓",
                "preview": 'héllo "there"',
                "direct": "false",
                "mention": "true",
            },
            "android": {"priority": "high", "ttl": "600s"},
        }
    }


@pytest.mark.parametrize(
    ("changes", "notification"),
    [
        ({"direct": True}, {"title": "Ann", "body": 'héllo "there"'}),
        ({"room_name": None}, {"title": "Ann", "body": 'héllo "there"'}),
        ({"sender_name": None}, {"title": "Team ✓", "body": 'héllo "there"'}),
        (
            {"direct": True, "sender_name": None},
            {"title": "New message", "body": 'héllo "there"'},
        ),
    ],
)
async def test_the_notification_names_the_room_or_the_sender(google, changes, notification) -> None:
    push = {key: value for key, value in (GROUP_PUSH | changes).items() if value is not None}
    assert (await send(google, push)).outcome == "sent"
    [got] = google.sends
    assert got.json()["message"]["notification"] == notification
    assert got.json()["message"]["data"]["direct"] == str(push["direct"]).lower()


async def test_an_id_only_push_is_a_data_message_the_app_wakes_for(google) -> None:
    assert (await send(google, ID_ONLY_PUSH)).outcome == "sent"
    [got] = google.sends
    assert got.path == SEND_PATH
    assert got.json() == {
        "message": {
            "token": DEVICE_TOKEN,
            "data": {"type": "message", "room_id": "r1", "message_id": "m1", "seq": "7"},
            "android": {"priority": "high", "ttl": "86400s"},
            "apns": {
                "headers": {"apns-push-type": "background", "apns-priority": "5"},
                "payload": {"aps": {"content-available": 1}},
            },
        }
    }


def measured_bytes(message: dict[str, Any]) -> int:
    """What FCM's limit is checked against (chatcore_fcm.settings): the JSON of the message's
    notification and data, an upper bound on FCM's count and on the APNs JSON made of them."""
    return len(orjson.dumps({k: message[k] for k in ("notification", "data") if k in message}))


def filled(push: dict[str, Any], key: str, size: int) -> dict[str, Any]:
    """`push` with `key` padded so that its JSON is exactly `size` bytes."""
    empty = push | {key: ""}
    room = size - len(orjson.dumps(empty))
    return push | {key: "é" * (room // 2) + "x" * (room % 2)}


@pytest.mark.parametrize("key", ["preview", "room_name", "sender_name"])
async def test_a_push_of_the_limit_fits_fcm_and_one_byte_more_is_not_sent(google, key) -> None:
    # The preview travels twice (notification and data) in FCM's 4096 bytes, less 256 left
    # to what FCM adds on Apple devices: 2 * 1892 + 55 bytes of envelope <= 3840.
    assert (MAX_PUSH_BYTES, MAX_MEASURED_BYTES) == (1892, 3840)
    exact = filled(GROUP_PUSH, key, MAX_PUSH_BYTES)
    assert len(orjson.dumps(exact)) == MAX_PUSH_BYTES
    assert (await send(google, exact)).outcome == "sent"
    [got] = google.sends
    assert measured_bytes(got.json()["message"]) <= MAX_MEASURED_BYTES

    over = filled(GROUP_PUSH, key, MAX_PUSH_BYTES + 1)
    result = await send(google, over)
    assert result.outcome == "failed"
    assert f"over the limit of {MAX_PUSH_BYTES}" in result.detail
    assert len(google.sends) == 1, "an oversized push must not be sent"


async def test_a_lower_limit_is_kept(google) -> None:
    small = await send(google, filled(ID_ONLY_PUSH, "room_id", 101), max_payload_bytes=100)
    assert (small.outcome, small.detail) == ("failed", "push of 101 bytes over the limit of 100")
    assert (
        await send(google, filled(ID_ONLY_PUSH, "room_id", 100), max_payload_bytes=100)
    ).outcome == "sent"
    assert len(google.sends) == 1


# --- FCM's answers ----------------------------------------------------------------------------

UNREGISTERED_404 = google_error(
    404, "NOT_FOUND", "Requested entity was not found.", fcm_error("UNREGISTERED")
)
UNREGISTERED_400 = google_error(
    400, "INVALID_ARGUMENT", "Requested entity was not found.", fcm_error("UNREGISTERED")
)
BAD_TOKEN_400 = google_error(
    400,
    "INVALID_ARGUMENT",
    "The registration token is not a valid FCM registration token",
    fcm_error("INVALID_ARGUMENT"),
)
BAD_TOKEN_FIELD_400 = google_error(
    400,
    "INVALID_ARGUMENT",
    "Invalid value at 'message.token'",
    {
        "@type": "type.googleapis.com/google.rpc.BadRequest",
        "fieldViolations": [{"field": "message.token", "description": "Invalid value"}],
    },
)
BAD_DATA_400 = google_error(
    400,
    "INVALID_ARGUMENT",
    "Invalid value at 'message.data[0].value' (TYPE_STRING), 12",
    {
        "@type": "type.googleapis.com/google.rpc.BadRequest",
        "fieldViolations": [{"field": "message.data[0].value", "description": "Invalid"}],
    },
)
TOO_BIG_400 = google_error(
    400, "INVALID_ARGUMENT", "Request contains an invalid argument.", fcm_error("INVALID_ARGUMENT")
)
MISMATCH_403 = google_error(
    403, "PERMISSION_DENIED", "SenderId mismatch", fcm_error("SENDER_ID_MISMATCH")
)
QUOTA_429 = google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded", fcm_error("QUOTA_EXCEEDED"))
UNAVAILABLE_503 = google_error(503, "UNAVAILABLE", "Unavailable", fcm_error("UNAVAILABLE"))


@pytest.mark.parametrize(
    ("status", "headers", "body", "outcome", "retry_after", "detail"),
    [
        (200, {}, b'{"name":"projects/p/messages/1"}', "sent", None, "HTTP 200"),
        (404, {}, UNREGISTERED_404, "gone", None, "HTTP 404: UNREGISTERED: Requested entity"),
        # A 404 that is not Google's NOT_FOUND (a wrong api_url, a proxy) removes nothing.
        (404, {}, b"", "failed", None, "HTTP 404"),
        (404, {}, b"<html>no such page</html>", "failed", None, "HTTP 404: <html>no such"),
        (400, {}, UNREGISTERED_400, "gone", None, "HTTP 400: UNREGISTERED"),
        (400, {}, BAD_TOKEN_400, "gone", None, "HTTP 400: INVALID_ARGUMENT: The registration"),
        (400, {}, BAD_TOKEN_FIELD_400, "gone", None, "HTTP 400: INVALID_ARGUMENT: Invalid value"),
        (400, {}, BAD_DATA_400, "failed", None, "HTTP 400: INVALID_ARGUMENT: Invalid value at"),
        (400, {}, TOO_BIG_400, "failed", None, "HTTP 400: INVALID_ARGUMENT: Request contains"),
        (400, {}, b"<html>bad</html>", "failed", None, "HTTP 400: <html>bad</html>"),
        (403, {}, MISMATCH_403, "failed", None, "HTTP 403: SENDER_ID_MISMATCH: SenderId"),
        (429, {"Retry-After": "17"}, QUOTA_429, "retry", 17.0, "HTTP 429: QUOTA_EXCEEDED"),
        (503, {"Retry-After": "120"}, UNAVAILABLE_503, "retry", 120.0, "HTTP 503: UNAVAILABLE"),
        (500, {}, b"", "retry", None, "HTTP 500"),
        (302, {"Location": "http://169.254.169.254/"}, b"", "failed", None, "HTTP 302"),
    ],
)
async def test_each_answer_of_fcm_is_its_outcome(
    google, status, headers, body, outcome, retry_after, detail
) -> None:
    google.send_answers = [(status, headers, body)]
    result = await send(google, GROUP_PUSH)
    assert (result.outcome, result.retry_after_seconds) == (outcome, retry_after)
    assert result.detail.startswith(detail), result.detail
    assert [s.path for s in google.sends] == [SEND_PATH]  # one request, no redirect followed


async def test_fcm_not_answering_in_time_or_at_all_is_retry(google) -> None:
    google.hang_sends = True
    # 1.5 s: the request gets there on a loaded machine; it is the answer that times out.
    result = await send(google, GROUP_PUSH, timeout_seconds=1.5)
    assert (result.outcome, result.detail) == ("retry", "FCM: no answer in time")
    assert len(google.sends) == 1  # it did get there

    with socket.socket() as bound:  # bound, not listening: a connection is refused
        bound.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{bound.getsockname()[1]}"
        result = await send(google, GROUP_PUSH, api_url=closed)
    assert result.outcome == "retry"
    assert "ConnectError" in result.detail


# --- config -----------------------------------------------------------------------------------


def app_with(section: dict[str, Any]) -> App:
    return App.from_config(
        overrides={"fcm": section}, entry_points=False, extra_plugins=[chatcore_fcm]
    )


def test_the_adapter_is_offered_only_with_a_service_account(caplog) -> None:
    key = json.dumps(account("https://oauth2.googleapis.com/token"))
    app = app_with({"service_account_json": key, "ttl_seconds": 60})
    [[adapter]] = app.hook.chatcore_push_adapters(app=app)
    assert isinstance(adapter, FcmAdapter)
    assert (adapter.platform, adapter.max_payload_bytes) == ("fcm", MAX_PUSH_BYTES)
    assert adapter.settings.ttl_seconds == 60
    assert adapter.settings.api_url == "https://fcm.googleapis.com"

    app = app_with({})
    with caplog.at_level(logging.INFO, logger="chatcore.server.push.off"):
        assert app.hook.chatcore_push_adapters(app=app) == []
        assert app.hook.chatcore_push_adapters(app=app) == []
    off = [r for r in caplog.records if "FCM pushes are off" in r.getMessage()]
    assert len(off) == 1


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        (
            account("https://t.example/token", client_email=None, project_id=None),
            "lacks client_email, project_id",
        ),
        (account(None), "lacks token_uri"),
        (
            account("https://t.example/token", private_key="-----BEGIN PRIVATE KEY-----\nMIIE"),
            "private_key is not a PEM private key",
        ),
        (
            account("https://t.example/token", type="authorized_user"),
            "is a credential of type 'authorized_user', not a service account key",
        ),
        (account("http://t.example/token"), "token_uri must be an https URL"),
        (["not", "an", "object"], "is not a JSON object"),
    ],
)
def test_a_bad_service_account_json_is_a_clear_config_error(key, problem) -> None:
    with pytest.raises(ConfigError) as bad:
        app_with({"service_account_json": json.dumps(key)})
    message = str(bad.value)
    assert f"fcm: service_account_json {problem}" in message
    assert "MIIE" not in message and PEM[40:80] not in message  # the key is never echoed


def test_an_ec_key_or_text_that_is_not_json_is_refused() -> None:
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    key = json.dumps(account("https://t.example/token", private_key=ec_pem))
    with pytest.raises(ConfigError, match="private_key is not an RSA key"):
        app_with({"service_account_json": key})
    with pytest.raises(ConfigError, match="service_account_json is not JSON"):
        app_with({"service_account_json": PEM})
    assert PEM[40:80] not in repr(
        FcmSettings(service_account_json=json.dumps(account("https://t.example/token")))
    )


def test_both_forms_of_the_account_or_a_plain_http_api_are_config_errors(tmp_path) -> None:
    key = json.dumps(account("https://t.example/token"))
    with pytest.raises(ConfigError, match="service_account_file or service_account_json, not"):
        app_with({"service_account_json": key, "service_account_file": str(tmp_path / "k.json")})
    with pytest.raises(ConfigError, match="must be an https URL"):
        app_with({"service_account_json": key, "api_url": "http://fcm.example"})
    with pytest.raises(ConfigError, match="must be an https URL"):
        app_with({"service_account_json": key, "token_url": "http://oauth.example/token"})


async def test_the_service_account_file_is_read_at_start(google, tmp_path: Path) -> None:
    # No token_url: the key's own token_uri is where the token comes from.
    path = tmp_path / "service-account.json"
    path.write_text(json.dumps(account(google.url("/token"))))
    from_file = FcmSettings(service_account_file=path, api_url=google.url())
    async with Started(from_file) as adapter:
        assert (await adapter.send(device(), ID_ONLY_PUSH)).outcome == "sent"
    [got] = google.tokens
    assert got.path == "/token"
    assertion = parse_qs(got.body.decode())["assertion"][0]
    claims = jwt.decode(
        assertion, KEY.public_key(), algorithms=["RS256"], audience=google.url("/token")
    )
    assert claims["iss"] == EMAIL
    assert [s.path for s in google.sends] == [SEND_PATH]

    missing = FcmAdapter(
        FcmSettings(service_account_file=tmp_path / "nope.json", api_url=google.url())
    )
    with pytest.raises(ConfigError, match=r"nope\.json cannot be read: No such file"):
        await missing.start()

    path.write_text(json.dumps(account(google.url("/token"), project_id=None)))
    lacking = FcmAdapter(FcmSettings(service_account_file=path, api_url=google.url()))
    with pytest.raises(ConfigError, match=r"service-account\.json lacks project_id"):
        await lacking.start()
