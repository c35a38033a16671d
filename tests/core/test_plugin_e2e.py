"""A plugin named in the config adds a REST route and a startup hook to a real server."""

from __future__ import annotations

from pathlib import Path

import httpx

from chatcore.testing.users import new_user

PLUGIN_DIR = str(Path(__file__).resolve().parents[1] / "plugins")


def test_plugin_route_startup_hook_and_config_section(server_factory):
    server = server_factory(
        env={"PYTHONPATH": PLUGIN_DIR}, plugins=["sample_plugin"], sample={"greeting": "ahoy"}
    )
    alice = new_user(server.api)
    reply = httpx.get(f"{server.api}/sample/hello", headers=alice.headers)
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"greeting": "ahoy", "user_id": alice.id, "started": True}

    anonymous = httpx.get(f"{server.api}/sample/hello")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthorized"
