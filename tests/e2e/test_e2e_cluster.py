"""Three real node processes as one service: shared PostgreSQL schema, shared broker (Redis,
then NATS), same auth secret, shared media folder (docs/protocol.md, "Guarantees").

Clients on different nodes exchange messages, typing, receipts and presence; a group room with
members on three nodes gets every message once, in order; a logout on one node closes that
login's sessions on another with 4401; a node SIGKILLed under a steady stream loses nothing
(its sender reconnects elsewhere, resends unacknowledged refs, syncs) and its users appear
offline to their contacts within the presence ttl.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_support import NO_FLOOD_CONTROL, Crowd, Json, Person, expect, first_difference

from chatcore.testing.server import TIMEOUT_SCALE, ServerProcess
from chatcore.testing.services import nats_url, redis_url, require_url, unique_name
from chatcore.testing.wsclient import WAIT, WSClient, new_ref, seqs_of

pytestmark = [pytest.mark.anyio, pytest.mark.e2e, pytest.mark.postgres]

HEARTBEAT, TTL = 0.3, 1.0
SECRET = "cluster-secret-" + "c" * 40


def broker_section(kind: str) -> dict[str, Any]:
    if kind == "redis":
        url = redis_url()
        require_url("Redis", url)
        return {"url": url, "channel_prefix": unique_name("cl") + ":"}
    url = nats_url()
    require_url("NATS", url)
    return {"url": url, "subject_prefix": unique_name("cl")}


@pytest.fixture(params=["redis", "nats"])
def cluster(
    request: pytest.FixtureRequest,
    postgres_storage: dict[str, Any],
    server_factory: Callable[..., ServerProcess],
    tmp_path: Path,
) -> Iterator[list[ServerProcess]]:
    """Three nodes sharing storage, broker, auth secret and media."""
    broker = broker_section(request.param)
    media = tmp_path / "shared-media"
    media.mkdir()
    yield [
        server_factory(
            storage=postgres_storage,
            broker=broker,
            auth={"secret": SECRET},
            media={"url": f"file://{media}"},
            presence={"heartbeat_seconds": HEARTBEAT, "ttl_seconds": TTL},
            websocket=NO_FLOOD_CONTROL,
        )
        for _ in range(3)
    ]


def on(node: ServerProcess, person: Person) -> Person:
    """The same user, talking to another node."""
    return Person(person.user, person.http, node.api)


def about(user: Person) -> Callable[[Json], bool]:
    return lambda event: event.get("user_id") == user.id


async def test_clients_on_different_nodes_talk_as_on_one_server(
    cluster: list[ServerProcess],
) -> None:
    """Messages, typing, receipts and presence cross nodes; a group room with members on
    three nodes gets every message once, in order, on every node."""
    n1, n2, n3 = cluster
    async with Crowd(n1) as crowd:
        alice, bob, carol = await crowd.people(3)
        direct = await alice.direct(bob)
        bob_ws = await WSClient.open(n2.ws_url, bob.token)
        crowd.sessions.append(bob_ws)
        alice_ws = await WSClient.open(n1.ws_url, alice.token)
        crowd.sessions.append(alice_ws)
        online = await bob_ws.recv("presence", match=about(alice))
        assert online == {"type": "presence", "user_id": alice.id, "status": "online"}

        sent = await alice_ws.send_message(direct["id"], "hello from n1")
        got = await bob_ws.recv("message")
        assert got["message"] == sent
        await bob_ws.send_frame({"type": "typing", "room_id": direct["id"], "active": True})
        typing = await alice_ws.recv("typing")
        assert typing == {
            "type": "typing", "room_id": direct["id"], "user_id": bob.id, "active": True
        }
        await bob_ws.send_frame({"type": "read", "room_id": direct["id"], "seq": sent["seq"]})
        receipt = await alice_ws.recv("receipt", match=about(bob))
        assert receipt == {
            "type": "receipt", "room_id": direct["id"], "user_id": bob.id, "seq": sent["seq"]
        }
        assert await on(n3, bob).unread(direct["id"]) == 0

        # A group with members on three nodes; each writes from its own node.
        group = await alice.group("three nodes", [bob, carol])
        carol_ws = await WSClient.open(n3.ws_url, carol.token)
        crowd.sessions.append(carol_ws)
        writers = [(alice_ws, "a"), (bob_ws, "b"), (carol_ws, "c")]
        refs: list[str] = []
        for round_ in range(10):
            for ws, name in writers:
                refs.append(f"{name}{round_}")
                await ws.send_message(group["id"], refs[-1], ref=new_ref(name))
        for ws in (alice_ws, bob_ws, carol_ws):
            seen = await ws.messages_until(group["id"], len(refs), timeout=4 * WAIT)
            assert seqs_of(seen) == list(range(1, len(refs) + 1)), first_difference(
                seqs_of(seen), list(range(1, len(refs) + 1))
            )
            assert [m["body"] for m in seen] == refs
        history = await on(n2, carol).all_messages(group["id"])
        assert [m["body"] for m in history] == refs

        await alice_ws.close()
        offline = await bob_ws.recv("presence", match=about(alice))
        assert offline["status"] == "offline"


async def test_logout_on_one_node_closes_the_login_on_another(
    cluster: list[ServerProcess],
) -> None:
    n1, n2, _ = cluster
    async with Crowd(n1) as crowd:
        alice = await crowd.person()
        ws = await WSClient.open(n2.ws_url, alice.token)
        crowd.sessions.append(ws)
        expect(await alice.post("/auth/logout"), 204)
        assert await ws.wait_closed() == 4401


async def test_a_killed_node_loses_nothing_and_its_users_go_offline(
    cluster: list[ServerProcess],
) -> None:
    """A sender on node 3 streams into a group; node 3 is SIGKILLed mid-stream. The sender
    reconnects to node 1, resends every unacknowledged ref and syncs: the room holds each
    message once with seqs 1..N, and the reader on node 2 gets them all without a gap. The
    reader (a contact) sees the sender go offline within ttl + heartbeat."""
    n1, n2, n3 = cluster
    total = 120
    async with Crowd(n1) as crowd:
        sender, reader = await crowd.people(2)
        room = await sender.group("stream", [reader])
        await sender.direct(reader)  # direct peers get each other's presence
        reader_ws = await WSClient.open(n2.ws_url, reader.token)
        crowd.sessions.append(reader_ws)
        sender_ws = await WSClient.open(n3.ws_url, sender.token)
        online = await reader_ws.recv("presence", match=about(sender))
        assert online["status"] == "online"

        refs = [new_ref("stream") for _ in range(total)]
        acked: set[str] = set()
        for ref in refs[: total // 2]:
            await sender_ws.send_frame(
                {"type": "send", "ref": ref, "room_id": room["id"], "body": ref}
            )
        for ref in refs[: total // 4]:
            reply = await sender_ws.recv_reply(ref, timeout=4 * WAIT)
            assert reply["type"] == "ack", reply
            acked.add(ref)
        n3.kill()  # mid-stream: some sent frames are acked, some maybe stored, some lost
        killed_at = asyncio.get_running_loop().time()
        for event in sender_ws.drain("ack"):
            acked.add(event["ref"])
        await sender_ws.abort()

        offline = await reader_ws.recv("presence", match=about(sender), timeout=4 * WAIT)
        took = asyncio.get_running_loop().time() - killed_at
        assert offline == {"type": "presence", "user_id": sender.id, "status": "offline"}
        assert took <= (TTL + 2 * HEARTBEAT) * 2 * TIMEOUT_SCALE + 1, f"took {took:.1f}s"

        sender_ws = await WSClient.open(n1.ws_url, sender.token)
        crowd.sessions.append(sender_ws)
        for ref in refs:  # the unacknowledged ones again (same ref: stored at most once)
            if ref not in acked:
                message = await sender_ws.send_message(room["id"], ref, ref=ref)
                assert message["body"] == ref

        history = await on(n2, reader).all_messages(room["id"])
        assert Counter(m["body"] for m in history) == Counter(refs), "lost or duplicated"
        assert seqs_of(history) == list(range(1, total + 1))

        live = [e["message"] for e in reader_ws.drain("message")]
        have = {m["seq"] for m in live}
        synced = await reader_ws.sync_all({room["id"]: 0})
        caught = [m for result in synced for m in result.messages(room["id"])]
        got = sorted(have | {m["seq"] for m in caught})
        assert got == list(range(1, total + 1)), first_difference(got, list(range(1, total + 1)))
