"""The push handler against a real server: webhook pushes in, a notice with its message out,
and a reply from the notification that reaches the room without a connection.

Bob's app is closed (no live session); his push handler runs (`serve_webhooks`, a real HTTP
server) on his device store. The server sends it signed webhook pushes for ann's messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from engine_support import WAIT, Rest, engine_client, signed_up

from chatcore.client.app import Client
from chatcore.client.events import PushReceived
from chatcore.client.push_receiver import PUSH_PATH, serve_webhooks
from chatcore.testing.server import ServerProcess, picked_port, start_server

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

SECRET = "webhook-secret-" + "s" * 32


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    overrides = {"push_webhook": {"secret": SECRET, "allow_private_endpoints": True}}
    with start_server(tmp_path_factory.mktemp("server"), overrides) as running:
        yield running


@contextlib.asynccontextmanager
async def push_handler(client: Client) -> AsyncIterator[str]:
    """Bob's push handler listening on a free loopback port; its URL."""
    port = picked_port()
    task = asyncio.create_task(serve_webhooks(client, "127.0.0.1", port))
    url = f"http://127.0.0.1:{port}{PUSH_PATH}"
    try:
        async with httpx.AsyncClient(timeout=WAIT) as http, asyncio.timeout(WAIT):
            while True:  # until it listens: a refused connection, then its first answer
                try:
                    await http.get(url)
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.02)
        yield url
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_push_becomes_a_notice_with_its_message_and_the_reply_reaches_the_room(
    server: ServerProcess, tmp_path: Path
) -> None:
    ann = await Rest.new(server)
    secret = {"push_webhook_secret": SECRET}
    async with engine_client(server, tmp_path / "bob", connect=False, **secret) as (bob, log):
        bob_id = await signed_up(bob)
        room = await bob.api.create_direct(ann.id)
        async with push_handler(bob) as url:
            await bob.api.add_push_device("webhook", endpoint=url)

            sent = await ann.call(
                "POST", f"/rooms/{room.id}/messages", json={"ref": "p1", "body": "lunch at 12?"}
            )
            assert sent.status_code == 201, sent.text
            await log.wait(lambda log: any(isinstance(e, PushReceived) for e in log.events))

        [event] = [e for e in log.events if isinstance(e, PushReceived)]
        notice = event.notice
        assert (notice.room_id, notice.message_id, notice.seq) == (room.id, sent.json()["id"], 1)
        assert notice.preview == "lunch at 12?" and notice.direct is True
        assert notice.message is not None and notice.message.body == "lunch at 12?"
        # The message is on the device: the dialog shows it before any sync.
        assert [m.body for m in await bob.history(room.id)] == ["lunch at 12?"]

        entry = await bob.reply(room.id, "yes!", reply_to=notice.message_id)
        assert entry.state == "sent"  # no connection: sent over REST at once
        assert await bob.outbox() == []
        history = (await ann.call("GET", f"/rooms/{room.id}/messages")).json()["messages"]
        assert [(m["body"], m["sender_id"], m.get("reply_to")) for m in history] == [
            ("yes!", bob_id, notice.message_id),
            ("lunch at 12?", ann.id, None),
        ]


async def test_an_id_only_push_is_completed_with_the_message_from_the_server(
    server: ServerProcess, tmp_path: Path
) -> None:
    ann = await Rest.new(server)
    secret = {"push_webhook_secret": SECRET}
    async with engine_client(server, tmp_path / "bob", connect=False, **secret) as (bob, log):
        await signed_up(bob)
        await bob.api.patch_settings({"push": {"preview": False}})  # id-only pushes for bob
        room = await bob.api.create_direct(ann.id)
        async with push_handler(bob) as url:
            await bob.api.add_push_device("webhook", endpoint=url)
            sent = await ann.call(
                "POST", f"/rooms/{room.id}/messages", json={"ref": "p2", "body": "private"}
            )
            assert sent.status_code == 201, sent.text
            await log.wait(lambda log: any(isinstance(e, PushReceived) for e in log.events))

        [event] = [e for e in log.events if isinstance(e, PushReceived)]
        assert event.notice.preview is None  # nothing of the text travelled in the push
        assert event.notice.message is not None and event.notice.message.body == "private"
        assert [m.body for m in await bob.history(room.id)] == ["private"]


async def test_the_receiver_refuses_an_unsigned_push_and_what_is_not_one(
    server: ServerProcess, tmp_path: Path
) -> None:
    secret = {"push_webhook_secret": SECRET}
    async with engine_client(server, tmp_path / "bob", connect=False, **secret) as (bob, log):
        await signed_up(bob)
        async with push_handler(bob) as url, httpx.AsyncClient(timeout=WAIT) as http:
            body = orjson.dumps({"type": "message", "room_id": "r", "message_id": "m", "seq": 1})
            unsigned = await http.post(url, content=body)
            assert unsigned.status_code == 401
            assert unsigned.json()["error"]["code"] == "unauthorized"
            call = orjson.dumps({"type": "call", "room_id": "r"})
            not_a_push = await http.post(url, content=call, headers=_signed(call))
            assert not_a_push.status_code == 400
            assert "not a message push" in not_a_push.json()["error"]["message"]
        assert not any(isinstance(e, PushReceived) for e in log.events)


def _signed(body: bytes) -> dict[str, str]:
    """The headers the server's webhook adapter signs a push with."""
    timestamp = str(int(time.time()))
    mac = hmac.new(SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return {"X-Chatcore-Timestamp": timestamp, "X-Chatcore-Signature": "sha256=" + mac.hexdigest()}
