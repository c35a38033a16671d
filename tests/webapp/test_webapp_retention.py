"""The browser app's engine catching up a room whose oldest messages retention deleted
(docs/protocol.md "Retention"), in a real Chromium against a real server: the cursor jumps the
deleted seqs (`first_seq` in `synced`) instead of waiting for them, over several rounds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cli_support import chatcore_cli
from test_webapp_engine import direct_room, login, open_engine, rest, send_over_rest
from webapp_support import register_user

from chatcore.clock import now_ms
from chatcore.testing.server import ServerProcess, start_server

pytest.importorskip("playwright")

DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def webapp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The app's server with catch-ups of at most 5 messages a round, flood control off."""
    overrides = {
        "limits": {"max_sync_messages": 5},
        "websocket": {"rate_per_second": 100_000, "rate_burst": 100_000},
    }
    with start_server(tmp_path_factory.mktemp("webapp-retention"), overrides) as server:
        yield server


def run_pass_two_days_ahead(server: ServerProcess) -> str:
    future = str(now_ms() + 2 * DAY_MS)
    config = str(server.config_path)
    done = chatcore_cli("retention", "run", "--config", config, "--now-ms", future)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_engine_catches_up_past_deleted_messages(
    webapp_server: ServerProcess, new_page: Any
) -> None:
    ann = register_user(webapp_server, "ret_ann")
    bob = register_user(webapp_server, "ret_bob")
    room_id = direct_room(webapp_server, ann, bob)
    with rest(webapp_server, bob["access_token"]) as http:
        http.put(f"/rooms/{room_id}/retention", json={"days": 1}).raise_for_status()
    for n in range(4):
        send_over_rest(webapp_server, bob["access_token"], room_id, f"old {n}", f"old{n}")
    assert "deleted 4 messages" in run_pass_two_days_ahead(webapp_server)
    for n in range(12):
        send_over_rest(webapp_server, bob["access_token"], room_id, f"new {n}", f"new{n}")

    page = new_page()
    warnings: list[str] = []
    page.on("console", lambda m: warnings.append(m.text) if m.type == "warning" else None)
    open_engine(page)
    login(page, "ret_ann")  # starts, and waits for `ready`: the catch-up is complete

    cursors = page.evaluate("() => import('./js/engine/sync.js').then((m) => m.cursors())")
    assert cursors[room_id] == 16
    history = page.evaluate("id => window.__c.history(id, {limit: 50})", room_id)
    assert [m["seq"] for m in history["messages"]] == list(range(5, 17))
    assert history["hasMore"] is False
    assert not [w for w in warnings if "cursors do not move" in w], warnings
