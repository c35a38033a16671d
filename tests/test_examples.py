"""The examples in examples/ run as documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from chatcore.testing.users import new_user
from chatcore.testing.wsclient import WSClient

EXAMPLES = Path(__file__).parent.parent / "examples"


def test_embedding_example_runs_a_node_and_stops_it():
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "embed.py")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "register: 201" in result.stdout
    assert "info ws_url: ws://127.0.0.1:" in result.stdout
    assert "the plugin saw: ['ada']" in result.stdout


def test_hello_plugin_serves_its_route(server_factory):
    server = server_factory(
        env={"PYTHONPATH": str(EXAMPLES)}, plugins=["hello_plugin"], hello={"greeting": "Hi"}
    )
    user = new_user(server.api)
    reply = httpx.get(f"{server.api}/hello", headers=user.headers)
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"message": f"Hi, {user.username}!"}


def _direct_room(server, user, peer_id: str) -> str:
    reply = httpx.post(
        f"{server.api}/rooms", json={"kind": "direct", "user_id": peer_id}, headers=user.headers
    )
    assert reply.status_code in (200, 201), reply.text
    return str(reply.json()["id"])


def test_word_filter_masks_or_rejects_before_storing(server_factory):
    server = server_factory(
        env={"PYTHONPATH": str(EXAMPLES)},
        plugins=["word_filter"],
        word_filter={"words": ["darn"], "mode": "mask"},
    )
    alice, bob = new_user(server.api), new_user(server.api)
    room = _direct_room(server, alice, bob.id)
    sent = httpx.post(
        f"{server.api}/rooms/{room}/messages",
        json={"ref": "r1", "body": "Darn it, darned"},
        headers=alice.headers,
    )
    assert sent.status_code == 201, sent.text
    assert sent.json()["body"] == "**** it, darned"

    strict = server_factory(
        env={"PYTHONPATH": str(EXAMPLES)},
        plugins=["word_filter"],
        word_filter={"words": ["darn"], "mode": "reject"},
    )
    carol, dave = new_user(strict.api), new_user(strict.api)
    room = _direct_room(strict, carol, dave.id)
    refused = httpx.post(
        f"{strict.api}/rooms/{room}/messages", json={"ref": "r1", "body": "darn"},
        headers=carol.headers,
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"
    # Nothing was stored and the ref is still free.
    again = httpx.post(
        f"{strict.api}/rooms/{room}/messages", json={"ref": "r1", "body": "fine"},
        headers=carol.headers,
    )
    assert again.status_code == 201
    assert again.json()["seq"] == 1


@pytest.mark.anyio
async def test_echo_bot_answers_in_its_rooms(server_factory):
    server = server_factory(env={"PYTHONPATH": str(EXAMPLES)}, plugins=["echo_bot"])
    alice, bot_id, room = _room_with_the_bot(server)
    async with WSClient.connect(server.ws_url, alice.access_token) as ws:
        sent = await ws.send_message(room, "hello")
        # The bot answers after the commit, in the background: wait for its live message.
        reply = await ws.recv("message", match=lambda e: e["message"]["sender_id"] == bot_id)
    assert reply["message"]["body"] == "echo: hello"
    assert reply["message"]["reply_to"] == sent["id"]
    assert reply["message"]["seq"] == 2


def _room_with_the_bot(server):
    alice = new_user(server.api)
    found = httpx.get(f"{server.api}/users", params={"q": "echo"}, headers=alice.headers)
    bot_id = found.json()["users"][0]["id"]
    return alice, bot_id, _direct_room(server, alice, bot_id)
