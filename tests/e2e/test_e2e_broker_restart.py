"""Two real node processes sharing a PostgreSQL schema and a private broker server (Redis, then
NATS) that dies and comes back mid-run (docs/protocol.md, "Guarantees": the broker is a hint,
storage is the truth).

While the broker is gone, sends are still acknowledged (stored); live delivery to the other
node may be lost. Once the broker is back on the same port, the nodes reconnect by themselves
and live delivery resumes; a client that syncs from its last gap-free seq ends with every
acknowledged message exactly once, seqs 1..N.

A node that cannot reach its broker is not healthy: its /healthz answers 503 while the broker
is gone, and 200 again once it is back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from e2e_support import HTTP_TIMEOUT, NO_FLOOD_CONTROL, Crowd, Json, Person, first_difference

from chatcore.testing.brokers import PrivateServer, nats_server, redis_server, running
from chatcore.testing.server import TIMEOUT_SCALE, ServerProcess
from chatcore.testing.services import unique_name
from chatcore.testing.wsclient import WAIT, WSClient, seqs_of

pytestmark = [pytest.mark.anyio, pytest.mark.e2e, pytest.mark.postgres]

SECRET = "restart-secret-" + "r" * 40
BEFORE, DURING = 20, 10
#: How long the nodes may take to deliver live again once the broker server is back.
RECOVERY_SECONDS = 20.0 * TIMEOUT_SCALE
RECONNECT_SECONDS = 0.2


@pytest.fixture(params=["redis", "nats"])
def broker(request: pytest.FixtureRequest) -> Iterator[tuple[PrivateServer, dict[str, Any]]]:
    """A private broker server (killed at the end) and the `[broker]` section pointing at it."""
    if request.param == "redis":
        server = redis_server()
        section: dict[str, Any] = {
            "url": f"redis://127.0.0.1:{server.port}/0",
            "channel_prefix": unique_name("rs") + ":",
            "reconnect_max_seconds": RECONNECT_SECONDS,
        }
    else:
        server = nats_server()
        section = {
            "url": f"nats://127.0.0.1:{server.port}",
            "subject_prefix": unique_name("rs"),
            "reconnect_wait_seconds": RECONNECT_SECONDS,
        }
    with running(server):
        yield server, section


@pytest.fixture
def nodes(
    postgres_storage: dict[str, Any],
    broker: tuple[PrivateServer, dict[str, Any]],
    server_factory: Callable[..., ServerProcess],
) -> list[ServerProcess]:
    """Two nodes sharing storage, the private broker and the auth secret. Requested after
    the storage and the broker, so the nodes stop before either goes away."""
    return [
        server_factory(
            storage=postgres_storage,
            broker=broker[1],
            auth={"secret": SECRET},
            websocket=NO_FLOOD_CONTROL,
        )
        for _ in range(2)
    ]


async def arrives_live(ws: WSClient, room_id: str, from_seq: int) -> Json | None:
    """A live `message` of `room_id` with seq >= `from_seq`, if one arrives within 0.3 s."""
    try:
        event = await ws.recv(
            "message",
            timeout=0.3,
            match=lambda e: e["message"]["room_id"] == room_id and e["message"]["seq"] >= from_seq,
        )
    except AssertionError:  # WSClient.recv's timeout, unless the server sent a bad frame
        if ws.failure is not None:
            raise
        return None
    message: Json = event["message"]
    return message


async def delivered_again(
    sender: WSClient, receiver: WSClient, room_id: str, deadline: float, acked: list[Json]
) -> Json:
    """Send from `sender` (each ack appended to `acked`) until one of these messages reaches
    `receiver` live; fail at `deadline` (event-loop time). Earlier ones may be lost."""
    loop = asyncio.get_running_loop()
    first = len(acked)
    while True:
        assert loop.time() < deadline, (
            f"no live delivery within {RECOVERY_SECONDS:.0f} s after the broker came back"
        )
        acked.append(await sender.send_message(room_id, f"after {len(acked) - first}"))
        arrived = await arrives_live(receiver, room_id, acked[first]["seq"])
        if arrived is not None:
            assert arrived["id"] in {m["id"] for m in acked[first:]}, arrived
            return arrived


def gap_free(seqs: set[int]) -> int:
    """The highest n such that seqs 1..n were all seen (0 if none)."""
    n = 0
    while n + 1 in seqs:
        n += 1
    return n


async def test_delivery_recovers_after_a_broker_restart_and_nothing_acked_is_lost(
    nodes: list[ServerProcess], broker: tuple[PrivateServer, dict[str, Any]]
) -> None:
    n1, n2 = nodes
    server = broker[0]
    async with Crowd(n1) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.direct(bob)
        bob_ws = await WSClient.open(n2.ws_url, bob.token)
        crowd.sessions.append(bob_ws)
        alice_ws = await WSClient.open(n1.ws_url, alice.token)
        crowd.sessions.append(alice_ws)
        acked: list[Json] = []

        async def send(body: str) -> Json:
            message = await alice_ws.send_message(room["id"], body)
            acked.append(message)
            return message

        # Before: every message crosses from node 1 to node 2 live.
        for i in range(BEFORE):
            await send(f"before {i}")
        live = await bob_ws.messages_until(room["id"], BEFORE, timeout=4 * WAIT)
        assert seqs_of(live) == list(range(1, BEFORE + 1))

        # During: the broker server is gone; storage still takes (and acks) every message.
        server.kill()
        for i in range(DURING):
            await send(f"during {i}")

        # After: the broker is back on the same port; the nodes reconnect by themselves.
        server.start()
        deadline = asyncio.get_running_loop().time() + RECOVERY_SECONDS
        arrived = await delivered_again(alice_ws, bob_ws, room["id"], deadline, acked)
        live.append(arrived)
        live += [e["message"] for e in bob_ws.drain("message")]

        # Storage is the truth: every acknowledged message once, seqs 1..N, no gaps.
        total = len(acked)
        assert seqs_of(acked) == list(range(1, total + 1)), first_difference(
            seqs_of(acked), list(range(1, total + 1))
        )
        seen = {m["seq"] for m in live if m["room_id"] == room["id"]}
        last = gap_free(seen)
        assert last >= BEFORE
        synced = await bob_ws.sync_all({room["id"]: last})
        caught = [m for result in synced for m in result.messages(room["id"])]
        assert seqs_of(caught) == list(range(last + 1, total + 1)), first_difference(
            seqs_of(caught), list(range(last + 1, total + 1))
        )
        by_seq = {m["seq"]: m for m in live if m["seq"] <= last} | {m["seq"]: m for m in caught}
        assert [by_seq[s]["body"] for s in sorted(by_seq)] == [m["body"] for m in acked]
        assert [by_seq[s]["id"] for s in sorted(by_seq)] == [m["id"] for m in acked]

        # Node 1 receives again too: the other direction recovered as well.
        back: list[Json] = []
        await delivered_again(bob_ws, alice_ws, room["id"], deadline, back)
        history = await on(n2, bob).all_messages(room["id"])
        assert [m["id"] for m in history] == [m["id"] for m in acked + back]


def on(node: ServerProcess, person: Person) -> Person:
    """The same user, talking to another node."""
    return Person(person.user, person.http, node.api)


async def health_turns(http: httpx.AsyncClient, node: ServerProcess, status: int) -> httpx.Response:
    """The first /healthz answer with `status`, asked every 50 ms (the broker's outage and
    return are noticed by the node on its own schedule); fails after RECOVERY_SECONDS."""
    deadline = asyncio.get_running_loop().time() + RECOVERY_SECONDS
    while True:
        reply = await http.get(node.base_url + "/healthz")
        if reply.status_code == status:
            return reply
        assert asyncio.get_running_loop().time() < deadline, (
            f"/healthz still answers {reply.status_code} {reply.text}, not {status}"
        )
        await asyncio.sleep(0.05)


async def test_healthz_is_unavailable_while_the_broker_is_down(
    broker: tuple[PrivateServer, dict[str, Any]], server_factory: Callable[..., ServerProcess]
) -> None:
    server, section = broker
    node = server_factory(broker=section)
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
        reply = await http.get(node.base_url + "/healthz")
        assert (reply.status_code, reply.json()) == (200, {"status": "ok"})

        server.kill()
        reply = await health_turns(http, node, 503)
        assert reply.json() == {
            "error": {
                "code": "unavailable",
                "message": "The message broker cannot be reached; try again later.",
            }
        }

        server.start()
        reply = await health_turns(http, node, 200)
        assert reply.json() == {"status": "ok"}
