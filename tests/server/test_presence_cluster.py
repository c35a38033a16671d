"""Cluster-wide presence (`chatcore.server.realtime.cluster`, `chatcore.server.realtime.hub`).

The bookkeeping (`ClusterView`) is tested as a unit with a fake clock. Then three real nodes
run in one process, sharing one in-process `MemoryBroker` (a real broker, the one a single
node uses) and one SQLite file, with their own REST and WebSocket listeners and real clients.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from chatcore.hookspecs import hookimpl
from chatcore.server.app import App
from chatcore.server.realtime.cluster import PRESENCE_CHANNEL, ClusterView, PresenceNote
from chatcore.settings import ConfigError, build_settings
from chatcore.testing.server import TIMEOUT_SCALE, server_config
from chatcore.testing.users import TestUser, register_and_login
from chatcore.testing.wsclient import WSClient
from chatcore_memory import MemoryBroker

pytestmark = pytest.mark.anyio

WAIT = 5 * TIMEOUT_SCALE


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- the cluster view, as a unit ----------------------------------------------------------------


def note(kind: str, node: str, *users: str, status: str = "") -> PresenceNote:
    return PresenceNote(kind, node, list(users), status)  # type: ignore[arg-type]


def test_online_is_announced_once_by_the_first_node_and_offline_by_the_last() -> None:
    a, b = ClusterView("a", ttl=15), ClusterView("b", ttl=15)
    assert a.local_online("u") is True  # first session anywhere: a announces
    b.heard(note("delta", "a", "u", status="online"), now=0)
    assert b.is_online("u")
    assert b.local_online("u") is False  # a second session elsewhere: nobody announces
    a.heard(note("delta", "b", "u", status="online"), now=0)

    assert a.local_offline("u") is False  # still on b
    b.heard(note("delta", "a", "u", status="offline"), now=1)
    assert a.is_online("u") and b.is_online("u")
    assert b.local_offline("u") is True  # last session anywhere: b announces
    a.heard(note("delta", "b", "u", status="offline"), now=1)
    assert not a.is_online("u") and not b.is_online("u")
    assert a.local_offline("u") is False  # not local: nothing to announce


def test_last_sessions_closing_at_once_on_two_nodes_are_announced_once() -> None:
    """Both nodes lose the user's last session before hearing of the other's: neither sees
    the user offline everywhere then, and the node with the smaller id announces it."""
    a, b = ClusterView("a", ttl=15), ClusterView("b", ttl=15)
    a.local_online("u")
    b.local_online("u")
    a.heard(note("delta", "b", "u", status="online"), now=0)
    b.heard(note("delta", "a", "u", status="online"), now=0)
    assert a.local_offline("u") is False  # b still has u, as far as a knows
    assert b.local_offline("u") is False  # and the same on b
    from_a = PresenceNote("delta", "a", ["u"], "offline", announced=False)
    from_b = PresenceNote("delta", "b", ["u"], "offline", announced=False)
    assert a.heard(from_b, now=1) == ["u"]  # a < b: a announces
    assert b.heard(from_a, now=1) == []
    assert not a.is_online("u") and not b.is_online("u")


def test_a_silent_node_expires_after_the_ttl_and_the_smallest_survivor_announces() -> None:
    views = {n: ClusterView(n, ttl=10) for n in ("n1", "n2", "n3")}
    views["n3"].local_online("gone")
    views["n3"].local_online("both")
    views["n1"].local_online("both")
    for name in ("n1", "n2"):
        views[name].heard(note("snapshot", "n3", "gone", "both"), now=0)
    views["n1"].heard(note("snapshot", "n2"), now=0)
    views["n2"].heard(note("snapshot", "n1", "both"), now=0)
    # n3 goes silent; n1 and n2 keep hearing each other.
    for name, other in (("n1", "n2"), ("n2", "n1")):
        assert views[name].expire(now=10) == []  # not yet: exactly the ttl
        views[name].heard(note("snapshot", other, *views[other].local), now=10)
    assert views["n1"].expire(now=10.5) == ["gone"]  # smallest survivor: announces
    assert views["n2"].expire(now=10.5) == []  # knows, keeps quiet
    for view in (views["n1"], views["n2"]):
        assert not view.is_online("gone")
        assert view.is_online("both")  # still on n1
        assert view.nodes() == ["n1", "n2"]


def test_snapshots_repair_lost_deltas_without_announcing_and_bye_forgets_a_node() -> None:
    view = ClusterView("a", ttl=10)
    view.heard(note("delta", "b", "x", status="online"), now=0)  # b's "y" delta was lost
    view.heard(note("snapshot", "b", "y"), now=1)  # and so was x's offline
    assert (view.is_online("x"), view.is_online("y")) == (False, True)
    view.heard(note("hello", "c", "z"), now=1)
    assert view.is_online("z") and view.nodes() == ["a", "b", "c"]
    view.heard(note("bye", "c"), now=2)
    assert not view.is_online("z") and view.nodes() == ["a", "b"]
    view.heard(note("snapshot", "a", "mine"), now=2)  # our own notes change nothing
    assert not view.is_online("mine")
    assert view.expire(now=12) == ["y"]  # b is silent past the ttl; a is the only survivor


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[]",
        b'{"kind": "delta", "node": "b", "user": "u", "status": "away"}',
        b'{"kind": "snapshot", "node": "", "users": []}',
        b'{"kind": "snapshot", "node": "b", "users": [1]}',
        b'{"kind": "party", "node": "b"}',
    ],
)
def test_malformed_notes_are_ignored(data: bytes) -> None:
    assert PresenceNote.decode(data) is None


def test_notes_round_trip() -> None:
    for sent in (note("delta", "b", "u", status="online"), note("snapshot", "b", "u", "v"),
                 note("hello", "b"), note("bye", "b")):
        assert PresenceNote.decode(sent.encode()) == sent


def test_ttl_must_outlast_the_heartbeat() -> None:
    with pytest.raises(ConfigError, match="ttl_seconds must be longer"):
        build_settings({"presence": {"heartbeat_seconds": 5, "ttl_seconds": 5}}, [], "t.toml")


# --- three nodes in one process -----------------------------------------------------------------


class SharedBroker:
    """A plugin giving every node of this test the same in-process broker (`shared://`)."""

    def __init__(self) -> None:
        self.broker = MemoryBroker()
        self.broker.close = self._keep_open  # type: ignore[method-assign]

    async def _keep_open(self) -> None:
        pass  # one node stopping must not close the others' broker

    @hookimpl
    def chatcore_broker(self, app: App) -> MemoryBroker | None:
        return self.broker if app.settings.broker.url == "shared://" else None


class Node:
    def __init__(self, app: App) -> None:
        self.app = app

    @property
    def api(self) -> str:
        return self.app.settings.server.origin + "/api/v1"

    @property
    def ws_url(self) -> str:
        url = self.app.ws_url
        assert url is not None
        return url


@asynccontextmanager
async def cluster(
    folder: Path, count: int, presence: dict[str, Any]
) -> AsyncIterator[tuple[list[Node], SharedBroker]]:
    shared = SharedBroker()
    async with AsyncExitStack() as stack:
        nodes = []
        for _ in range(count):
            config = server_config(folder, {"broker": {"url": "shared://"}, "presence": presence})
            app = App.from_config(None, overrides=config, extra_plugins=[shared])
            await app.start()
            stack.push_async_callback(app.stop)
            nodes.append(Node(app))
        yield nodes, shared


def contacts(api: str, count: int) -> list[TestUser]:
    """`count` fresh users, each a contact of the first."""
    with httpx.Client(base_url=api) as http:
        users = [register_and_login(http, prefix="pc") for _ in range(count)]
        for other in users[1:]:
            invited = http.post(
                "/contacts/invitations", json={"user_id": other.id}, headers=users[0].headers
            )
            assert invited.status_code == 201, invited.text
            accepted = http.post(
                f"/contacts/invitations/{invited.json()['id']}/accept", headers=other.headers
            )
            assert accepted.status_code == 200, accepted.text
    return users


def listed_presence(api: str, user: TestUser) -> dict[str, str]:
    reply = httpx.get(api + "/contacts", headers=user.headers)
    assert reply.status_code == 200, reply.text
    return {c["user"]["id"]: c["presence"] for c in reply.json()["contacts"]}


def presence_of(user: TestUser) -> Any:
    return lambda event: event.get("user_id") == user.id


async def test_presence_counts_every_nodes_sessions_and_is_announced_once(
    tmp_path: Path,
) -> None:
    """Online on the first session anywhere, not again for a session on another node; offline
    only after the last session anywhere; every contact list on every node agrees; each
    transition is announced exactly once."""
    async with cluster(tmp_path, 3, {"heartbeat_seconds": 5, "ttl_seconds": 15}) as (nodes, _):
        n1, n2, n3 = nodes
        watcher, alice = await asyncio.to_thread(contacts, n1.api, 2)
        async with WSClient.connect(n3.ws_url, watcher.access_token) as seen:
            alice_1 = await WSClient.open(n1.ws_url, alice.access_token)
            online = await seen.recv("presence", match=presence_of(alice))
            assert online["status"] == "online"
            for node in nodes:
                listed = await asyncio.to_thread(listed_presence, node.api, watcher)
                assert listed[alice.id] == "online"

            alice_2 = await WSClient.open(n2.ws_url, alice.access_token)
            await alice_1.close()
            await alice_2.ping()  # n1's offline delta was sent before alice_1's close finished
            await seen.ping()
            assert [e for e in seen.pending("presence") if presence_of(alice)(e)] == []
            for node in nodes:
                listed = await asyncio.to_thread(listed_presence, node.api, watcher)
                assert listed[alice.id] == "online", "alice still has a session on n2"

            await alice_2.close()
            offline = await seen.recv("presence", match=presence_of(alice))
            assert offline["status"] == "offline"
            await seen.ping()
            assert [e for e in seen.pending("presence") if presence_of(alice)(e)] == []
            for node in nodes:
                listed = await asyncio.to_thread(listed_presence, node.api, watcher)
                assert listed[alice.id] == "offline"


async def test_a_node_that_stops_heartbeating_takes_its_users_offline_within_the_ttl(
    tmp_path: Path,
) -> None:
    """A node that falls silent (as if killed: no offline delta, no bye) makes its users
    offline on the others within ttl + heartbeat, announced by one surviving node."""
    presence = {"heartbeat_seconds": 0.2, "ttl_seconds": 0.6}
    async with cluster(tmp_path, 3, presence) as (nodes, shared):
        n1, n2, n3 = nodes
        watcher, alice = await asyncio.to_thread(contacts, n1.api, 2)
        async with WSClient.connect(n1.ws_url, watcher.access_token) as seen:
            alice_ws = await WSClient.open(n3.ws_url, alice.access_token)
            assert (await seen.recv("presence", match=presence_of(alice)))["status"] == "online"
            # n3 "dies": it stops hearing and sending anything on the shared broker.
            silenced = await _silence(shared.broker, n3.app)
            loop = asyncio.get_running_loop()
            started = loop.time()
            offline = await seen.recv("presence", match=presence_of(alice), timeout=WAIT)
            took = loop.time() - started
            assert offline["status"] == "offline"
            assert took <= (0.6 + 0.2) * 2 * TIMEOUT_SCALE, f"took {took:.2f}s"
            for node in (n1, n2):
                assert not node.app.hub.is_online(alice.id)
            # Let both survivors pass another expiry round: still exactly one announcement.
            await asyncio.sleep(0.5)
            await seen.ping()
            assert [e for e in seen.pending("presence") if presence_of(alice)(e)] == []
            silenced.restore()
            await alice_ws.abort()


class _Silenced:
    def __init__(self, broker: MemoryBroker, publish: Any) -> None:
        self.broker = broker
        self.publish = publish

    def restore(self) -> None:
        self.broker.publish = self.publish  # type: ignore[method-assign]


async def _silence(broker: MemoryBroker, dead: App) -> _Silenced:
    """Cut one node off the shared broker both ways, as a SIGKILL would (its sessions stay)."""
    for sub in list(broker._channels.get(PRESENCE_CHANNEL, ())):
        if getattr(sub.handler, "__self__", None) is dead.hub:
            await sub.unsubscribe()
    publish = broker.publish

    async def publish_unless_dead(channel: str, data: bytes) -> None:
        if channel == PRESENCE_CHANNEL and orjson.loads(data)["node"] == dead.hub.node_id:
            return
        await publish(channel, data)

    broker.publish = publish_unless_dead  # type: ignore[method-assign]
    return _Silenced(broker, publish)
