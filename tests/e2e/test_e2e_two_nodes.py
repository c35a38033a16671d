"""Two nodes sharing one PostgreSQL storage (docs/protocol.md "Conventions": seqs have no gaps and
no reuse "also across several server nodes"; "Idempotency"; WebSocket item 4).

Live delivery between nodes needs a shared broker (Redis or NATS); these nodes keep the
default in-process broker, so only what goes through storage is tested here: seq allocation,
the idempotency key, history and catch-up."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from e2e_support import NO_FLOOD_CONTROL, Crowd, Json, Person, postgres_storage_section

from chatcore.testing.server import ServerProcess, start_server
from chatcore.testing.wsclient import WAIT, WSClient, new_ref

pytestmark = [pytest.mark.anyio, pytest.mark.e2e, pytest.mark.postgres]


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServerProcess]]:
    """Two server processes on one PostgreSQL schema (same auth secret: tokens work on both),
    shared by the tests of this module (each makes its own users and rooms)."""
    with ExitStack() as stack:
        storage = stack.enter_context(postgres_storage_section())
        config: dict[str, Any] = {"storage": storage, "websocket": NO_FLOOD_CONTROL}
        yield [
            stack.enter_context(start_server(tmp_path_factory.mktemp(f"node_{name}"), config))
            for name in ("a", "b")
        ]


def on(node: ServerProcess, person: Person) -> Person:
    """The same user, talking to another node."""
    return Person(person.user, person.http, node.api)


async def pipelined(ws: WSClient, room_id: str, count: int) -> list[Json]:
    refs = [new_ref("node") for _ in range(count)]
    for ref in refs:
        await ws.send_frame({"type": "send", "ref": ref, "room_id": room_id, "body": ref})
    replies = [await ws.recv_reply(ref, timeout=4 * WAIT) for ref in refs]
    assert all(r["type"] == "ack" for r in replies), [r for r in replies if r["type"] != "ack"]
    return [r["message"] for r in replies]


async def test_concurrent_senders_on_two_nodes_get_seqs_without_gaps_or_reuse(
    nodes: list[ServerProcess],
) -> None:
    """Senders on node A and node B writing into one room at once get seqs 1..N, each once;
    both nodes serve the same history."""
    node_a, node_b = nodes
    async with Crowd(node_a) as crowd_a, Crowd(node_b) as crowd_b:
        alice, carol = await crowd_a.people(2)
        bob = await crowd_b.person()  # registered through node B
        room = await alice.group("two nodes", [bob, carol])
        rid = room["id"]
        alice_ws = await crowd_a.session(alice)
        carol_ws = await crowd_a.session(carol)
        bob_ws = await crowd_b.session(bob)
        batches = await asyncio.gather(
            pipelined(alice_ws, rid, 80), pipelined(bob_ws, rid, 80), pipelined(carol_ws, rid, 80)
        )
        seqs = sorted(m["seq"] for batch in batches for m in batch)
        assert seqs == list(range(1, 241)), "seqs reused or skipped across nodes"
        history_a = await alice.all_messages(rid)
        history_b = await bob.all_messages(rid)
        assert history_a == history_b
        assert [m["seq"] for m in history_a] == list(range(1, 241))


async def test_the_idempotency_key_holds_across_nodes(nodes: list[ServerProcess]) -> None:
    """A ref used on node A answers the stored message on node B (REST and WebSocket)."""
    node_a, node_b = nodes
    async with Crowd(node_a) as crowd_a, Crowd(node_b) as crowd_b:
        alice, bob = await crowd_a.people(2)
        room = await alice.group("g", [bob])
        ref = new_ref()
        first = await alice.send_rest(room["id"], "once", ref=ref)
        alice_on_b = on(node_b, alice)
        assert await alice_on_b.send_rest(room["id"], "twice?", ref=ref, status=200) == first
        ws_b = await crowd_b.session(alice_on_b)
        assert await ws_b.send(room["id"], "thrice?", ref=ref) == {
            "type": "ack",
            "ref": ref,
            "message": first,
        }
        assert (await bob.room(room["id"]))["last_seq"] == 1


async def test_a_client_on_node_b_catches_up_what_was_sent_on_node_a(
    nodes: list[ServerProcess],
) -> None:
    """`sync` on node B sends the messages stored through node A, in seq order."""
    node_a, node_b = nodes
    async with Crowd(node_a) as crowd_a, Crowd(node_b) as crowd_b:
        alice, bob = await crowd_a.people(2)
        room = await alice.group("g", [bob])
        sent = [await alice.send_rest(room["id"], f"m{i}") for i in range(10)]
        bob_ws = await crowd_b.session(on(node_b, bob))
        assert {r["room_id"]: r["last_seq"] for r in bob_ws.ready["rooms"]} == {room["id"]: 10}
        result = await bob_ws.sync({room["id"]: 3})
        assert result.messages(room["id"]) == sent[3:]
        assert result.synced["rooms"][room["id"]] == 10
