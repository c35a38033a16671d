"""Contacts and blocks with live WebSocket events (docs/protocol.md "Contacts (friends) and blocks",
WebSocket items 7 and 8), black-box against a real server process.

`contact` events reach every session of both users, `user` being the other party as the
recipient sees it; presence reaches contacts as it reaches direct-room peers; a block tells the
blocked user nothing and stops presence both ways.
"""

from __future__ import annotations

from typing import Any

import pytest
from e2e_support import Crowd, Person, expect

from chatcore.testing.server import ServerProcess
from chatcore.testing.wsclient import WSClient

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

Json = dict[str, Any]


async def invite(by: Person, to: Person, status: int = 201) -> Json:
    invitation: Json = expect(await by.post("/contacts/invitations", {"user_id": to.id}), status)
    return invitation


async def contact_event(ws: WSClient, event: str) -> Json:
    return await ws.recv("contact", match=lambda e: e.get("event") == event)


async def no_contact_events(*sessions: WSClient) -> None:
    """Every event already sent to these sessions has arrived (a ping is answered after
    them): none of them is a `contact` event."""
    for ws in sessions:
        await ws.ping()
        assert ws.pending("contact") == [], ws.pending("contact")


async def test_invite_and_accept_reach_every_session_of_both(server: ServerProcess) -> None:
    async with Crowd(server) as crowd:
        alice, bob, outsider = await crowd.people(3)
        alice_ws, bob_ws, bob_ws2, outsider_ws = await crowd.sessions_of(alice, bob, bob, outsider)
        invitation = await invite(alice, bob)
        assert await contact_event(alice_ws, "invited") == {
            "type": "contact",
            "event": "invited",
            "invitation": invitation,
            "user": bob.user.user,
        }
        for ws in (bob_ws, bob_ws2):
            assert await contact_event(ws, "invited") == {
                "type": "contact",
                "event": "invited",
                "invitation": invitation,
                "user": alice.user.user,
            }

        accepted = expect(await bob.post(f"/contacts/invitations/{invitation['id']}/accept"), 200)
        # Both are online: each sees the other's presence in the contact.
        assert accepted["contact"]["user"] == alice.user.user
        assert accepted["contact"]["presence"] == "online"
        done = {**invitation, "status": "accepted"}
        event = await contact_event(alice_ws, "accepted")
        assert event == {
            "type": "contact",
            "event": "accepted",
            "invitation": done,
            "user": bob.user.user,
        }
        for ws in (bob_ws, bob_ws2):
            event = await contact_event(ws, "accepted")
            assert event["invitation"] == done and event["user"] == alice.user.user
        await no_contact_events(outsider_ws)


async def test_inviting_back_accepts_live(server: ServerProcess) -> None:
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        alice_ws, bob_ws = await crowd.sessions_of(alice, bob)
        invitation = await invite(alice, bob)
        await contact_event(alice_ws, "invited")
        await contact_event(bob_ws, "invited")
        back = await invite(bob, alice, 200)
        assert back["id"] == invitation["id"] and back["status"] == "accepted"
        for ws in (alice_ws, bob_ws):
            assert (await contact_event(ws, "accepted"))["invitation"] == back
        await no_contact_events(alice_ws, bob_ws)  # no second "invited"


async def test_decline_and_remove_reach_both(server: ServerProcess) -> None:
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        alice_ws, bob_ws = await crowd.sessions_of(alice, bob)
        invitation = await invite(alice, bob)
        expect(await bob.post(f"/contacts/invitations/{invitation['id']}/decline"), 204)
        declined = {**invitation, "status": "declined"}
        for ws, other in ((alice_ws, bob), (bob_ws, alice)):
            await contact_event(ws, "invited")
            event = await contact_event(ws, "removed")
            assert event == {
                "type": "contact",
                "event": "removed",
                "invitation": declined,
                "user": other.user.user,
            }

        again = await invite(alice, bob)
        expect(await bob.post(f"/contacts/invitations/{again['id']}/accept"), 200)
        expect(await bob.delete(f"/contacts/{alice.id}"), 204)
        for ws, other in ((alice_ws, bob), (bob_ws, alice)):
            await contact_event(ws, "invited")
            await contact_event(ws, "accepted")
            event = await contact_event(ws, "removed")
            assert event == {"type": "contact", "event": "removed", "user": other.user.user}
        # Removing again changes nothing and tells nobody.
        expect(await bob.delete(f"/contacts/{alice.id}"), 204)
        await no_contact_events(alice_ws, bob_ws)


async def test_contacts_get_presence_and_the_list_shows_it(server: ServerProcess) -> None:
    """A contact (with no direct room) gets `presence` online and offline; the contact list
    shows who is online; after the contact ends, presence stops."""
    async with Crowd(server) as crowd:
        alice, bob, stranger = await crowd.people(3)
        invitation = await invite(alice, bob)
        expect(await bob.post(f"/contacts/invitations/{invitation['id']}/accept"), 200)
        [listed] = expect(await bob.get("/contacts"), 200)["contacts"]
        assert (listed["user"]["id"], listed["presence"]) == (alice.id, "offline")
        bob_ws, stranger_ws = await crowd.sessions_of(bob, stranger)

        def of_alice(event: Json) -> bool:
            return event.get("user_id") == alice.id

        alice_ws = await crowd.session(alice)
        online = await bob_ws.recv("presence", match=of_alice)
        assert online == {"type": "presence", "user_id": alice.id, "status": "online"}
        [listed] = expect(await bob.get("/contacts"), 200)["contacts"]
        assert listed["presence"] == "online"
        await stranger_ws.ping()
        assert stranger_ws.pending("presence") == []

        await alice_ws.close()
        offline = await bob_ws.recv("presence", match=of_alice)
        assert offline == {"type": "presence", "user_id": alice.id, "status": "offline"}
        [listed] = expect(await bob.get("/contacts"), 200)["contacts"]
        assert listed["presence"] == "offline"

        expect(await bob.delete(f"/contacts/{alice.id}"), 204)
        alice_ws = await crowd.session(alice)
        await alice_ws.ping()  # its presence went out before this answer
        await bob_ws.ping()
        assert [e for e in bob_ws.pending("presence") if of_alice(e)] == []


async def test_a_block_is_silent_for_the_blocked_user(server: ServerProcess) -> None:
    """Blocking ends the contact (both told, as after any removal) and hides the blocked
    user's pending invitation from the blocker only; the blocked user's later invitation
    reaches only their own sessions."""
    async with Crowd(server) as crowd:
        blocker, friend, inviter = await crowd.people(3)
        blocker_ws, friend_ws, inviter_ws = await crowd.sessions_of(blocker, friend, inviter)
        first = await invite(blocker, friend)
        expect(await friend.post(f"/contacts/invitations/{first['id']}/accept"), 200)
        pending = await invite(inviter, blocker)
        for ws in (blocker_ws, friend_ws):
            await contact_event(ws, "accepted")
        for ws in (blocker_ws, inviter_ws):
            await contact_event(ws, "invited")
        blocker_ws.drain("contact")
        friend_ws.drain("contact")

        expect(await blocker.post("/blocks", {"user_id": friend.id}), 204)
        for ws, other in ((blocker_ws, friend), (friend_ws, blocker)):
            event = await contact_event(ws, "removed")
            assert event == {"type": "contact", "event": "removed", "user": other.user.user}

        expect(await blocker.post("/blocks", {"user_id": inviter.id}), 204)
        gone = await contact_event(blocker_ws, "removed")
        assert gone["invitation"]["id"] == pending["id"]
        await no_contact_events(inviter_ws)  # for them it is still pending

        # An invitation from a blocked user: its sender's sessions see it; the blocker's none.
        await invite(friend, blocker)
        event = await contact_event(friend_ws, "invited")
        assert event["user"] == blocker.user.user
        await no_contact_events(blocker_ws)


async def test_a_block_stops_presence_and_sends_both_ways(server: ServerProcess) -> None:
    async with Crowd(server) as crowd:
        blocker, blocked, peer = await crowd.people(3)
        room = await blocker.direct(blocked)
        await blocker.direct(peer)
        expect(await blocker.post("/blocks", {"user_id": blocked.id}), 204)
        blocked_ws, peer_ws = await crowd.sessions_of(blocked, peer)

        blocker_ws = await crowd.session(blocker)
        await peer_ws.recv("presence", match=lambda e: e["user_id"] == blocker.id)
        await blocker_ws.ping()  # the presence of this session went out before this answer
        await blocked_ws.ping()
        assert blocked_ws.pending("presence") == [], "a blocked user saw the blocker come online"

        # Sends into the direct room are refused on both sides, stored nowhere.
        reply = await blocked_ws.send(room["id"], "hello?")
        assert (reply["type"], reply["code"]) == ("error", "forbidden"), reply
        assert "block" not in reply["message"].lower(), reply
        reply = await blocker_ws.send(room["id"], "hello?")
        assert (reply["type"], reply["code"]) == ("error", "forbidden"), reply
        assert "unblock" in reply["message"], reply
        await blocked_ws.ping()
        assert blocked_ws.pending("message") == [] and blocker_ws.pending("message") == []
        assert (await blocker.room(room["id"]))["last_seq"] == 0

        # Lifted: they talk again, and presence flows again.
        expect(await blocker.delete(f"/blocks/{blocked.id}"), 204)
        message = await blocked_ws.send_message(room["id"], "hello again")
        assert (await blocker_ws.messages_until(room["id"], message["seq"]))[-1] == message
        await blocker_ws.close()
        offline = await blocked_ws.recv("presence", match=lambda e: e["user_id"] == blocker.id)
        assert offline["status"] == "offline"
