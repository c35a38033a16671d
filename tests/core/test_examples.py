"""The examples in examples/ and the docs run as documented."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from chatcore.testing.users import new_user
from chatcore.testing.wsclient import WSClient

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DOCS = EXAMPLES.parent / "docs"


def test_embedding_example_serves_until_ctrl_c_then_stops_cleanly(tmp_path):
    """docs/embedding.md runs it as written and stops it with Ctrl-C: no traceback, exit 0."""
    with (
        (tmp_path / "stderr").open("w+") as stderr,
        subprocess.Popen(
            [sys.executable, str(EXAMPLES / "embed.py")],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        ) as proc,
    ):
        lines: queue.Queue[str | None] = queue.Queue()

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.put(line)
            lines.put(None)  # end of output

        threading.Thread(target=read, daemon=True).start()
        seen: list[str] = []
        try:
            while not (seen and seen[-1].startswith("serving")):
                line = lines.get(timeout=60)
                assert line is not None, f"exited before serving: {seen}"
                seen.append(line)
            proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        while (line := lines.get(timeout=10)) is not None:
            seen.append(line)
        stderr.seek(0)
        errors = stderr.read()
    out = "".join(seen)
    assert proc.returncode == 0, errors
    assert "Traceback" not in errors
    assert "register: 201" in out
    assert "info ws_url: ws://127.0.0.1:" in out
    assert "the plugin saw: ['ada']" in out


def test_the_plugin_of_the_plugins_page_serves_its_routes(server_factory, tmp_path):
    """docs/plugins.md's notes_plugin as printed: GET, POST and DELETE routes under /api/v1,
    and one mounted from the server's root."""
    page = (DOCS / "plugins.md").read_text()
    code = re.search(r"```python\n(# notes_plugin\.py\n.*?)```", page, re.DOTALL)
    assert code, "docs/plugins.md lost its notes_plugin example"
    (tmp_path / "notes_plugin.py").write_text(code.group(1))
    server = server_factory(env={"PYTHONPATH": str(tmp_path)}, plugins=["notes_plugin"])
    user, other = new_user(server.api), new_user(server.api)
    notes = f"{server.api}/notes"

    added = httpx.post(notes, json={"text": "buy milk"}, headers=user.headers)
    assert added.status_code == 201, added.text
    note = added.json()
    assert httpx.get(notes, headers=user.headers).json() == {"notes": [note]}
    assert httpx.get(notes, headers=other.headers).json() == {"notes": []}
    assert httpx.get(notes).status_code == 401  # routes need a token unless auth=False
    refused = httpx.post(notes, json=[1], headers=user.headers)
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, "bad_request")

    gone = httpx.delete(f"{notes}/{note['id']}", headers=user.headers)
    assert (gone.status_code, gone.content) == (204, b"")
    again = httpx.delete(f"{notes}/{note['id']}", headers=user.headers)
    assert (again.status_code, again.json()["error"]["code"]) == (404, "not_found")

    root = httpx.get(f"{server.base_url}/.well-known/notes")
    assert (root.status_code, root.json()) == (200, {"api": "/api/v1"})


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
