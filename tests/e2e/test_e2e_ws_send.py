"""Sending and delivery over WebSocket (docs/protocol.md WebSocket items 2 and 3, "Idempotency"),
black-box against a real server process."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from e2e_support import Crowd, Json, first_difference

from chatcore.testing.server import ServerProcess
from chatcore.testing.wsclient import WAIT, WSClient, new_ref

pytestmark = [pytest.mark.anyio, pytest.mark.e2e, pytest.mark.core_suite]


def of_room(room_id: str) -> Callable[[Json], bool]:
    """Match `message` events of one room."""
    return lambda e: e["message"]["room_id"] == room_id


async def assert_no_more_messages(sessions: list[WSClient], room_id: str) -> None:
    """After a ping barrier on each session, none holds a pending `message` of `room_id`."""
    for ws in sessions:
        await ws.ping()
        extra = [e["message"] for e in ws.pending("message") if e["message"]["room_id"] == room_id]
        assert extra == [], f"unexpected deliveries to session {ws.ready['session_id']}: {extra}"


async def test_ack_carries_the_full_stored_message(server: ServerProcess) -> None:
    """`send` is answered by `{"type": "ack", "ref", "message": Message}`, the Message as
    stored (REST history shows the same object)."""
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.group("g", [bob])
        ws = await crowd.session(alice)
        ref = new_ref()
        ack = await ws.send(room["id"], "over the socket", ref=ref)
        assert ack["type"] == "ack" and ack["ref"] == ref, ack
        message = ack["message"]
        assert message["room_id"] == room["id"] and message["sender_id"] == alice.id
        assert message["ref"] == ref and message["seq"] == 1
        assert message["body"] == "over the socket" and message["kind"] == "text"
        assert message["deleted"] is False and isinstance(message["ts"], int)
        assert (await bob.history(room["id"]))["messages"] == [message]


async def test_every_session_of_every_member_gets_the_message(server: ServerProcess) -> None:
    """Every live session of every member gets `message`: the sending session (besides its
    ack), the sender's other session and each of the other member's sessions; a non-member's
    session gets nothing."""
    async with Crowd(server) as crowd:
        alice, bob, outsider = await crowd.people(3)
        room = await alice.group("g", [bob])
        sender, alice_other, bob_one, bob_two, stranger = await crowd.sessions_of(
            alice, alice, bob, bob, outsider
        )
        message = await sender.send_message(room["id"], "to everyone")
        for ws in (sender, alice_other, bob_one, bob_two):
            event = await ws.recv("message", match=of_room(room["id"]))
            assert event == {"type": "message", "message": message}
        await assert_no_more_messages([sender, alice_other, bob_one, bob_two], room["id"])
        await stranger.ping()
        assert stranger.pending("message") == []


async def test_a_message_posted_over_rest_is_delivered_over_websocket(
    server: ServerProcess,
) -> None:
    """A message stored through REST reaches every member's live sessions as `message`."""
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.group("g", [bob])
        alice_ws, bob_ws = await crowd.sessions_of(alice, bob)
        sent = await alice.send_rest(room["id"], "via REST")
        for ws in (alice_ws, bob_ws):
            assert (await ws.recv("message", match=of_room(room["id"])))["message"] == sent


async def test_same_ref_again_gets_the_same_ack_and_no_second_delivery(
    server: ServerProcess,
) -> None:
    """A repeated `send` ref gets an ack with the same message (same id and seq, original
    body) and nobody gets a second `message` for it."""
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.group("g", [bob])
        rid = room["id"]
        sender, alice_other, bob_ws = await crowd.sessions_of(alice, alice, bob)
        sessions = [sender, alice_other, bob_ws]
        ref = new_ref()
        first = await sender.send_message(rid, "once", ref=ref)
        for ws in sessions:
            assert (await ws.recv("message", match=of_room(rid)))["message"] == first

        again = await sender.send(rid, "twice?", ref=ref)
        assert again == {"type": "ack", "ref": ref, "message": first}
        # The same ref from the sender's other session is the same key too.
        other = await alice_other.send(rid, "thrice?", ref=ref)
        assert other == {"type": "ack", "ref": ref, "message": first}

        # Barrier: a new message is delivered in seq order after anything sent before it, so
        # a second delivery of seq 1 would show up before seq 2 does.
        barrier = await sender.send_message(rid, "barrier")
        assert barrier["seq"] == 2, "the repeated ref took a seq"
        for ws in sessions:
            got = await ws.messages_until(rid, barrier["seq"])
            assert [m["seq"] for m in got] == [2], f"second delivery of the repeated ref: {got}"
        await assert_no_more_messages(sessions, rid)
        assert [m["seq"] for m in (await bob.history(rid))["messages"]] == [2, 1]


async def test_rest_and_websocket_share_the_idempotency_key(server: ServerProcess) -> None:
    """A ref used over REST answers an ack of the stored message over WebSocket (no new
    message, no delivery), and a ref used over WebSocket answers 200 over REST."""
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.group("g", [bob])
        rid = room["id"]
        alice_ws, bob_ws = await crowd.sessions_of(alice, bob)

        rest_ref = new_ref()
        over_rest = await alice.send_rest(rid, "sent over REST", ref=rest_ref)
        for ws in (alice_ws, bob_ws):
            assert (await ws.recv("message", match=of_room(rid)))["message"] == over_rest
        ack = await alice_ws.send(rid, "the same ref over WebSocket", ref=rest_ref)
        assert ack == {"type": "ack", "ref": rest_ref, "message": over_rest}

        ws_ref = new_ref()
        over_ws = await alice_ws.send_message(rid, "sent over WebSocket", ref=ws_ref)
        assert over_ws["seq"] == 2
        again = await alice.send_rest(rid, "the same ref over REST", ref=ws_ref, status=200)
        assert again == over_ws

        for ws in (alice_ws, bob_ws):
            got = await ws.messages_until(rid, 2)
            assert [m["seq"] for m in got] == [2]
        await assert_no_more_messages([alice_ws, bob_ws], rid)
        assert (await alice.room(rid))["last_seq"] == 2


async def test_send_to_a_room_one_is_not_in_is_not_found(server: ServerProcess) -> None:
    """`send` to a room the user is not a member of (or that does not exist) answers
    `error` `not_found` with the ref, and stores nothing."""
    async with Crowd(server) as crowd:
        alice, bob, outsider = await crowd.people(3)
        room = await alice.group("g", [bob])
        bob_ws, outsider_ws = await crowd.sessions_of(bob, outsider)
        for room_id in (room["id"], "no-such-room"):
            ref = new_ref()
            error = await outsider_ws.send(room_id, "let me in", ref=ref)
            assert error["type"] == "error", error
            assert error["code"] == "not_found" and error["ref"] == ref, error
            assert isinstance(error["message"], str) and error["message"]
        await outsider_ws.ping()
        assert (await alice.room(room["id"]))["last_seq"] == 0
        await bob_ws.ping()
        assert bob_ws.pending("message") == []


async def test_a_body_over_max_message_bytes_is_too_large_over_websocket(
    limited_server: ServerProcess,
) -> None:
    """`send` with a body over max_message_bytes answers `error` `too_large` with the ref;
    nothing is stored and the ref stays usable."""
    server = limited_server
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.group("g", [bob])
        ws = await crowd.session(alice)
        ref = new_ref()
        error = await ws.send(room["id"], "é" * 51, ref=ref)
        assert error["type"] == "error" and error["code"] == "too_large", error
        assert error["ref"] == ref
        assert (await alice.room(room["id"]))["last_seq"] == 0
        message = await ws.send_message(room["id"], "é" * 50, ref=ref)
        assert message["seq"] == 1 and message["body"] == "é" * 50


@pytest.mark.parametrize(
    "transports",
    [
        pytest.param(("ws", "ws", "ws", "ws"), id="websocket"),
        pytest.param(("ws", "rest", "ws", "rest"), id="websocket-and-rest"),
    ],
)
async def test_concurrent_senders_are_delivered_in_seq_order_without_gaps(
    server: ServerProcess, transports: tuple[str, ...]
) -> None:
    """4 members each send 50 messages at once into one group (over WebSocket, or half of
    them over REST): every member's session (and a listening member's) sees seqs 1..200
    exactly once, strictly increasing, each `message` equal to the sender's ack."""
    per_sender = 50
    async with Crowd(server) as crowd:
        people = await crowd.people(5)
        owner = people[0]
        senders_people = people[:4]
        room = await owner.group("busy", people[1:])
        rid = room["id"]
        sessions = await crowd.sessions_of(*people)
        senders = sessions[:4]
        total = per_sender * len(senders)

        async def burst(ws: WSClient, who: int) -> list[Json]:
            refs = [new_ref(f"s{who}") for _ in range(per_sender)]
            if transports[who] == "rest":
                gate = asyncio.Semaphore(8)

                async def post(i: int, ref: str) -> Json:
                    async with gate:
                        return await senders_people[who].send_rest(rid, f"{who}:{i}", ref=ref)

                return list(await asyncio.gather(*(post(i, r) for i, r in enumerate(refs))))
            for i, ref in enumerate(refs):
                await ws.send_frame(
                    {"type": "send", "ref": ref, "room_id": rid, "body": f"{who}:{i}"}
                )
            replies = [await ws.recv_reply(ref, timeout=3 * WAIT) for ref in refs]
            for reply in replies:
                assert reply["type"] == "ack", reply
            return [r["message"] for r in replies]

        acked = await asyncio.gather(*(burst(ws, i) for i, ws in enumerate(senders)))
        by_seq = {m["seq"]: m for messages in acked for m in messages}
        assert sorted(by_seq) == list(range(1, total + 1)), "acks do not cover seqs 1..200"
        for who, messages in enumerate(acked):
            assert all(m["sender_id"] == senders_people[who].id for m in messages)

        for ws in sessions:
            got = await ws.messages_until(rid, total, timeout=3 * WAIT)
            seqs = [m["seq"] for m in got]
            expected = list(range(1, total + 1))
            assert seqs == expected, (
                f"{ws.user_id} saw seqs out of order, with gaps or twice: "
                + first_difference(seqs, expected)
            )
            assert got == [by_seq[s] for s in seqs]
        await assert_no_more_messages(sessions, rid)


async def test_a_send_refused_by_flood_control_stores_nothing_and_its_ref_works_later(
    server_factory: Callable[..., ServerProcess],
) -> None:
    """A `send` refused by flood control gets `error` `rate_limited` with its ref and
    `retry_after_ms`, stores nothing, and the same ref resent after that time is stored once."""
    server = server_factory(websocket={"rate_per_second": 2, "rate_burst": 2})
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.group("g", [bob])
        rid = room["id"]
        ws = await crowd.session(alice)
        refs = [new_ref() for _ in range(3)]
        for ref in refs:
            await ws.send_frame({"type": "send", "ref": ref, "room_id": rid, "body": ref})
        replies = [await ws.recv_reply(ref) for ref in refs]
        assert [r["type"] for r in replies[:2]] == ["ack", "ack"], replies
        refused = replies[2]
        assert refused["type"] == "error" and refused["code"] == "rate_limited", refused
        assert refused["ref"] == refs[2]
        assert isinstance(refused["retry_after_ms"], int) and refused["retry_after_ms"] > 0
        assert (await alice.room(rid))["last_seq"] == 2

        # Waiting the time the server named is what the contract tells a client to do.
        await asyncio.sleep(refused["retry_after_ms"] / 1000)
        message = await ws.send_message(rid, refs[2], ref=refs[2])
        assert message["seq"] == 3 and message["body"] == refs[2]
        history = (await bob.history(rid, after_seq=0))["messages"]
        assert [m["ref"] for m in history] == refs
