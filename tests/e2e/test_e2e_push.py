"""Pushes to members with no live session, end to end: a real server (and a 2-node cluster on
each cluster deployment, see conftest.py), real webhook and Web Push adapters, and a real HTTP
server on loopback standing in for where the pushes go (`chatcore.testing.push_receiver`).

The server polls its push queue only every 30 s here, so a push that arrives within the tests'
waits was sent because its message was stored, not found by a poll.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from collections.abc import Iterator
from typing import Any

import http_ece
import jwt
import orjson
import pytest
from conftest import start_service
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from e2e_support import Crowd, Person, befriend, expect

from chatcore.testing.push_receiver import PushReceiver, Received
from chatcore.testing.server import TIMEOUT_SCALE, ServerProcess
from chatcore.testing.wsclient import WSClient

pytestmark = [pytest.mark.anyio, pytest.mark.e2e, pytest.mark.core_suite]

SECRET = "push-e2e-secret"
VAPID = ec.generate_private_key(ec.SECP256R1())
SUBJECT = "mailto:ops@example.com"
WAIT = 10 * TIMEOUT_SCALE


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_point(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


@pytest.fixture(scope="module")
def receiver() -> Iterator[PushReceiver]:
    with PushReceiver() as running:
        yield running


@pytest.fixture(scope="module")
def push_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PushReceiver]:
    """A Web Push service: https only, with a CA the server is told to trust."""
    with PushReceiver(tls_folder=tmp_path_factory.mktemp("tls")) as running:
        yield running


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, push_service: PushReceiver, deployment: str
) -> Iterator[Any]:
    overrides = {
        "push": {"poll_seconds": 30, "retry_base_seconds": 0.05, "retry_max_seconds": 0.2},
        "push_webhook": {
            "secret": SECRET,
            "allow_private_endpoints": True,
            "timeout_seconds": 30,  # the outage test holds a request open on purpose
        },
        "webpush": {
            "vapid_private_key": b64url(VAPID.private_numbers().private_value.to_bytes(32, "big")),
            "vapid_subject": SUBJECT,
            "allow_private_endpoints": True,
            "ca_file": push_service.ca_file,
        },
    }
    with start_service(tmp_path_factory.mktemp("push"), deployment, overrides) as running:
        yield running


def verified(got: Received) -> dict[str, Any]:
    """The webhook push's JSON, after checking its signature as a receiver would."""
    timestamp = got.headers["X-Chatcore-Timestamp"]
    mac = hmac.new(SECRET.encode(), timestamp.encode() + b"." + got.body, hashlib.sha256)
    assert hmac.compare_digest(got.headers["X-Chatcore-Signature"], "sha256=" + mac.hexdigest())
    assert abs(time.time() - int(timestamp)) < 60
    push: dict[str, Any] = orjson.loads(got.body)
    return push


async def webhook_device(person: Person, receiver: PushReceiver, path: str) -> dict[str, Any]:
    device = {"platform": "webhook", "endpoint": receiver.url(path)}
    created: dict[str, Any] = expect(await person.post("/push/devices", device), 201)
    return created


async def send(ws: WSClient, room_id: str, body: str) -> dict[str, Any]:
    """Send over the session; the ack's message (asserting it was accepted)."""
    message: dict[str, Any] = await ws.send_message(room_id, body)
    return message


async def until_online(observer: Person, contact: Person) -> None:
    """Wait until the observer's node reports `contact` online (presence crosses nodes in a
    cluster; the sender's node must know before it decides who is offline)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        contacts = expect(await observer.get("/contacts"), 200)["contacts"]
        if any(c["user"]["id"] == contact.id and c["presence"] == "online" for c in contacts):
            return
    raise TimeoutError(f"{contact.id} never showed online to {observer.id}")


async def test_an_offline_member_gets_a_signed_webhook_push_of_the_message(
    server: ServerProcess, receiver: PushReceiver
) -> None:
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        await webhook_device(bob, receiver, "/bob")
        room = await alice.direct(bob)
        ws = await crowd.session(alice)
        sent_at = time.monotonic()
        message = await send(ws, room["id"], "Lunch at 12? @" + bob.user.username)
        push = verified(await receiver.next("/bob"))
        print(f"push arrived {1000 * (time.monotonic() - sent_at):.0f} ms after the send")
        assert push == {
            "type": "message",
            "room_id": room["id"],
            "message_id": message["id"],
            "seq": message["seq"],
            "ts": message["ts"],
            "sender_id": alice.id,
            "sender_name": alice.user.user["display_name"] or alice.user.username,
            "preview": "Lunch at 12? @" + bob.user.username,
            "direct": True,
            "mention": True,
        }


async def test_a_member_online_on_any_node_gets_no_push(
    server: ServerProcess, receiver: PushReceiver
) -> None:
    async with Crowd(server) as crowd:
        alice, bob, carol = await crowd.people(3)
        for person, path in ((bob, "/online-bob"), (carol, "/offline-carol")):
            await webhook_device(person, receiver, path)
        await befriend(alice, bob)
        room = await alice.group("team", [bob, carol])
        ws, _bob_ws = await crowd.sessions_of(alice, bob)  # on different nodes in a cluster
        await until_online(alice, bob)
        for text in ("one", "two"):
            await send(ws, room["id"], text)
            push = verified(await receiver.next("/offline-carol"))
            assert push["preview"] == text and push["room_name"] == "team"
            assert push["direct"] is False and push["mention"] is False
        # Both messages' pushes were decided and queued together with carol's, which came.
        assert receiver.count("/online-bob") == 0


async def test_a_blocker_gets_no_push_of_the_blocked_users_group_messages(
    server: ServerProcess, receiver: PushReceiver
) -> None:
    async with Crowd(server) as crowd:
        blocker, blocked, carol = await crowd.people(3)
        for person, path in ((blocker, "/blocker"), (blocked, "/blocked"), (carol, "/carol")):
            await webhook_device(person, receiver, path)
        room = await carol.group("team", [blocker, blocked])
        expect(await blocker.post("/blocks", {"user_id": blocked.id}), 204)
        # Nobody has a session: every other member is offline, for every node.
        message = await blocked.send_rest(room["id"], "hey @" + blocker.user.username)
        assert verified(await receiver.next("/carol"))["message_id"] == message["id"]
        # Decided and queued with carol's, which came.
        assert receiver.count("/blocker") == 0
        # The blocked user is not told: the blocker's messages notify them as before.
        message = await blocker.send_rest(room["id"], "hello")
        for path in ("/blocked", "/carol"):
            assert verified(await receiver.next(path))["message_id"] == message["id"]
        assert receiver.count("/blocker") == 0


async def test_a_gone_device_is_removed(server: ServerProcess, receiver: PushReceiver) -> None:
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        receiver.answer("/gone-bob", 410)
        gone = await webhook_device(bob, receiver, "/gone-bob")
        kept = await webhook_device(bob, receiver, "/kept-bob")
        room = await alice.direct(bob)
        ws = await crowd.session(alice)
        await send(ws, room["id"], "are you there?")
        await receiver.next("/gone-bob")
        await receiver.next("/kept-bob")
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            devices = expect(await bob.get("/push/devices"), 200)["devices"]
            if [d["id"] for d in devices] == [kept["id"]]:
                break
        assert [d["id"] for d in devices] == [kept["id"]], gone


async def test_a_provider_outage_delays_pushes_not_messages(
    server: ServerProcess, receiver: PushReceiver
) -> None:
    async with Crowd(server) as crowd:
        alice, bob, carol = await crowd.people(3)
        await webhook_device(bob, receiver, "/down-bob")
        room = await alice.group("outage", [bob, carol])
        ws, carol_ws = await crowd.sessions_of(alice, carol)
        with receiver.outage("/down-bob"):
            first = await send(ws, room["id"], "first")
            await receiver.held("/down-bob")  # the push is stuck at the provider
            # Messages go on: acked to the sender, delivered to the online member.
            later = [await send(ws, room["id"], f"later {i}") for i in range(3)]
            got = await carol_ws.messages_until(room["id"], later[-1]["seq"])
            assert [m["body"] for m in got] == ["first", "later 0", "later 1", "later 2"]
        # The held request was answered 503: that push is retried, and every push arrives.
        pushes = [verified(await receiver.next("/down-bob")) for _ in range(4)]
        assert sorted(p["seq"] for p in pushes) == [first["seq"], *(m["seq"] for m in later)]


async def test_muted_rooms_and_settings_hold_pushes_back(
    server: ServerProcess, receiver: PushReceiver
) -> None:
    async with Crowd(server) as crowd:
        alice, bob, carol = await crowd.people(3)
        await webhook_device(bob, receiver, "/muted-bob")
        await webhook_device(carol, receiver, "/quiet-carol")
        room = await alice.group("muted", [bob, carol])
        expect(await bob.patch("/me/settings", {"push": {"rooms": {room["id"]: "none"}}}), 200)
        expect(await carol.patch("/me/settings", {"push": {"preview": False}}), 200)
        ws = await crowd.session(alice)
        message = await send(ws, room["id"], "secret plans")
        push = verified(await receiver.next("/quiet-carol"))
        assert push == {
            "type": "message",
            "room_id": room["id"],
            "message_id": message["id"],
            "seq": message["seq"],
        }
        assert receiver.count("/muted-bob") == 0
        # Bad push settings are refused with the contract's error, and nothing changes.
        bad = await bob.patch("/me/settings", {"push": {"group": "sometimes"}})
        assert expect(bad, 400, "bad_request") is not None
        assert "push.group" in bad.json()["error"]["message"]
        settings = expect(await bob.get("/me/settings"), 200)
        assert settings == {"push": {"rooms": {room["id"]: "none"}}}


async def test_an_offline_browser_gets_an_encrypted_web_push(
    server: ServerProcess, push_service: PushReceiver
) -> None:
    browser_key = ec.generate_private_key(ec.SECP256R1())
    auth = os.urandom(16)
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        subscription = {
            "platform": "webpush",
            "endpoint": push_service.url("/wp/bob"),
            "keys": {"p256dh": b64url(public_point(browser_key)), "auth": b64url(auth)},
        }
        expect(await bob.post("/push/devices", subscription), 201)
        room = await alice.direct(bob)
        ws = await crowd.session(alice)
        message = await send(ws, room["id"], "ping")
        got = await push_service.next("/wp/bob")
        assert got.headers["Content-Encoding"] == "aes128gcm"
        token = got.headers["Authorization"].removeprefix("vapid t=").split(",")[0]
        claims = jwt.decode(
            token, VAPID.public_key(), algorithms=["ES256"], audience=push_service.url("")
        )
        assert claims["sub"] == SUBJECT
        plain = http_ece.decrypt(
            got.body, private_key=browser_key, auth_secret=auth, version="aes128gcm"
        )
        push = orjson.loads(plain)
        assert (push["message_id"], push["preview"], push["direct"]) == (
            message["id"],
            "ping",
            True,
        )
