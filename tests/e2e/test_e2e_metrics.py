"""What /metrics tells an operator (docs/operations.md), read from a real server process while
real traffic goes through it: logins (ok, failed, rate limited), sends over WebSocket, their
delivery, a catch-up, refused frames; and a broker reconnection after a broker restart. The
Grafana dashboard and the alert rules in config/grafana/ use only metrics a node serves, and
docs/operations.md describes every one.

Counters are compared before and after the traffic, so what other requests counted (the test
harness's /healthz polls) does not matter.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from e2e_support import HTTP_TIMEOUT, Crowd, error_code, expect
from prometheus_client.parser import text_string_to_metric_families

from chatcore.testing.brokers import PrivateServer, nats_server, redis_server, running
from chatcore.testing.server import TIMEOUT_SCALE, ServerProcess, start_server
from chatcore.testing.services import unique_name
from chatcore.testing.users import PASSWORD, unique_username
from chatcore.testing.wsclient import new_ref

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

SENDS = 12
#: Frames a session may send at once; the refill is slow enough that the flood below is
#: refused no matter how slow the machine is.
BURST = 40
FLOOD = 15
RECOVERY_SECONDS = 20.0 * TIMEOUT_SCALE

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(http: httpx.AsyncClient, node: ServerProcess) -> Samples:
    """Every sample of the node's /metrics, by name and labels."""
    reply = await http.get(node.base_url + "/metrics")
    assert reply.status_code == 200, reply.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(reply.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    overrides = {
        "auth": {"login_failures_per_username": 1},
        "websocket": {"rate_per_second": 0.01, "rate_burst": BURST, "rate_close_after": 1000},
    }
    with start_server(tmp_path_factory.mktemp("metrics"), overrides) as server:
        yield server


async def test_traffic_moves_the_counters_by_what_happened(node: ServerProcess) -> None:
    async with Crowd(node) as crowd:
        before = await scrape(crowd.http, node)
        alice, bob = await crowd.people(2)  # two registrations and two good logins

        # A wrong password, then (the username's budget spent) a refusal by the login limit.
        victim = {"username": unique_username("victim"), "password": PASSWORD}
        expect(await crowd.http.post(f"{node.api}/auth/register", json=victim), 201)
        wrong = {**victim, "password": "not the password"}
        statuses = [
            error_code(await crowd.http.post(f"{node.api}/auth/login", json=wrong))
            for _ in range(2)
        ]
        assert statuses == ["unauthorized", "rate_limited"], statuses

        room = await alice.group("metrics", [bob])
        alice_ws, bob_ws = await crowd.sessions_of(alice, bob)
        for i in range(SENDS):
            await alice_ws.send_message(room["id"], f"message {i}")
        await bob_ws.messages_until(room["id"], SENDS)
        await alice_ws.messages_until(room["id"], SENDS)  # the sender's session gets them too
        caught = await bob_ws.sync({room["id"]: 0})
        assert len(caught.messages(room["id"])) == SENDS

        # Past the burst, frames are refused, each answered rate_limited.
        refs = [new_ref("flood") for _ in range(FLOOD + BURST)]
        for ref in refs:
            await bob_ws.send_frame({"type": "ping", "ref": ref})
        replies = [await bob_ws.recv_reply(ref) for ref in refs]
        refused = sum(1 for r in replies if r.get("code") == "rate_limited")
        assert refused >= FLOOD, replies[-3:]

        after = await scrape(crowd.http, node)

    assert moved(before, after, "chatcore_logins_total", outcome="ok") == 2
    assert moved(before, after, "chatcore_logins_total", outcome="failed") == 1
    assert moved(before, after, "chatcore_logins_total", outcome="rate_limited") == 1
    assert moved(before, after, "chatcore_rate_limited_total", limit="login") == 1
    assert moved(before, after, "chatcore_rate_limited_total", limit="ws_frames") == refused

    assert moved(before, after, "chatcore_messages_stored_total") == SENDS
    # Every message reached both sessions in the room, live.
    assert moved(before, after, "chatcore_events_delivered_total", kind="message") == 2 * SENDS
    assert moved(before, after, "chatcore_ack_latency_seconds_count") == SENDS
    assert moved(before, after, "chatcore_ack_latency_seconds_sum") > 0
    assert moved(before, after, "chatcore_commit_batch_messages_sum") == SENDS
    commits = moved(before, after, "chatcore_commit_duration_seconds_count")
    assert 1 <= commits <= SENDS
    assert moved(before, after, "chatcore_commit_batch_messages_count") == commits
    assert moved(before, after, "chatcore_sync_messages_count") == 1
    assert moved(before, after, "chatcore_sync_messages_sum") == SENDS
    # Each new message is published once to its room's channel (other events come on top).
    assert moved(before, after, "chatcore_broker_published_total", broker="memory") >= SENDS
    assert moved(before, after, "chatcore_broker_received_total", broker="memory") >= SENDS
    assert moved(before, after, "chatcore_storage_errors_total", operation="store_messages") == 0

    logins = moved(
        before,
        after,
        "chatcore_http_requests_total",
        method="POST",
        route="/api/v1/auth/login",
        status="200",
    )
    assert logins == 2


async def test_the_live_sessions_gauge_counts_open_sessions(node: ServerProcess) -> None:
    async with Crowd(node) as crowd:
        (person,) = await crowd.people(1)
        before = value(await scrape(crowd.http, node), "chatcore_websocket_sessions")
        ws = await crowd.session(person)
        await ws.ping()
        during = value(await scrape(crowd.http, node), "chatcore_websocket_sessions")
        assert during == before + 1


@pytest.fixture(params=["redis", "nats"])
def broker(request: pytest.FixtureRequest) -> Iterator[tuple[PrivateServer, dict[str, Any]]]:
    """A private broker server (killed at the end) and the `[broker]` section pointing at it."""
    if request.param == "redis":
        server = redis_server()
        section: dict[str, Any] = {
            "url": f"redis://127.0.0.1:{server.port}/0",
            "channel_prefix": unique_name("mx") + ":",
            "reconnect_max_seconds": 0.2,
        }
    else:
        server = nats_server()
        section = {
            "url": f"nats://127.0.0.1:{server.port}",
            "subject_prefix": unique_name("mx"),
            "reconnect_wait_seconds": 0.2,
        }
    with running(server):
        yield server, section


async def test_a_broker_reconnection_is_counted(
    tmp_path: Path, broker: tuple[PrivateServer, dict[str, Any]]
) -> None:
    server, section = broker
    kind = "redis" if section["url"].startswith("redis") else "nats"
    with start_server(tmp_path, {"broker": section}) as node:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
            before = await scrape(http, node)
            assert value(before, "chatcore_broker_reconnects_total", broker=kind) == 0
            assert value(before, "chatcore_broker_published_total", broker=kind) >= 1  # "hello"
            server.kill()
            server.start()
            deadline = asyncio.get_running_loop().time() + RECOVERY_SECONDS
            while True:
                samples = await scrape(http, node)
                if value(samples, "chatcore_broker_reconnects_total", broker=kind) >= 1:
                    break
                assert asyncio.get_running_loop().time() < deadline, "no reconnect counted"
                await asyncio.sleep(0.05)  # the node reconnects on its own schedule
            assert value(samples, "chatcore_broker_reconnects_total", broker=kind) == 1


# --- the dashboard, the alert rules and docs/operations.md follow the metrics ---------------

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "config" / "grafana" / "chatcore.json"
ALERTS = ROOT / "config" / "grafana" / "chatcore-alerts.yml"
OPERATIONS = ROOT / "docs" / "operations.md"
#: A metric name as PromQL writes it (ours, and the process collector's).
METRIC_NAME = re.compile(r"\b(?:chatcore|process)_[a-z0-9_]+\b")
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
}


async def served_names(node: ServerProcess) -> tuple[set[str], set[str]]:
    """(every series name the node's registry can serve, the names of its chatcore families),
    from its /metrics: a family without samples yet still has its HELP and TYPE lines."""
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
        text = (await http.get(node.base_url + "/metrics")).text
    series, families = set(), set()
    for family in text_string_to_metric_families(text):
        series.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
        # prometheus-client writes a counter's creation times as a gauge family of their own.
        if family.name.startswith("chatcore_") and not family.name.endswith("_created"):
            families.add(family.name + ("_total" if family.type == "counter" else ""))
    return series, families


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", ())
    ]
    assert len(queries) >= 20
    return queries


def alert_queries() -> list[str]:
    rules = yaml.safe_load(ALERTS.read_text())
    queries = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert len(queries) >= 5
    return queries


async def test_the_dashboard_and_the_alert_rules_use_only_metrics_a_node_serves(
    node: ServerProcess,
) -> None:
    series, _ = await served_names(node)
    for query in dashboard_queries() + alert_queries():
        used = set(METRIC_NAME.findall(query))
        assert used, query
        assert used <= series, f"{query}: no such metric {sorted(used - series)}"


async def test_operations_md_lists_every_metric_and_holds_the_alert_rules(
    node: ServerProcess,
) -> None:
    _, families = await served_names(node)
    text = OPERATIONS.read_text()
    missing = sorted(name for name in families if f"`{name}`" not in text)
    assert not missing, f"docs/operations.md does not describe {missing}"
    assert "```yaml\n" + ALERTS.read_text() + "```" in text, "the alert rules differ"
