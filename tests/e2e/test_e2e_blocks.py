"""Blocks in group rooms (docs/protocol.md, "Blocks"), black-box against real server processes.

Two members of a group on either side of a block see neither each other's typing nor their
read receipts, while a third member sees both; the group's messages still reach everyone;
neither of the two can pull the other into a group. A block or unblock made on one node
reaches the others.

Every "does not arrive" is checked behind a later event of the same author in the same room
that does arrive (a message): the hidden event, sent first, would have come before it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_support import Crowd, Json, Person, befriend, expect

from chatcore.server.contacts import NOT_ACCEPTED, YOU_BLOCKED
from chatcore.testing.cluster import KINDS, ClusterProcess, start_cluster
from chatcore.testing.server import ServerProcess
from chatcore.testing.services import nats_url, redis_url, require_url
from chatcore.testing.wsclient import WSClient

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


async def type_in(ws: WSClient, room_id: str) -> None:
    await ws.send_frame({"type": "typing", "room_id": room_id, "active": True})


def by(user_id: str) -> Any:
    """Matches an event about `user_id` (typing, receipt)."""
    return lambda event: event.get("user_id") == user_id


async def arrives(ws: WSClient, message: Json) -> Json:
    """The `message` event of `message` (waited for)."""
    return await ws.recv("message", match=lambda e: e["message"]["id"] == message["id"])


async def nothing_from(author: WSClient, watcher: WSClient, room_id: str) -> None:
    """`author` sends a message; once `watcher` has it, no typing or receipt of `author` came
    (what `author` sent before the message would have arrived first)."""
    await arrives(watcher, await author.send_message(room_id, "marker"))
    leaked = [e for e in watcher.pending() if e["type"] in ("typing", "receipt")]
    assert [e for e in leaked if by(author.user_id)(e)] == [], leaked


async def block(person: Person, other: Person) -> None:
    expect(await person.post("/blocks", {"user_id": other.id}), 204)


def removed(event: Json) -> bool:
    return bool(event["event"] == "removed")


async def test_typing_and_receipts_do_not_cross_a_block_in_a_group(server: ServerProcess) -> None:
    async with Crowd(server) as crowd:
        blocker, blocked, witness = await crowd.people(3)
        await befriend(blocker, blocked)
        room_id = (await witness.group("team", [blocker, blocked]))["id"]
        blocker_ws, blocked_ws, witness_ws = await crowd.sessions_of(blocker, blocked, witness)
        await block(blocker, blocked)
        # The block ends their contact: once both sessions are told, every node knows of the
        # block (see the last test), also in cluster mode.
        for ws in (blocker_ws, blocked_ws):
            await ws.recv("contact", match=removed)

        # Both ways: whoever types and reads, the other side of the block sees neither.
        for author, other in ((blocked_ws, blocker_ws), (blocker_ws, blocked_ws)):
            await type_in(author, room_id)
            message = await author.send_message(room_id, "hello, group")
            await author.send_frame({"type": "read", "room_id": room_id, "seq": message["seq"]})
            # The third member sees all of it: the events were sent.
            await witness_ws.recv("typing", match=by(author.user_id))
            receipt = await witness_ws.recv("receipt", match=by(author.user_id))
            assert receipt["seq"] == message["seq"]
            await nothing_from(author, other, room_id)
            # Group messages still reach the other side (its clients may hide them).
            assert (await arrives(other, message))["message"]["body"] == "hello, group"

        # The witness's own typing reaches both.
        await type_in(witness_ws, room_id)
        for ws in (blocker_ws, blocked_ws):
            await ws.recv("typing", match=by(witness.id))


async def test_neither_side_of_a_block_can_add_the_other_to_a_group(server: ServerProcess) -> None:
    async with Crowd(server) as crowd:
        blocker, blocked, witness = await crowd.people(3)
        await block(blocker, blocked)

        # The blocked user learns only that the other does not accept it; the blocker, why.
        for person, other, message in (
            (blocked, blocker, NOT_ACCEPTED),
            (blocker, blocked, YOU_BLOCKED),
        ):
            reply = await person.post(
                "/rooms", {"kind": "group", "name": "g", "member_ids": [witness.id, other.id]}
            )
            assert expect(reply, 403, "forbidden")["error"]["message"] == message
            own = await person.group("mine", [witness])
            reply = await person.post(f"/rooms/{own['id']}/members", {"user_id": other.id})
            assert expect(reply, 403, "forbidden")["error"]["message"] == message
            assert sorted((await person.room(own["id"]))["member_ids"]) == sorted(
                [person.id, witness.id]
            )

        # Anyone else may put both in one group.
        room = await witness.group("both", [blocker])
        expect(await witness.post(f"/rooms/{room['id']}/members", {"user_id": blocked.id}), 204)


# --- across nodes -------------------------------------------------------------------------------


@pytest.fixture(params=KINDS)
def cluster(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_storage: dict[str, Any]
) -> Iterator[ClusterProcess]:
    """Two nodes sharing PostgreSQL and a Redis or NATS broker."""
    require_url(request.param, redis_url() if request.param == "redis" else nats_url())
    with start_cluster(tmp_path, request.param, postgres_storage) as running:
        yield running


def on(node: ServerProcess, person: Person) -> Person:
    """The same user, talking to another node."""
    return Person(person.user, person.http, node.api)


@pytest.mark.postgres
async def test_a_block_made_on_one_node_takes_effect_on_the_other(
    cluster: ClusterProcess,
) -> None:
    """The blocked user's node filters their typing: it learns of the block, and of its end,
    from the note the blocker's node publishes on the broker before the `contact` events the
    change causes. So once the blocked user's session has such an event, the block holds for
    their typing (without a contact or an invitation between the two, it holds within the
    broker's delivery time)."""
    one, two = cluster.nodes
    async with Crowd(one) as crowd:
        blocker, blocked, witness = await crowd.people(3)
        await befriend(blocker, blocked)
        room_id = (await witness.group("team", [blocker, blocked]))["id"]
        blocker_ws = await WSClient.open(one.ws_url, blocker.token)
        crowd.sessions.append(blocker_ws)
        blocked_ws = await WSClient.open(two.ws_url, blocked.token)
        crowd.sessions.append(blocked_ws)

        # Before: typing crosses from node 2 to node 1 (and node 2 now keeps the typist's
        # block set in memory: the note must update it).
        await type_in(blocked_ws, room_id)
        await blocker_ws.recv("typing", match=by(blocked.id))

        await block(on(one, blocker), blocked)
        await blocked_ws.recv("contact", match=removed)
        await type_in(blocked_ws, room_id)
        await nothing_from(blocked_ws, blocker_ws, room_id)

        # An invitation from the blocked user stays hidden; lifting the block declines it.
        expect(await on(two, blocked).post("/contacts/invitations", {"user_id": blocker.id}), 201)
        await blocked_ws.recv("contact", match=lambda e: e["event"] == "invited")
        expect(await on(one, blocker).delete(f"/blocks/{blocked.id}"), 204)
        await blocked_ws.recv("contact", match=removed)
        await type_in(blocked_ws, room_id)
        event: Json = await blocker_ws.recv("typing", match=by(blocked.id))
        assert event == {
            "type": "typing",
            "room_id": room_id,
            "user_id": blocked.id,
            "active": True,
        }
