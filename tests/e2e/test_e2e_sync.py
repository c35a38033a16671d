"""Catch-up after reconnect (docs/protocol.md WebSocket items 1 and 4), black-box against a real
server process."""

from __future__ import annotations

import asyncio

import pytest
from e2e_support import Crowd, Json, expect, first_difference, ready_seqs

from chatcore.testing.server import ServerProcess
from chatcore.testing.wsclient import WAIT, WSClient, new_ref

pytestmark = [pytest.mark.anyio, pytest.mark.e2e, pytest.mark.core_suite]

#: Edits are selected by "made after since_ts" in milliseconds; waiting a few milliseconds
#: makes the server's clock move past a timestamp the test took (time, not an event).
TICK = 0.004


async def seen_until(ws: WSClient, room_id: str, seq: int) -> list[int]:
    return [m["seq"] for m in await ws.messages_until(room_id, seq)]


async def test_ready_lists_every_room_with_its_last_seq(server: ServerProcess) -> None:
    """`ready` carries `rooms: [{room_id, last_seq}]` for every room of the user."""
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        quiet = await alice.group("quiet", [bob])
        busy = await alice.group("busy", [bob])
        for i in range(3):
            await alice.send_rest(busy["id"], f"m{i}")
        await alice.group("without bob", [])
        ws = await crowd.session(bob)
        assert all(set(r) >= {"room_id", "last_seq"} for r in ws.ready["rooms"]), ws.ready
        assert ready_seqs(ws) == {quiet["id"]: 0, busy["id"]: 3}


async def test_sync_after_reconnect_sends_exactly_the_missed_messages(
    server: ServerProcess,
) -> None:
    """After a reconnect, `sync` with the last seen seq sends exactly the missed messages, in
    seq order, then `synced` with the highest seq sent and no has_more."""
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.group("g", [bob])
        rid = room["id"]
        bob_ws = await crowd.session(bob)
        for i in range(5):
            await alice.send_rest(rid, f"seen {i}")
        assert await seen_until(bob_ws, rid, 5) == [1, 2, 3, 4, 5]
        await bob_ws.close()

        missed = [await alice.send_rest(rid, f"missed {i}") for i in range(30)]
        bob_ws = await crowd.session(bob)
        assert ready_seqs(bob_ws)[rid] == 35
        ref = new_ref("sync")
        result = await bob_ws.sync({rid: 5}, ref=ref)
        assert result.synced["ref"] == ref
        assert result.messages(rid) == missed, first_difference(
            result.seqs(rid), list(range(6, 36))
        )
        assert result.synced["rooms"][rid] == 35
        assert rid not in result.synced["has_more"], result.synced
        await bob_ws.ping()
        assert bob_ws.pending("message") == [], "messages after synced that nobody sent"


async def test_sync_when_up_to_date_sends_no_messages(server: ServerProcess) -> None:
    """`sync` with the room's last seq answers `synced` with no catch-up messages."""
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.group("g", [bob])
        await alice.send_rest(room["id"], "one")
        ws = await crowd.session(bob)
        result = await ws.sync({room["id"]: 1})
        assert result.messages() == []
        assert result.synced["rooms"].get(room["id"], 1) == 1
        assert room["id"] not in result.synced["has_more"]


async def test_rooms_not_listed_are_caught_up_from_zero(server: ServerProcess) -> None:
    """A room the user belongs to but did not list in `sync` is caught up from seq 0."""
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        listed = await alice.group("listed", [bob])
        unlisted = await alice.group("unlisted", [bob])
        for i in range(3):
            await alice.send_rest(listed["id"], f"l{i}")
        unlisted_messages = [await alice.send_rest(unlisted["id"], f"u{i}") for i in range(4)]
        ws = await crowd.session(bob)
        result = await ws.sync({listed["id"]: 3})
        assert result.messages(unlisted["id"]) == unlisted_messages
        assert result.messages(listed["id"]) == []
        assert result.synced["rooms"][unlisted["id"]] == 4
        assert result.synced["rooms"].get(listed["id"], 3) == 3

        everything = await ws.sync({})
        assert everything.seqs(listed["id"]) == [1, 2, 3]
        assert everything.seqs(unlisted["id"]) == [1, 2, 3, 4]
        assert everything.synced["rooms"][listed["id"]] == 3
        assert everything.synced["rooms"][unlisted["id"]] == 4


async def test_a_listed_room_the_user_is_not_in_is_skipped(server: ServerProcess) -> None:
    """A listed room the user is not a member of (or that does not exist) is skipped: no
    messages, not in `synced`, and the user's own rooms are still caught up."""
    async with Crowd(server) as crowd:
        alice, bob, carol = await crowd.people(3)
        foreign = await alice.group("alice and carol", [carol])
        await alice.send_rest(foreign["id"], "not for bob")
        own = await alice.group("with bob", [bob])
        mine = await alice.send_rest(own["id"], "for bob")
        ws = await crowd.session(bob)
        result = await ws.sync({foreign["id"]: 0, "no-such-room": 0, own["id"]: 0})
        assert result.messages() == [mine]
        assert foreign["id"] not in result.synced["rooms"]
        assert "no-such-room" not in result.synced["rooms"]
        assert foreign["id"] not in result.synced["has_more"]
        assert [e for e in result.between if e["type"] == "error"] == []


async def test_max_sync_messages_bounds_a_sync_and_has_more_asks_for_another(
    limited_server: ServerProcess,
) -> None:
    """At most max_sync_messages per room come in one sync; such a room is in has_more, and
    a sync from the synced value continues where it stopped."""
    server = limited_server
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        long_room = await alice.group("long", [bob])
        short_room = await alice.group("short", [bob])
        long_id, short_id = long_room["id"], short_room["id"]
        for i in range(12):
            await alice.send_rest(long_id, f"m{i}")
        for i in range(2):
            await alice.send_rest(short_id, f"s{i}")
        ws = await crowd.session(bob)

        first = await ws.sync({long_id: 0, short_id: 0})
        assert first.seqs(long_id) == [1, 2, 3, 4, 5]
        assert first.seqs(short_id) == [1, 2]
        assert first.synced["rooms"][long_id] == 5
        assert first.synced["has_more"].get(long_id) is True
        assert short_id not in first.synced["has_more"]

        second = await ws.sync({long_id: 5, short_id: 2})
        assert second.seqs(long_id) == [6, 7, 8, 9, 10]
        assert second.synced["rooms"][long_id] == 10
        assert second.synced["has_more"].get(long_id) is True

        third = await ws.sync({long_id: 10, short_id: 2})
        assert third.seqs(long_id) == [11, 12]
        assert third.synced["rooms"][long_id] == 12
        assert long_id not in third.synced["has_more"]


async def test_since_ts_sends_edits_and_deletes_as_message_updated_before_synced(
    server: ServerProcess,
) -> None:
    """With since_ts, edits and deletes made after it to messages at or below the listed
    seqs come as `message_updated` (current state) before `synced`."""
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.group("g", [bob])
        rid = room["id"]
        sent = [await alice.send_rest(rid, f"m{i}") for i in range(1, 6)]
        bob_ws = await crowd.session(bob)
        result = await bob_ws.sync({rid: 0})
        assert result.seqs(rid) == [1, 2, 3, 4, 5]
        since_ts = max(m["ts"] for m in result.messages(rid))
        await bob_ws.close()

        await asyncio.sleep(TICK)
        path = f"/rooms/{rid}/messages/"
        edited = expect(await alice.patch(path + sent[1]["id"], {"body": "m2, edited"}), 200)
        expect(await alice.delete(path + sent[2]["id"]), 204)
        newer = await alice.send_rest(rid, "m6")

        bob_ws = await crowd.session(bob)
        result = await bob_ws.sync({rid: 5}, since_ts=since_ts)
        updates = {m["seq"]: m for m in result.updates()}
        assert set(updates) >= {2, 3}, f"missing message_updated: got seqs {sorted(updates)}"
        assert updates[2] == edited
        assert updates[3]["id"] == sent[2]["id"]
        assert updates[3]["deleted"] is True and updates[3]["body"] == ""
        assert result.messages(rid) == [newer]
        assert result.synced["rooms"][rid] == 6


async def test_catch_up_racing_live_traffic_ends_with_every_seq_exactly_once(
    fast_server: ServerProcess,
) -> None:
    """While a client catches up a 500-message gap, another member keeps sending: between
    `sync` and `synced` the room's catch-up comes in seq order, after `synced` only seqs above
    the synced value arrive, in order, and after dedupe by (room_id, seq) the client has every
    seq exactly once."""
    server = fast_server
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.group("race", [bob])
        rid = room["id"]
        alice_ws, bob_ws = await crowd.sessions_of(alice, bob)
        for i in range(3):
            await alice_ws.send_message(rid, f"seen {i}")
        assert await seen_until(bob_ws, rid, 3) == [1, 2, 3]
        await bob_ws.close()

        await pump(alice_ws, rid, 500)
        live = LiveSender(alice_ws, rid)
        live_task = asyncio.create_task(live.run())
        try:
            await live.wait_acks(1)  # the live sender is under way before the reconnect
            bob_ws = await crowd.session(bob)
            result = await bob_ws.sync({rid: 3}, timeout=4 * WAIT)
            await live.wait_acks(len(live.acks) + 20)  # and goes on a little after synced
        finally:
            live.stop.set()
            await live_task
        final = live.acks[-1]

        synced_seq = result.synced["rooms"][rid]
        assert rid not in result.synced["has_more"], "a 500-message gap fits max_sync_messages"
        window = result.seqs(rid)
        catch_up = list(range(4, synced_seq + 1))
        assert synced_seq >= 503
        # Live events the server sent before it read the `sync` frame may precede the catch-up
        # in the window (they are in flight when the client sends `sync`); after it read
        # `sync`, only the catch-up comes, in seq order, ending at the synced value.
        assert window[len(window) - len(catch_up) :] == catch_up, (
            "catch-up between sync and synced is not seqs 4..synced in order: "
            + first_difference(window[len(window) - len(catch_up) :], catch_up)
        )
        early = window[: len(window) - len(catch_up)]
        assert early == sorted(set(early)) and all(s > 3 for s in early), early

        await bob_ws.messages_until(rid, final, timeout=3 * WAIT)
        synced_index = next(i for i, e in enumerate(bob_ws.log) if e is result.synced)
        after = [
            e["message"]["seq"]
            for e in bob_ws.log[synced_index + 1 :]
            if e["type"] == "message" and e["message"]["room_id"] == rid
        ]
        expected_after = list(range(synced_seq + 1, final + 1))
        assert after == expected_after, (
            "live messages after synced must be exactly the seqs above the synced value, in "
            "order: " + first_difference(after, expected_after)
        )
        seen = {1, 2, 3} | set(window) | set(after)
        assert seen == set(range(1, final + 1))
        history = await bob.all_messages(rid)
        assert [m["seq"] for m in history] == list(range(1, final + 1))


async def pump(ws: WSClient, room_id: str, count: int) -> list[Json]:
    """Send `count` messages pipelined on one session; their acks, in send order."""
    refs = [new_ref("pump") for _ in range(count)]
    for i, ref in enumerate(refs):
        await ws.send_frame({"type": "send", "ref": ref, "room_id": room_id, "body": f"gap {i}"})
    replies = [await ws.recv_reply(ref, timeout=4 * WAIT) for ref in refs]
    assert all(r["type"] == "ack" for r in replies), [r for r in replies if r["type"] != "ack"]
    return [r["message"] for r in replies]


class LiveSender:
    """Sends one message after another on a session (each after the previous ack) until
    `stop` is set; `acks` holds the acknowledged seqs."""

    def __init__(self, ws: WSClient, room_id: str) -> None:
        self.ws = ws
        self.room_id = room_id
        self.stop = asyncio.Event()
        self.acks: list[int] = []
        self._progress = asyncio.Condition()

    async def run(self) -> None:
        while not self.stop.is_set():
            message = await self.ws.send_message(self.room_id, f"live {len(self.acks)}")
            async with self._progress:
                self.acks.append(message["seq"])
                self._progress.notify_all()

    async def wait_acks(self, count: int) -> None:
        """Wait until `count` sends in all were acknowledged."""
        async with asyncio.timeout(WAIT), self._progress:
            await self._progress.wait_for(lambda: len(self.acks) >= count)
