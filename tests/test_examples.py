"""The examples in examples/ run as documented."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from chatcore.testing.users import new_user

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


def test_echo_bot_answers_in_its_rooms(server_factory):
    server = server_factory(env={"PYTHONPATH": str(EXAMPLES)}, plugins=["echo_bot"])
    alice = new_user(server.api)
    found = httpx.get(f"{server.api}/users", params={"q": "echo"}, headers=alice.headers)
    bot_id = found.json()["users"][0]["id"]
    room = _direct_room(server, alice, bot_id)
    sent = httpx.post(
        f"{server.api}/rooms/{room}/messages", json={"ref": "hi", "body": "hello"},
        headers=alice.headers,
    )
    assert sent.status_code == 201
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the bot answers asynchronously, after the commit
        history = httpx.get(f"{server.api}/rooms/{room}/messages", headers=alice.headers).json()
        if len(history["messages"]) == 2:
            break
        time.sleep(0.05)
    reply = history["messages"][0]
    assert reply["sender_id"] == bot_id
    assert reply["body"] == "echo: hello"
    assert reply["reply_to"] == sent.json()["id"]
