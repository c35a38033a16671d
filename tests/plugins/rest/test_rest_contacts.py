"""Contacts, invitations and blocks over REST, end to end: a real `chatcore serve` process,
spoken to over HTTP (docs/protocol.md, "Contacts (friends) and blocks"; the decisions are those of
`chatcore.server.contacts`).

One server serves the module; every test makes its own users, so none depends on another.
The live `contact` and `presence` events are tested in tests/e2e/test_e2e_contacts.py.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from chatcore.testing.rest import assert_error, ok
from chatcore.testing.users import TestUser

pytestmark = pytest.mark.e2e

INVITATION_KEYS = {"id", "from_user", "to_user", "status", "ts"}
CONTACT_KEYS = {"user", "since_ts", "presence"}
_refs = itertools.count()


# --- small clients of each endpoint -----------------------------------------------------------


def invite(http: httpx.Client, by: TestUser, body: Any) -> httpx.Response:
    return http.post("/contacts/invitations", json=body, headers=by.headers)


def invitations(http: httpx.Client, of: TestUser) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = ok(
        http.get("/contacts/invitations", headers=of.headers)
    )
    assert set(found) == {"incoming", "outgoing"}, found
    return found


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["id"] for item in items]


def answer(http: httpx.Client, by: TestUser, invitation_id: str, what: str) -> httpx.Response:
    return http.post(f"/contacts/invitations/{invitation_id}/{what}", headers=by.headers)


def contacts_of(http: httpx.Client, of: TestUser) -> list[dict[str, Any]]:
    found = ok(http.get("/contacts", headers=of.headers))
    assert list(found) == ["contacts"], found
    return list(found["contacts"])


def contact_ids(http: httpx.Client, of: TestUser) -> list[str]:
    return [contact["user"]["id"] for contact in contacts_of(http, of)]


def befriend(http: httpx.Client, a: TestUser, b: TestUser) -> None:
    sent = ok(invite(http, a, {"user_id": b.id}), 201)
    ok(answer(http, b, sent["id"], "accept"))


def block(http: httpx.Client, by: TestUser, whom: str) -> httpx.Response:
    return http.post("/blocks", json={"user_id": whom}, headers=by.headers)


def unblock(http: httpx.Client, by: TestUser, whom: str) -> httpx.Response:
    return http.delete(f"/blocks/{whom}", headers=by.headers)


def open_direct(http: httpx.Client, by: TestUser, peer: TestUser) -> httpx.Response:
    return http.post("/rooms", json={"kind": "direct", "user_id": peer.id}, headers=by.headers)


def send(http: httpx.Client, by: TestUser, room_id: str, ref: str | None = None) -> httpx.Response:
    body = {"ref": ref or f"c-{next(_refs)}", "body": "hello"}
    return http.post(f"/rooms/{room_id}/messages", json=body, headers=by.headers)


# --- discovery and documentation --------------------------------------------------------------


def test_info_reports_contacts_and_blocks(client: httpx.Client) -> None:
    assert {"contacts", "blocks"} <= set(ok(client.get("/info"))["features"])


def test_openapi_documents_every_contacts_endpoint(client: httpx.Client) -> None:
    paths = ok(client.get("/openapi.json"))["paths"]
    wanted = {
        ("post", "/api/v1/contacts/invitations"),
        ("get", "/api/v1/contacts/invitations"),
        ("post", "/api/v1/contacts/invitations/{invitation_id}/accept"),
        ("post", "/api/v1/contacts/invitations/{invitation_id}/decline"),
        ("get", "/api/v1/contacts"),
        ("delete", "/api/v1/contacts/{user_id}"),
        ("post", "/api/v1/blocks"),
        ("get", "/api/v1/blocks"),
        ("delete", "/api/v1/blocks/{user_id}"),
    }
    assert wanted <= {(m, p) for p, item in paths.items() for m in item}
    for method, path in wanted:
        operation = paths[path][method]
        assert operation["security"] == [{"bearer": []}]
        assert {"401", "500"} <= set(operation["responses"])
    created = paths["/api/v1/contacts/invitations"]["post"]["responses"]["201"]
    schema = created["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/InvitationBody"}


def test_every_endpoint_needs_a_token(client: httpx.Client) -> None:
    for method, path in [
        ("POST", "/contacts/invitations"),
        ("GET", "/contacts/invitations"),
        ("POST", "/contacts/invitations/x/accept"),
        ("POST", "/contacts/invitations/x/decline"),
        ("GET", "/contacts"),
        ("DELETE", "/contacts/x"),
        ("POST", "/blocks"),
        ("GET", "/blocks"),
        ("DELETE", "/blocks/x"),
    ]:
        assert_error(client.request(method, path, json={}), 401, "unauthorized")


# --- invitations ------------------------------------------------------------------------------


def test_invite_accept_and_the_lists(client: httpx.Client, user: Callable[[], TestUser]) -> None:
    alice, bob, carol = user(), user(), user()
    sent = ok(invite(client, alice, {"user_id": bob.id}), 201)
    assert set(sent) == INVITATION_KEYS, sent
    assert sent["from_user"] == alice.user and sent["to_user"] == bob.user
    assert sent["status"] == "pending" and isinstance(sent["ts"], int)
    # Again, by id or by username in any case: the same pending invitation, 200.
    assert ok(invite(client, alice, {"user_id": bob.id})) == sent
    assert ok(invite(client, alice, {"username": bob.username.upper()})) == sent
    to_carol = ok(invite(client, alice, {"username": carol.username}), 201)
    assert invitations(client, alice) == {"incoming": [], "outgoing": [to_carol, sent]}
    assert invitations(client, bob) == {"incoming": [sent], "outgoing": []}
    # Nobody else sees or answers it.
    assert_error(answer(client, carol, sent["id"], "accept"), 404, "not_found")
    assert_error(answer(client, carol, sent["id"], "decline"), 404, "not_found")
    # The inviter cannot accept their own invitation.
    assert_error(answer(client, alice, sent["id"], "accept"), 403, "forbidden")

    accepted = ok(answer(client, bob, sent["id"], "accept"))
    assert list(accepted) == ["contact"]
    contact = accepted["contact"]
    assert set(contact) == CONTACT_KEYS, contact
    assert contact["user"] == alice.user and contact["presence"] == "offline"
    assert contact["since_ts"] >= sent["ts"]
    # Accepting again is harmless; declining an accepted invitation is a conflict.
    assert ok(answer(client, bob, sent["id"], "accept")) == accepted
    assert_error(answer(client, bob, sent["id"], "decline"), 409, "conflict")
    assert contacts_of(client, bob) == [contact]
    assert contact_ids(client, alice) == [bob.id]
    assert invitations(client, bob) == {"incoming": [], "outgoing": []}
    assert ids(invitations(client, alice)["outgoing"]) == [to_carol["id"]]
    # A contact cannot be invited again, from either side.
    assert "already" in assert_error(invite(client, bob, {"user_id": alice.id}), 409, "conflict")
    assert_error(invite(client, alice, {"username": bob.username}), 409, "conflict")


def test_inviting_back_accepts(client: httpx.Client, user: Callable[[], TestUser]) -> None:
    alice, bob = user(), user()
    sent = ok(invite(client, alice, {"user_id": bob.id}), 201)
    back = ok(invite(client, bob, {"user_id": alice.id}), 200)
    assert back == {**sent, "status": "accepted"}
    assert contact_ids(client, alice) == [bob.id] and contact_ids(client, bob) == [alice.id]
    assert invitations(client, alice) == {"incoming": [], "outgoing": []}


def test_decline_and_cancel(client: httpx.Client, user: Callable[[], TestUser]) -> None:
    alice, bob = user(), user()
    sent = ok(invite(client, alice, {"user_id": bob.id}), 201)
    ok(answer(client, bob, sent["id"], "decline"), 204)
    ok(answer(client, bob, sent["id"], "decline"), 204)  # again: no change
    assert invitations(client, alice) == {"incoming": [], "outgoing": []}
    assert invitations(client, bob) == {"incoming": [], "outgoing": []}
    assert "new one" in assert_error(answer(client, bob, sent["id"], "accept"), 409, "conflict")
    assert contacts_of(client, bob) == []
    # After a decline a new invitation may be sent; its sender may cancel it.
    again = ok(invite(client, alice, {"user_id": bob.id}), 201)
    assert again["id"] != sent["id"]
    ok(answer(client, alice, again["id"], "decline"), 204)
    assert invitations(client, bob)["incoming"] == []


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ({}, "user_id"),
        ({"user_id": None}, "user_id"),
        ({"user_id": "x", "username": "y"}, "one"),
        ({"user_id": 5}, "user_id"),
        ({"username": ["bob"]}, "username"),
        ({"user_id": ""}, "user_id"),
        ([], ""),
    ],
)
def test_invite_refuses_bad_bodies(
    client: httpx.Client, user: Callable[[], TestUser], body: Any, mentions: str
) -> None:
    alice = user()
    assert mentions in assert_error(invite(client, alice, body), 400, "bad_request")
    assert invitations(client, alice) == {"incoming": [], "outgoing": []}


def test_invite_refusals(client: httpx.Client, user: Callable[[], TestUser]) -> None:
    alice = user()
    assert "yourself" in assert_error(
        invite(client, alice, {"user_id": alice.id}), 400, "bad_request"
    )
    assert_error(invite(client, alice, {"username": alice.username}), 400, "bad_request")
    assert_error(invite(client, alice, {"user_id": "no-such-user"}), 404, "not_found")
    assert_error(invite(client, alice, {"username": "no-such-user"}), 404, "not_found")
    assert_error(invite(client, alice, {"user_id": "bad\u0000id"}), 404, "not_found")
    assert_error(answer(client, alice, "no-such-invitation", "accept"), 404, "not_found")
    assert_error(answer(client, alice, "no-such-invitation", "decline"), 404, "not_found")
    assert invitations(client, alice) == {"incoming": [], "outgoing": []}


# --- contacts ---------------------------------------------------------------------------------


def test_contacts_are_listed_by_username_and_removed_for_both(
    client: httpx.Client, user: Callable[[], TestUser]
) -> None:
    me, first, second = user(), user(), user()
    befriend(client, second, me)
    befriend(client, me, first)
    listed = contacts_of(client, me)
    assert [c["user"]["username"] for c in listed] == sorted([first.username, second.username])
    assert all(c["presence"] == "offline" for c in listed)  # nobody has a live session
    ok(client.delete(f"/contacts/{first.id}", headers=me.headers), 204)
    assert contact_ids(client, me) == [second.id]
    assert contact_ids(client, first) == []
    # Removing again, or someone who never was a contact: nothing to do.
    ok(client.delete(f"/contacts/{first.id}", headers=me.headers), 204)
    ok(client.delete("/contacts/no-such-user", headers=me.headers), 204)
    # They may become contacts again.
    befriend(client, first, me)
    assert sorted(contact_ids(client, me)) == sorted([first.id, second.id])


# --- blocks -----------------------------------------------------------------------------------


def test_block_list_and_refusals(client: httpx.Client, user: Callable[[], TestUser]) -> None:
    me, them = user(), user()
    assert ok(client.get("/blocks", headers=me.headers)) == {"blocks": []}
    ok(block(client, me, them.id), 204)
    ok(block(client, me, them.id), 204)  # again: no change
    assert ok(client.get("/blocks", headers=me.headers)) == {"blocks": [them.user]}
    assert ok(client.get("/blocks", headers=them.headers)) == {"blocks": []}
    assert "yourself" in assert_error(block(client, me, me.id), 400, "bad_request")
    assert_error(block(client, me, "no-such-user"), 404, "not_found")
    for bad in ({}, {"user_id": 5}, [them.id]):
        reply = client.post("/blocks", json=bad, headers=me.headers)
        assert_error(reply, 400, "bad_request")
    ok(unblock(client, me, them.id), 204)
    ok(unblock(client, me, them.id), 204)  # again: no change
    ok(unblock(client, me, "no-such-user"), 204)
    assert ok(client.get("/blocks", headers=me.headers)) == {"blocks": []}


def test_block_ends_the_contact_and_pending_invitations(
    client: httpx.Client, user: Callable[[], TestUser]
) -> None:
    me, friend, invited, inviter = user(), user(), user(), user()
    befriend(client, me, friend)
    mine = ok(invite(client, me, {"user_id": invited.id}), 201)
    theirs = ok(invite(client, inviter, {"user_id": me.id}), 201)
    for other in (friend, invited, inviter):
        ok(block(client, me, other.id), 204)
    assert contacts_of(client, me) == [] and contacts_of(client, friend) == []
    assert invitations(client, me) == {"incoming": [], "outgoing": []}
    # The blocker's own invitation is cancelled for its invitee too.
    assert invitations(client, invited)["incoming"] == []
    assert_error(answer(client, invited, mine["id"], "accept"), 409, "conflict")
    # The blocked user's invitation: gone for the blocker, unchanged for its sender.
    assert invitations(client, inviter)["outgoing"] == [theirs]
    assert_error(answer(client, me, theirs["id"], "accept"), 404, "not_found")
    assert_error(answer(client, me, theirs["id"], "decline"), 404, "not_found")


def test_a_blocked_user_inviting_the_blocker_is_not_told(
    client: httpx.Client, user: Callable[[], TestUser]
) -> None:
    blocker, blocked = user(), user()
    ok(block(client, blocker, blocked.id), 204)
    sent = ok(invite(client, blocked, {"user_id": blocker.id}), 201)
    assert sent["status"] == "pending"
    assert ok(invite(client, blocked, {"username": blocker.username})) == sent
    assert invitations(client, blocked)["outgoing"] == [sent]
    assert invitations(client, blocker) == {"incoming": [], "outgoing": []}
    assert_error(answer(client, blocker, sent["id"], "accept"), 404, "not_found")
    # The blocker cannot invite the blocked user while the block stands.
    assert "unblock" in assert_error(
        invite(client, blocker, {"user_id": blocked.id}), 403, "forbidden"
    )
    # Lifting the block drops what it hid: the blocker never sees it.
    ok(unblock(client, blocker, blocked.id), 204)
    assert invitations(client, blocker)["incoming"] == []
    assert invitations(client, blocked)["outgoing"] == []
    fresh = ok(invite(client, blocked, {"user_id": blocker.id}), 201)
    assert ids(invitations(client, blocker)["incoming"]) == [fresh["id"]]


def test_a_block_stops_direct_rooms_and_sends_both_ways(
    client: httpx.Client, user: Callable[[], TestUser]
) -> None:
    blocker, blocked, other = user(), user(), user()
    room = ok(open_direct(client, blocker, blocked), 201)
    team = ok(
        client.post(
            "/rooms",
            json={"kind": "group", "name": "team", "member_ids": [blocked.id, other.id]},
            headers=blocker.headers,
        ),
        201,
    )
    ok(send(client, blocked, room["id"], ref="before"), 201)
    ok(block(client, blocker, blocked.id), 204)

    # The blocked user is refused without being told why; the blocker is told plainly.
    for reply in (open_direct(client, blocked, blocker), send(client, blocked, room["id"])):
        message = assert_error(reply, 403, "forbidden")
        assert "block" not in message.lower(), message
    for reply in (open_direct(client, blocker, blocked), send(client, blocker, room["id"])):
        assert "unblock" in assert_error(reply, 403, "forbidden")
    # A retry of a message sent before the block answers the stored message.
    assert ok(send(client, blocked, room["id"], ref="before"), 200)["seq"] == 1
    # A new direct room across the block cannot be made either.
    stranger = user()
    ok(block(client, stranger, blocked.id), 204)
    assert_error(open_direct(client, blocked, stranger), 403, "forbidden")
    assert ok(client.get("/rooms", headers=stranger.headers)) == {"rooms": []}
    # Group rooms are not direct conversations: both still talk there.
    ok(send(client, blocked, team["id"]), 201)
    ok(send(client, blocker, team["id"]), 201)
    history = ok(client.get(f"/rooms/{room['id']}/messages", headers=blocker.headers))
    assert [m["ref"] for m in history["messages"]] == ["before"]

    ok(unblock(client, blocker, blocked.id), 204)
    ok(open_direct(client, blocked, blocker), 200)
    ok(send(client, blocked, room["id"]), 201)
    ok(send(client, blocker, room["id"]), 201)
