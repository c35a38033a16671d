"""Typing, read receipts and presence over WebSocket (docs/protocol.md WebSocket items 5-7),
black-box against a real server process."""

from __future__ import annotations

import pytest
from e2e_support import Crowd

from chatcore.testing.server import ServerProcess
from chatcore.testing.wsclient import WSClient

pytestmark = [pytest.mark.anyio, pytest.mark.e2e, pytest.mark.core_suite]


async def room_barrier(sender: WSClient, room_id: str, sessions: list[WSClient]) -> None:
    """A message sent after an action reaches every session after the action's events did
    (one fan-out path, in order); then a ping flushes each session."""
    message = await sender.send_message(room_id, "barrier")
    for ws in sessions:
        await ws.messages_until(room_id, message["seq"])
        await ws.ping()


# --- typing -------------------------------------------------------------------------------------


async def test_typing_reaches_the_other_members_and_not_the_sender(server: ServerProcess) -> None:
    """`typing` goes to the other members' sessions as `{type, room_id, user_id, active}`;
    the sending session does not get it back, non-members get nothing, nothing is stored."""
    async with Crowd(server) as crowd:
        alice, bob, carol, outsider = await crowd.people(4)
        room = await alice.group("g", [bob, carol])
        rid = room["id"]
        alice_ws, bob_ws, bob_ws2, carol_ws, outsider_ws = await crowd.sessions_of(
            alice, bob, bob, carol, outsider
        )
        await alice_ws.send_frame({"type": "typing", "room_id": rid, "active": True})
        for ws in (bob_ws, bob_ws2, carol_ws):
            event = await ws.recv("typing")
            assert event == {"type": "typing", "room_id": rid, "user_id": alice.id, "active": True}
        await alice_ws.send_frame({"type": "typing", "room_id": rid, "active": False})
        for ws in (bob_ws, bob_ws2, carol_ws):
            event = await ws.recv("typing")
            assert event == {
                "type": "typing",
                "room_id": rid,
                "user_id": alice.id,
                "active": False,
            }
        await room_barrier(bob_ws, rid, [alice_ws])
        assert alice_ws.pending("typing") == [], "the typing session got its own typing back"
        await outsider_ws.ping()
        assert outsider_ws.pending("typing") == []
        # Not stored: the only message of the room is the barrier.
        assert (await alice.room(rid))["last_seq"] == 1


async def test_typing_in_a_room_one_is_not_in_is_not_found(server: ServerProcess) -> None:
    """`typing` for a room the user is not a member of answers `error` `not_found` and
    reaches nobody."""
    async with Crowd(server) as crowd:
        alice, bob, outsider = await crowd.people(3)
        room = await alice.group("g", [bob])
        bob_ws, outsider_ws = await crowd.sessions_of(bob, outsider)
        await outsider_ws.send_frame(
            {"type": "typing", "room_id": room["id"], "active": True, "ref": "t1"}
        )
        error = await outsider_ws.recv("error")
        assert error["code"] == "not_found", error
        await bob_ws.ping()
        assert bob_ws.pending("typing") == []


# --- read receipts ------------------------------------------------------------------------------


async def test_read_sends_a_receipt_to_every_session_of_every_member(
    server: ServerProcess,
) -> None:
    """`read` gives every session of every member (the reader's own included)
    `{type: receipt, room_id, user_id, seq}`; REST unread follows."""
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.group("g", [bob])
        rid = room["id"]
        for i in range(4):
            await alice.send_rest(rid, f"m{i}")
        reader, reader_other, alice_ws = await crowd.sessions_of(bob, bob, alice)
        await reader.send_frame({"type": "read", "room_id": rid, "seq": 3})
        for ws in (reader, reader_other, alice_ws):
            event = await ws.recv("receipt")
            assert event == {"type": "receipt", "room_id": rid, "user_id": bob.id, "seq": 3}
        assert await bob.unread(rid) == 1


async def test_read_over_websocket_is_clamped_and_monotonic(server: ServerProcess) -> None:
    """A `read` seq over the room's last seq is clamped to it (the receipt says so); a lower
    seq never moves the read position back (no receipt below it)."""
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.group("g", [bob])
        rid = room["id"]
        for i in range(3):
            await alice.send_rest(rid, f"m{i}")
        bob_ws, alice_ws = await crowd.sessions_of(bob, alice)
        await bob_ws.send_frame({"type": "read", "room_id": rid, "seq": 100})
        for ws in (bob_ws, alice_ws):
            event = await ws.recv("receipt")
            assert event["seq"] == 3, f"receipt not clamped to the last seq: {event}"
        await bob_ws.send_frame({"type": "read", "room_id": rid, "seq": 1})
        await bob_ws.ping()
        await room_barrier(alice_ws, rid, [bob_ws, alice_ws])
        for ws in (bob_ws, alice_ws):
            backwards = [e for e in ws.pending("receipt") if e["seq"] < 3]
            assert backwards == [], f"a receipt moved backwards: {backwards}"
        assert await bob.unread(rid) == 1  # only the barrier message


async def test_read_in_a_room_one_is_not_in_is_not_found(server: ServerProcess) -> None:
    """`read` for a room the user is not a member of answers `error` `not_found`."""
    async with Crowd(server) as crowd:
        alice, bob, outsider = await crowd.people(3)
        room = await alice.group("g", [bob])
        await alice.send_rest(room["id"], "x")
        bob_ws, outsider_ws = await crowd.sessions_of(bob, outsider)
        await outsider_ws.send_frame({"type": "read", "room_id": room["id"], "seq": 1})
        error = await outsider_ws.recv("error")
        assert error["code"] == "not_found", error
        await bob_ws.ping()
        assert bob_ws.pending("receipt") == []


# --- presence -----------------------------------------------------------------------------------


async def test_presence_goes_to_direct_room_peers_on_first_open_and_last_close(
    server: ServerProcess,
) -> None:
    """A direct-room peer gets `presence` online when the user's first session opens and
    offline when the last one closes, not for a second session opening or closing."""
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.direct(bob)
        rid = room["id"]
        bob_ws = await crowd.session(bob)

        def of_alice(event: dict[str, object]) -> bool:
            return event.get("user_id") == alice.id

        first = await crowd.session(alice)
        online = await bob_ws.recv("presence", match=of_alice)
        assert online == {"type": "presence", "user_id": alice.id, "status": "online"}

        second = await crowd.session(alice)
        # The second session's message reaches bob after any presence its opening caused.
        await room_barrier(second, rid, [bob_ws])
        assert [e for e in bob_ws.pending("presence") if of_alice(e)] == [], (
            "a second session opening announced presence again"
        )

        await second.close()
        await first.close()
        offline = await bob_ws.recv("presence", match=of_alice)
        assert offline == {"type": "presence", "user_id": alice.id, "status": "offline"}
        await bob_ws.ping()
        assert [e for e in bob_ws.pending("presence") if of_alice(e)] == [], (
            "more presence events than one offline for the last session closing"
        )


async def test_presence_does_not_reach_strangers(server: ServerProcess) -> None:
    """A user who is neither a contact nor a direct-room peer gets no `presence`."""
    async with Crowd(server) as crowd:
        alice, bob, stranger = await crowd.people(3)
        room = await alice.direct(bob)
        bob_ws, stranger_ws = await crowd.sessions_of(bob, stranger)
        alice_ws = await crowd.session(alice)
        await bob_ws.recv("presence", match=lambda e: e["user_id"] == alice.id)
        await room_barrier(alice_ws, room["id"], [bob_ws])
        await stranger_ws.ping()
        assert stranger_ws.pending("presence") == []
