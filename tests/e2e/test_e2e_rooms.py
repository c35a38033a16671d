"""Rooms over REST and their `room` events over WebSocket (docs/protocol.md "Rooms (dialogs)",
"Conventions: Visibility", WebSocket item 8), black-box against a real server process."""

from __future__ import annotations

import asyncio

import pytest
from e2e_support import Crowd, Json, error_code, expect

from chatcore.testing.server import ServerProcess
from chatcore.testing.wsclient import WSClient

pytestmark = [pytest.mark.anyio, pytest.mark.e2e, pytest.mark.core_suite]

ROOM_FIELDS = {"id", "kind", "name", "member_ids", "owner_id", "last_seq", "unread"}

#: The contract orders rooms by millisecond timestamps; two actions in one millisecond tie.
#: Waiting a few milliseconds between actions whose order a test checks makes the clock move
#: (this waits for time itself, not for an event that may or may not have happened).
TICK = 0.004


def assert_room_shape(room: Json) -> None:
    assert set(room) >= ROOM_FIELDS, f"Room lacks {ROOM_FIELDS - set(room)}: {room}"
    assert isinstance(room["id"], str) and room["id"]
    assert room["kind"] in ("direct", "group")
    assert isinstance(room["member_ids"], list)
    assert isinstance(room["last_seq"], int)
    assert isinstance(room["unread"], int)


async def room_event(ws: WSClient, room_id: str, member_ids: set[str]) -> Json:
    """The next `room` event about `room_id` whose members are exactly `member_ids`."""
    event = await ws.recv(
        "room",
        match=lambda e: e["room"]["id"] == room_id and set(e["room"]["member_ids"]) == member_ids,
    )
    room: Json = event["room"]
    return room


# --- creating rooms -------------------------------------------------------------------------


async def test_direct_room_is_created_once_per_pair_from_either_side(
    server: ServerProcess,
) -> None:
    """POST /rooms direct answers 201 with a new Room, then 200 with the same room from
    either side of the pair."""
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        created = expect(await alice.post("/rooms", {"kind": "direct", "user_id": bob.id}), 201)
        assert_room_shape(created)
        assert created["kind"] == "direct"
        assert created["name"] is None and created["owner_id"] is None
        assert sorted(created["member_ids"]) == sorted([alice.id, bob.id])
        assert created["last_seq"] == 0

        again = expect(await alice.post("/rooms", {"kind": "direct", "user_id": bob.id}), 200)
        assert again["id"] == created["id"]
        other_side = expect(await bob.post("/rooms", {"kind": "direct", "user_id": alice.id}), 200)
        assert other_side["id"] == created["id"]
        assert [r["id"] for r in await alice.rooms()] == [created["id"]]


async def test_direct_rooms_of_different_pairs_are_different(server: ServerProcess) -> None:
    """The direct room is per pair: alice-bob and alice-carol are two rooms."""
    async with Crowd(server) as crowd:
        alice, bob, carol = await crowd.people(3)
        with_bob = await alice.direct(bob)
        with_carol = await alice.direct(carol)
        assert with_bob["id"] != with_carol["id"]
        assert carol.id not in with_bob["member_ids"]


async def test_group_room_has_the_caller_as_owner(server: ServerProcess) -> None:
    """POST /rooms group answers 201 with the caller as owner and every listed member in."""
    async with Crowd(server) as crowd:
        alice, bob, carol = await crowd.people(3)
        reply = await alice.post(
            "/rooms", {"kind": "group", "name": "Planning", "member_ids": [bob.id, carol.id]}
        )
        room = expect(reply, 201)
        assert_room_shape(room)
        assert room["kind"] == "group"
        assert room["name"] == "Planning"
        assert room["owner_id"] == alice.id
        assert set(room["member_ids"]) == {alice.id, bob.id, carol.id}
        assert room["last_seq"] == 0 and room["unread"] == 0
        for member in (alice, bob, carol):
            assert (await member.room(room["id"]))["owner_id"] == alice.id


async def test_get_room_shows_last_seq_last_message_and_unread(server: ServerProcess) -> None:
    """GET /rooms/{id} is the Room as the caller sees it: last_seq, last_message, unread."""
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.group("g", [bob])
        fresh = await bob.room(room["id"])
        assert_room_shape(fresh)
        assert fresh["id"] == room["id"] and fresh["last_seq"] == 0
        assert fresh.get("last_message") is None
        await alice.send_rest(room["id"], "one")
        last = await alice.send_rest(room["id"], "two")
        seen_by_bob = await bob.room(room["id"])
        assert seen_by_bob["last_seq"] == 2
        assert seen_by_bob["last_message"] == last
        assert seen_by_bob["unread"] == 2
        seen_by_alice = await alice.room(room["id"])
        assert seen_by_alice["unread"] == 0, "a user's own messages are never unread"


async def test_room_list_is_most_recently_active_first(server: ServerProcess) -> None:
    """GET /rooms orders by last message ts, else creation ts, newest first, with
    last_message and unread for the caller."""
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        first = await alice.group("first", [bob])
        await asyncio.sleep(TICK)
        second = await alice.group("second", [bob])
        assert [r["id"] for r in await bob.rooms()] == [second["id"], first["id"]]

        await asyncio.sleep(TICK)
        in_first = await alice.send_rest(first["id"], "first is active now")
        rooms = await bob.rooms()
        assert [r["id"] for r in rooms] == [first["id"], second["id"]]
        for room in rooms:
            assert_room_shape(room)
        assert rooms[0]["last_message"] == in_first
        assert rooms[0]["unread"] == 1 and rooms[1]["unread"] == 0
        assert rooms[1].get("last_message") is None

        await asyncio.sleep(TICK)
        third = await alice.group("third, created after the last message", [bob])
        assert [r["id"] for r in await bob.rooms()] == [third["id"], first["id"], second["id"]]

        await asyncio.sleep(TICK)
        await bob.send_rest(second["id"], "second is active now")
        listed = await alice.rooms()
        assert [r["id"] for r in listed] == [second["id"], third["id"], first["id"]]
        assert listed[0]["unread"] == 1 and listed[2]["unread"] == 0


async def test_room_list_holds_only_the_callers_rooms(server: ServerProcess) -> None:
    """A user's GET /rooms never shows rooms they are not a member of."""
    async with Crowd(server) as crowd:
        alice, bob, outsider = await crowd.people(3)
        await alice.group("private", [bob])
        await alice.direct(bob)
        assert await outsider.rooms() == []


# --- membership -----------------------------------------------------------------------------


async def test_any_member_may_add_a_member_to_a_group(server: ServerProcess) -> None:
    """POST /rooms/{id}/members by a member who is not the owner answers 204; the new member
    then sees the room and its history."""
    async with Crowd(server) as crowd:
        alice, bob, dave = await crowd.people(3)
        room = await alice.group("g", [bob])
        message = await alice.send_rest(room["id"], "before dave")
        assert (await dave.get(f"/rooms/{room['id']}")).status_code == 404
        expect(await bob.post(f"/rooms/{room['id']}/members", {"user_id": dave.id}), 204)
        seen = await dave.room(room["id"])
        assert set(seen["member_ids"]) == {alice.id, bob.id, dave.id}
        assert seen["owner_id"] == alice.id
        assert [m["id"] for m in (await dave.history(room["id"]))["messages"]] == [message["id"]]
        assert room["id"] in [r["id"] for r in await dave.rooms()]


async def test_adding_a_member_to_a_direct_room_is_bad_request(server: ServerProcess) -> None:
    """POST /rooms/{id}/members on a direct room answers 400 (group only) and changes
    nothing."""
    async with Crowd(server) as crowd:
        alice, bob, carol = await crowd.people(3)
        room = await alice.direct(bob)
        reply = await alice.post(f"/rooms/{room['id']}/members", {"user_id": carol.id})
        expect(reply, 400, "bad_request")
        assert sorted((await alice.room(room["id"]))["member_ids"]) == sorted([alice.id, bob.id])
        assert (await carol.get(f"/rooms/{room['id']}")).status_code == 404


async def test_a_member_may_leave(server: ServerProcess) -> None:
    """DELETE /rooms/{id}/members/{self} answers 204; the room is then invisible (404)."""
    async with Crowd(server) as crowd:
        alice, bob, carol = await crowd.people(3)
        room = await alice.group("g", [bob, carol])
        expect(await carol.delete(f"/rooms/{room['id']}/members/{carol.id}"), 204)
        assert set((await alice.room(room["id"]))["member_ids"]) == {alice.id, bob.id}
        expect(await carol.get(f"/rooms/{room['id']}"), 404, "not_found")
        expect(await carol.get(f"/rooms/{room['id']}/messages"), 404, "not_found")
        assert room["id"] not in [r["id"] for r in await carol.rooms()]


async def test_the_owner_may_remove_another_member(server: ServerProcess) -> None:
    """DELETE /rooms/{id}/members/{other} by the owner answers 204."""
    async with Crowd(server) as crowd:
        alice, bob, carol = await crowd.people(3)
        room = await alice.group("g", [bob, carol])
        expect(await alice.delete(f"/rooms/{room['id']}/members/{bob.id}"), 204)
        assert set((await carol.room(room["id"]))["member_ids"]) == {alice.id, carol.id}
        expect(await bob.get(f"/rooms/{room['id']}"), 404, "not_found")


async def test_a_member_who_is_not_the_owner_may_not_remove_another(
    server: ServerProcess,
) -> None:
    """DELETE /rooms/{id}/members/{other} by a non-owner member answers 403 forbidden (only
    "oneself, or the owner removing another") and removes nobody."""
    async with Crowd(server) as crowd:
        alice, bob, carol = await crowd.people(3)
        room = await alice.group("g", [bob, carol])
        expect(await bob.delete(f"/rooms/{room['id']}/members/{carol.id}"), 403, "forbidden")
        expect(await bob.delete(f"/rooms/{room['id']}/members/{alice.id}"), 403, "forbidden")
        assert set((await alice.room(room["id"]))["member_ids"]) == {alice.id, bob.id, carol.id}


async def test_a_direct_room_peer_may_not_remove_the_other(server: ServerProcess) -> None:
    """In a direct room (no owner powers) removing the other member is refused and changes
    nothing. The contract names no code for this: 403 forbidden (not oneself, not an owner)
    and 400 bad_request (membership changes are for groups) both fit."""
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.direct(bob)
        reply = await alice.delete(f"/rooms/{room['id']}/members/{bob.id}")
        assert (reply.status_code, error_code(reply)) in {
            (403, "forbidden"),
            (400, "bad_request"),
        }, reply.text
        assert sorted((await bob.room(room["id"]))["member_ids"]) == sorted([alice.id, bob.id])


# --- visibility -----------------------------------------------------------------------------


async def test_outsiders_get_not_found_on_every_room_message_and_receipt_endpoint(
    server: ServerProcess,
) -> None:
    """Every rooms/messages/read endpoint answers 404 not_found to a non-member, exactly as
    for a room that does not exist, and changes nothing."""
    async with Crowd(server) as crowd:
        alice, bob, outsider = await crowd.people(3)
        room = await alice.group("secret", [bob])
        message = await alice.send_rest(room["id"], "hidden")
        rid, mid = room["id"], message["id"]
        calls: list[tuple[str, str, Json | None]] = [
            ("GET", "/rooms/{r}", None),
            ("POST", "/rooms/{r}/members", {"user_id": outsider.id}),
            ("DELETE", "/rooms/{r}/members/" + alice.id, None),
            ("DELETE", "/rooms/{r}/members/" + outsider.id, None),
            ("GET", "/rooms/{r}/messages", None),
            ("GET", "/rooms/{r}/messages?after_seq=0", None),
            ("GET", "/rooms/{r}/messages?before_seq=2", None),
            ("POST", "/rooms/{r}/messages", {"ref": "outsider-ref", "body": "let me in"}),
            ("PATCH", "/rooms/{r}/messages/" + mid, {"body": "rewritten"}),
            ("DELETE", "/rooms/{r}/messages/" + mid, None),
            ("POST", "/rooms/{r}/read", {"seq": 1}),
        ]
        for method, template, body in calls:
            for room_id in (rid, "no-such-room-" + rid):
                path = template.format(r=room_id)
                reply = await outsider.call(method, path, json=body)
                expect(reply, 404, "not_found")
        # Nothing changed for the members.
        seen = await alice.room(rid)
        assert set(seen["member_ids"]) == {alice.id, bob.id}
        assert seen["last_seq"] == 1
        assert (await bob.history(rid))["messages"] == [message]
        assert (await bob.room(rid))["unread"] == 1


async def test_a_member_asking_for_a_message_that_does_not_exist_gets_not_found(
    server: ServerProcess,
) -> None:
    """PATCH/DELETE of an unknown message id in one's own room answers 404 not_found."""
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.group("g", [bob])
        path = f"/rooms/{room['id']}/messages/no-such-message"
        expect(await alice.patch(path, {"body": "x"}), 404, "not_found")
        expect(await alice.delete(path), 404, "not_found")


async def test_a_message_id_of_another_room_is_not_found(server: ServerProcess) -> None:
    """A message id used under a room it does not belong to answers 404 (no cross-room
    access through a room one is a member of)."""
    async with Crowd(server) as crowd:
        alice, bob, mallory = await crowd.people(3)
        secret_room = await alice.group("secret", [bob])
        secret = await alice.send_rest(secret_room["id"], "secret")
        mallory_room = await mallory.group("mallory's", [alice])
        path = f"/rooms/{mallory_room['id']}/messages/{secret['id']}"
        expect(await mallory.patch(path, {"body": "x"}), 404, "not_found")
        expect(await mallory.delete(path), 404, "not_found")
        assert (await alice.history(secret_room["id"]))["messages"] == [secret]


# --- room events ----------------------------------------------------------------------------


async def test_members_get_a_room_event_when_a_group_is_created(server: ServerProcess) -> None:
    """Every session of every member (the creator's too) gets `room` when a group is made."""
    async with Crowd(server) as crowd:
        alice, bob, carol, outsider = await crowd.people(4)
        alice_ws, bob_ws, bob_ws2, carol_ws, outsider_ws = await crowd.sessions_of(
            alice, bob, bob, carol, outsider
        )
        room = await alice.group("g", [bob, carol])
        members = {alice.id, bob.id, carol.id}
        for ws in (alice_ws, bob_ws, bob_ws2, carol_ws):
            seen = await room_event(ws, room["id"], members)
            assert seen["kind"] == "group" and seen["owner_id"] == alice.id
            assert seen["name"] == "g"
        await outsider_ws.ping()
        assert outsider_ws.pending("room") == [], "a room event reached a non-member"


async def test_both_peers_get_a_room_event_when_a_direct_room_is_created(
    server: ServerProcess,
) -> None:
    """Creating a direct room sends `room` to both peers."""
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        alice_ws, bob_ws = await crowd.sessions_of(alice, bob)
        room = await alice.direct(bob)
        for ws in (alice_ws, bob_ws):
            seen = await room_event(ws, room["id"], {alice.id, bob.id})
            assert seen["kind"] == "direct"


async def test_membership_changes_send_room_events(server: ServerProcess) -> None:
    """Adding a member sends `room` (with the new member list) to the members and to the
    added member; removing one sends it to the remaining members."""
    async with Crowd(server) as crowd:
        alice, bob, carol, dave = await crowd.people(4)
        room = await alice.group("g", [bob, carol])
        rid = room["id"]
        alice_ws, bob_ws, carol_ws, dave_ws = await crowd.sessions_of(alice, bob, carol, dave)

        expect(await bob.post(f"/rooms/{rid}/members", {"user_id": dave.id}), 204)
        four = {alice.id, bob.id, carol.id, dave.id}
        for ws in (alice_ws, bob_ws, carol_ws, dave_ws):
            await room_event(ws, rid, four)

        expect(await carol.delete(f"/rooms/{rid}/members/{carol.id}"), 204)
        three = {alice.id, bob.id, dave.id}
        for ws in (alice_ws, bob_ws, dave_ws):
            await room_event(ws, rid, three)

        expect(await alice.delete(f"/rooms/{rid}/members/{dave.id}"), 204)
        for ws in (alice_ws, bob_ws):
            await room_event(ws, rid, {alice.id, bob.id})


async def test_an_added_member_receives_the_rooms_messages_live(server: ServerProcess) -> None:
    """A session open while its user is added to a room gets that room's next messages."""
    async with Crowd(server) as crowd:
        alice, bob, dave = await crowd.people(3)
        room = await alice.group("g", [bob])
        dave_ws = await crowd.session(dave)
        expect(await alice.post(f"/rooms/{room['id']}/members", {"user_id": dave.id}), 204)
        await room_event(dave_ws, room["id"], {alice.id, bob.id, dave.id})
        sent = await alice.send_rest(room["id"], "welcome dave")
        event = await dave_ws.recv("message", match=lambda e: e["message"]["id"] == sent["id"])
        assert event["message"] == sent


async def test_a_removed_member_stops_receiving_the_rooms_messages(
    server: ServerProcess,
) -> None:
    """After leaving, a user's open session gets none of the room's messages."""
    async with Crowd(server) as crowd:
        alice, bob, carol = await crowd.people(3)
        room = await alice.group("g", [bob, carol])
        alice_ws, carol_ws = await crowd.sessions_of(alice, carol)
        expect(await carol.delete(f"/rooms/{room['id']}/members/{carol.id}"), 204)
        await room_event(alice_ws, room["id"], {alice.id, bob.id})
        sent = await alice_ws.send_message(room["id"], "carol is gone")
        await alice_ws.recv("message", match=lambda e: e["message"]["id"] == sent["id"])
        await carol_ws.ping()
        leaked = [e for e in carol_ws.pending("message") if e["message"]["room_id"] == room["id"]]
        assert leaked == [], "a message reached a user who left the room"
