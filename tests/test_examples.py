"""The examples in examples/ run as documented."""

from __future__ import annotations

import subprocess
import sys
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
