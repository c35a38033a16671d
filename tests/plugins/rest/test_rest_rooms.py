"""Rooms and messages over REST, end to end: a real `chatcore serve` process, spoken to over
HTTP (docs/protocol.md, "Rooms (dialogs)" and "Messages").

One server serves the module. Tests make their own rooms (and mostly their own users), so they
do not depend on one another; the few module fixtures hold rooms that only reads and refusals
touch. Tests that need other limits start their own server with `server_factory`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from chatcore.testing.rest import assert_error, ok
from chatcore.testing.server import ServerProcess
from chatcore.testing.users import TestUser, register_and_login
from chatcore.testing.wsclient import WSClient

pytestmark = pytest.mark.e2e

ROOM_KEYS = {"id", "kind", "name", "member_ids", "owner_id", "last_seq", "created_ts", "unread"}
MESSAGE_KEYS = {"id", "room_id", "seq", "sender_id", "ref", "kind", "body", "ts", "deleted"}
_refs = itertools.count()


def new_user(http: httpx.Client) -> TestUser:
    return register_and_login(http, prefix="room")


@pytest.fixture(scope="module")
def loner(client: httpx.Client) -> TestUser:
    """A user in no room, for requests that must create none."""
    return new_user(client)


@pytest.fixture(scope="module")
def quiet(client: httpx.Client) -> tuple[TestUser, str]:
    """A member and a direct room, for sends that must store nothing."""
    alice, bob = new_user(client), new_user(client)
    return alice, direct(client, alice, bob)["id"]


def new_ref() -> str:
    return f"ref-{next(_refs)}"


def direct(client: httpx.Client, a: TestUser, b: TestUser, status: int = 201) -> dict[str, Any]:
    body = {"kind": "direct", "user_id": b.id}
    return ok(client.post("/rooms", json=body, headers=a.headers), status)


def group(
    client: httpx.Client, owner: TestUser, *members: TestUser, name: str = "friends"
) -> dict[str, Any]:
    body = {"kind": "group", "name": name, "member_ids": [m.id for m in members]}
    return ok(client.post("/rooms", json=body, headers=owner.headers), 201)


def send(
    client: httpx.Client, sender: TestUser, room_id: str, body: str = "hi", **fields: Any
) -> dict[str, Any]:
    payload = {"ref": new_ref(), "body": body, **fields}
    reply = client.post(f"/rooms/{room_id}/messages", json=payload, headers=sender.headers)
    return ok(reply, 201)


def room_of(client: httpx.Client, viewer: TestUser, room_id: str) -> dict[str, Any]:
    return ok(client.get(f"/rooms/{room_id}", headers=viewer.headers))


def history(client: httpx.Client, viewer: TestUser, room_id: str, **query: Any) -> dict[str, Any]:
    reply = client.get(f"/rooms/{room_id}/messages", params=query, headers=viewer.headers)
    return ok(reply)


def seqs(page: dict[str, Any]) -> list[int]:
    return [message["seq"] for message in page["messages"]]


def read(client: httpx.Client, reader: TestUser, room_id: str, seq: object) -> httpx.Response:
    return client.post(f"/rooms/{room_id}/read", json={"seq": seq}, headers=reader.headers)


# --- discovery ----------------------------------------------------------------------------------


def test_info_reports_rooms_and_messages(client: httpx.Client) -> None:
    assert {"rooms", "messages"} <= set(ok(client.get("/info"))["features"])


# --- rooms ---------------------------------------------------------------------------------------


def test_direct_room_is_created_once_per_pair(
    client: httpx.Client, user: Callable[[], TestUser]
) -> None:
    alice, bob = user(), user()
    room = direct(client, alice, bob, 201)
    assert set(room) == ROOM_KEYS, room
    assert room["kind"] == "direct"
    assert room["name"] is None and room["owner_id"] is None
    assert sorted(room["member_ids"]) == sorted([alice.id, bob.id])
    assert room["last_seq"] == 0 and room["unread"] == 0
    assert isinstance(room["id"], str) and isinstance(room["created_ts"], int)
    again = direct(client, alice, bob, 200)
    assert again == room
    from_bob = direct(client, bob, alice, 200)
    assert from_bob["id"] == room["id"]


def test_direct_room_refusals(client: httpx.Client, user: Callable[[], TestUser]) -> None:
    alice = user()
    post = lambda body: client.post("/rooms", json=body, headers=alice.headers)  # noqa: E731
    assert "own" in assert_error(post({"kind": "direct", "user_id": alice.id}), 400, "bad_request")
    assert_error(post({"kind": "direct", "user_id": "no-such-user"}), 404, "not_found")
    assert "user_id" in assert_error(post({"kind": "direct"}), 400, "bad_request")
    assert "user_id" in assert_error(post({"kind": "direct", "user_id": 7}), 400, "bad_request")
    assert ok(client.get("/rooms", headers=alice.headers)) == {"rooms": []}


@pytest.mark.parametrize(
    "body",
    [{}, {"kind": "channel", "name": "x", "member_ids": []}, {"kind": None}, {"kind": ["group"]}],
)
def test_create_room_needs_a_known_kind(
    client: httpx.Client, loner: TestUser, body: dict[str, Any]
) -> None:
    reply = client.post("/rooms", json=body, headers=loner.headers)
    assert '"direct" or "group"' in assert_error(reply, 400, "bad_request")
    assert ok(client.get("/rooms", headers=loner.headers)) == {"rooms": []}


@pytest.mark.parametrize("content", [b"[]", b'"group"', b"{", b"null"])
def test_create_room_needs_a_json_object(
    client: httpx.Client, loner: TestUser, content: bytes
) -> None:
    headers = {**loner.headers, "Content-Type": "application/json"}
    assert_error(client.post("/rooms", content=content, headers=headers), 400, "bad_request")


def test_group_room(client: httpx.Client, user: Callable[[], TestUser]) -> None:
    owner, ann, ben = user(), user(), user()
    room = group(client, owner, ann, ben, name="  Hiking  ")
    # Room administration: a group room lists its admins (none yet); topic and avatar are
    # left out while it has none.
    assert set(room) == ROOM_KEYS | {"admin_ids"}, room
    assert room["admin_ids"] == []
    assert room["kind"] == "group"
    assert room["name"] == "Hiking"
    assert room["owner_id"] == owner.id
    assert sorted(room["member_ids"]) == sorted([owner.id, ann.id, ben.id])
    assert room["last_seq"] == 0 and room["unread"] == 0
    # Every member sees it; each group is a new room.
    assert room_of(client, ann, room["id"])["id"] == room["id"]
    assert group(client, owner, ann, ben, name="Hiking")["id"] != room["id"]


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ({"kind": "group", "member_ids": []}, "name"),
        ({"kind": "group", "name": "   ", "member_ids": []}, "name"),
        ({"kind": "group", "name": "x" * 101, "member_ids": []}, "name"),
        ({"kind": "group", "name": 5, "member_ids": []}, "name"),
        ({"kind": "group", "name": "x"}, "member_ids"),
        ({"kind": "group", "name": "x", "member_ids": "abc"}, "member_ids"),
        ({"kind": "group", "name": "x", "member_ids": [1]}, "member_ids"),
    ],
)
def test_group_room_refusals(
    client: httpx.Client, loner: TestUser, body: dict[str, Any], mentions: str
) -> None:
    reply = client.post("/rooms", json=body, headers=loner.headers)
    assert mentions in assert_error(reply, 400, "bad_request")
    assert ok(client.get("/rooms", headers=loner.headers)) == {"rooms": []}


def test_room_list_most_recently_active_first(
    client: httpx.Client, user: Callable[[], TestUser]
) -> None:
    alice, bob, carol = user(), user(), user()
    first = direct(client, alice, bob)
    second = group(client, alice, carol)
    listed = ok(client.get("/rooms", headers=alice.headers))
    assert list(listed) == ["rooms"]
    assert [room["id"] for room in listed["rooms"]] == [second["id"], first["id"]]
    message = send(client, bob, first["id"], "news")
    rooms = ok(client.get("/rooms", headers=alice.headers))["rooms"]
    assert [room["id"] for room in rooms] == [first["id"], second["id"]]
    top = rooms[0]
    assert set(top) == ROOM_KEYS | {"last_message"}
    assert top["last_message"] == message
    assert top["last_seq"] == 1 and top["unread"] == 1
    assert room_of(client, alice, first["id"]) == top
    # Only one's own rooms are listed.
    assert [room["id"] for room in ok(client.get("/rooms", headers=carol.headers))["rooms"]] == [
        second["id"]
    ]
    assert ok(client.get("/rooms", headers=user().headers)) == {"rooms": []}


def test_members_can_be_added_by_any_member(
    client: httpx.Client, user: Callable[[], TestUser]
) -> None:
    owner, ann, newcomer = user(), user(), user()
    room = group(client, owner, ann)
    members = f"/rooms/{room['id']}/members"
    ok(client.post(members, json={"user_id": newcomer.id}, headers=ann.headers), 204)
    assert newcomer.id in room_of(client, owner, room["id"])["member_ids"]
    assert room_of(client, newcomer, room["id"])["id"] == room["id"]
    # Adding a member again changes nothing.
    ok(client.post(members, json={"user_id": newcomer.id}, headers=owner.headers), 204)
    assert len(room_of(client, owner, room["id"])["member_ids"]) == 3
    assert_error(
        client.post(members, json={"user_id": "no-such-user"}, headers=owner.headers),
        404,
        "not_found",
    )
    for bad in ({}, {"user_id": 5}, [newcomer.id]):
        assert_error(client.post(members, json=bad, headers=owner.headers), 400, "bad_request")


def test_members_leave_and_the_owner_removes(
    client: httpx.Client, user: Callable[[], TestUser]
) -> None:
    owner, ann, ben, carl = user(), user(), user(), user()
    room = group(client, owner, ann, ben, carl)
    members = f"/rooms/{room['id']}/members"
    # A member cannot remove another; the owner can; anyone can leave.
    assert_error(client.delete(f"{members}/{ben.id}", headers=ann.headers), 403, "forbidden")
    ok(client.delete(f"{members}/{ben.id}", headers=owner.headers), 204)
    ok(client.delete(f"{members}/{ann.id}", headers=ann.headers), 204)
    assert sorted(room_of(client, owner, room["id"])["member_ids"]) == sorted([owner.id, carl.id])
    for gone in (ann, ben):
        assert_error(client.get(f"/rooms/{room['id']}", headers=gone.headers), 404, "not_found")
        assert ok(client.get("/rooms", headers=gone.headers)) == {"rooms": []}
    assert_error(client.delete(f"{members}/{ben.id}", headers=owner.headers), 404, "not_found")
    # When the owner leaves, the member who joined first owns the room.
    ok(client.delete(f"{members}/{owner.id}", headers=owner.headers), 204)
    assert room_of(client, carl, room["id"])["owner_id"] == carl.id


def test_direct_rooms_have_no_membership_changes(
    client: httpx.Client, user: Callable[[], TestUser]
) -> None:
    alice, bob, carol = user(), user(), user()
    room = direct(client, alice, bob)
    members = f"/rooms/{room['id']}/members"
    reply = client.post(members, json={"user_id": carol.id}, headers=alice.headers)
    assert_error(reply, 400, "bad_request")
    assert_error(client.delete(f"{members}/{bob.id}", headers=alice.headers), 400, "bad_request")
    assert_error(client.delete(f"{members}/{alice.id}", headers=alice.headers), 400, "bad_request")
    assert sorted(room_of(client, alice, room["id"])["member_ids"]) == sorted([alice.id, bob.id])


# --- sending --------------------------------------------------------------------------------------


def test_send_answers_the_stored_message(
    client: httpx.Client, user: Callable[[], TestUser]
) -> None:
    alice, bob = user(), user()
    room = direct(client, alice, bob)
    first = send(client, alice, room["id"], "hello", ref="r-1")
    assert set(first) == MESSAGE_KEYS, first
    assert first["room_id"] == room["id"]
    assert first["seq"] == 1
    assert first["sender_id"] == alice.id
    assert first["ref"] == "r-1"
    assert first["kind"] == "text" and first["body"] == "hello" and first["deleted"] is False
    assert isinstance(first["id"], str) and isinstance(first["ts"], int)
    reply = send(client, bob, room["id"], "hey you", kind="text", reply_to=first["id"])
    assert reply["seq"] == 2 and reply["reply_to"] == first["id"]
    assert history(client, alice, room["id"], after_seq=0)["messages"] == [first, reply]
    assert room_of(client, bob, room["id"])["last_seq"] == 2


def test_send_is_idempotent_per_sender_room_and_ref(
    client: httpx.Client, user: Callable[[], TestUser]
) -> None:
    alice, bob = user(), user()
    room = group(client, alice, bob)
    other = group(client, alice, bob)
    path = f"/rooms/{room['id']}/messages"
    created = ok(client.post(path, json={"ref": "same", "body": "one"}, headers=alice.headers), 201)
    repeat = client.post(path, json={"ref": "same", "body": "two"}, headers=alice.headers)
    assert ok(repeat, 200) == created  # the stored message, whatever the new content
    # The repeat used no seq; other senders and other rooms have keys of their own.
    by_bob = ok(client.post(path, json={"ref": "same", "body": "b"}, headers=bob.headers), 201)
    assert by_bob["seq"] == 2 and by_bob["id"] != created["id"]
    elsewhere = f"/rooms/{other['id']}/messages"
    in_other = ok(
        client.post(elsewhere, json={"ref": "same", "body": "c"}, headers=alice.headers), 201
    )
    assert in_other["seq"] == 1 and in_other["room_id"] == other["id"]
    assert [m["body"] for m in history(client, bob, room["id"], after_seq=0)["messages"]] == [
        "one",
        "b",
    ]


def test_concurrent_sends_of_one_ref_store_one_message(
    server: ServerProcess, client: httpx.Client, user: Callable[[], TestUser]
) -> None:
    alice, bob = user(), user()
    room = direct(client, alice, bob)

    async def race() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.api, timeout=10) as http:
            path = f"/rooms/{room['id']}/messages"
            return await asyncio.gather(
                *(
                    http.post(path, json={"ref": "once", "body": f"try {n}"}, headers=alice.headers)
                    for n in range(10)
                )
            )

    replies = asyncio.run(race())
    assert sorted(reply.status_code for reply in replies) == [200] * 9 + [201]
    [created] = [reply.json() for reply in replies if reply.status_code == 201]
    assert all(reply.json() == created for reply in replies)
    assert history(client, bob, room["id"])["messages"] == [created]


def test_a_refused_send_stores_nothing_and_keeps_its_ref(
    client: httpx.Client, user: Callable[[], TestUser]
) -> None:
    alice, bob = user(), user()
    room = direct(client, alice, bob)
    path = f"/rooms/{room['id']}/messages"
    refused = client.post(path, json={"ref": "k", "body": "   "}, headers=alice.headers)
    assert_error(refused, 400, "bad_request")
    assert history(client, alice, room["id"]) == {"messages": [], "has_more": False}
    stored = ok(client.post(path, json={"ref": "k", "body": "now"}, headers=alice.headers), 201)
    assert stored["seq"] == 1 and stored["body"] == "now"


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ({"body": "no ref"}, "ref"),
        ({"ref": 5, "body": "x"}, "ref"),
        ({"ref": "", "body": "x"}, "ref"),
        ({"ref": "r" * 129, "body": "x"}, "ref"),
        ({"ref": "r", "body": 5}, "body"),
        ({"ref": "r", "body": ["x"]}, "body"),
        ({"ref": "r"}, "body"),
        ({"ref": "r", "body": ""}, "body"),
        ({"ref": "r", "body": "x", "kind": "poem"}, "kind"),
        ({"ref": "r", "body": "x", "kind": "system"}, "kind"),
        ({"ref": "r", "body": "x", "kind": 1}, "kind"),
        ({"ref": "r", "body": "x", "reply_to": 5}, "reply_to"),
    ],
)
def test_send_refuses_bad_fields_clearly(
    client: httpx.Client, quiet: tuple[TestUser, str], body: dict[str, Any], mentions: str
) -> None:
    alice, room_id = quiet
    reply = client.post(f"/rooms/{room_id}/messages", json=body, headers=alice.headers)
    assert mentions in assert_error(reply, 400, "bad_request")
    assert history(client, alice, room_id)["messages"] == []


def test_send_refuses_a_reply_to_a_message_of_another_room(
    client: httpx.Client, user: Callable[[], TestUser]
) -> None:
    alice, bob = user(), user()
    room, other = direct(client, alice, bob), group(client, alice, bob)
    elsewhere = send(client, alice, other["id"])
    path = f"/rooms/{room['id']}/messages"
    for target in (elsewhere["id"], "no-such-message"):
        body = {"ref": new_ref(), "body": "re", "reply_to": target}
        assert_error(client.post(path, json=body, headers=alice.headers), 400, "bad_request")
    assert history(client, alice, room["id"])["messages"] == []


def test_send_accepts_a_ref_of_128_characters(
    client: httpx.Client, user: Callable[[], TestUser]
) -> None:
    alice, bob = user(), user()
    room = direct(client, alice, bob)
    assert send(client, alice, room["id"], ref="r" * 128)["ref"] == "r" * 128


def test_send_refuses_other_media_types(client: httpx.Client, user: Callable[[], TestUser]) -> None:
    alice, bob = user(), user()
    room = direct(client, alice, bob)
    reply = client.post(
        f"/rooms/{room['id']}/messages",
        content=b"ref=x&body=y",
        headers={**alice.headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert "JSON" in assert_error(reply, 400, "bad_request")


# --- history --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seven(client: httpx.Client) -> tuple[TestUser, str]:
    """A member and a room with messages seq 1..7 (bodies "m1".."m7")."""
    alice, bob = new_user(client), new_user(client)
    room = direct(client, alice, bob)
    for n in range(1, 8):
        send(client, alice if n % 2 else bob, room["id"], f"m{n}")
    return alice, room["id"]


@pytest.mark.parametrize(
    ("query", "expected", "more"),
    [
        ({"after_seq": 0, "limit": 3}, [1, 2, 3], True),
        ({"after_seq": 3, "limit": 3}, [4, 5, 6], True),
        ({"after_seq": 4, "limit": 3}, [5, 6, 7], False),
        ({"after_seq": 6}, [7], False),
        ({"after_seq": 7}, [], False),
        ({"after_seq": 100}, [], False),
        ({"before_seq": 8, "limit": 2}, [7, 6], True),
        ({"before_seq": 4, "limit": 2}, [3, 2], True),
        ({"before_seq": 3, "limit": 5}, [2, 1], False),
        ({"before_seq": 1}, [], False),
        ({"before_seq": 100, "limit": 7}, [7, 6, 5, 4, 3, 2, 1], False),
        ({"limit": 2}, [7, 6], True),
        ({}, [7, 6, 5, 4, 3, 2, 1], False),
        ({"limit": 0}, [7], True),  # clamped up to 1
        ({"limit": -5}, [7], True),
        ({"after_seq": 0, "limit": 7}, [1, 2, 3, 4, 5, 6, 7], False),
    ],
)
def test_history_pages(
    client: httpx.Client,
    seven: tuple[TestUser, str],
    query: dict[str, int],
    expected: list[int],
    more: bool,
) -> None:
    alice, room_id = seven
    page = history(client, alice, room_id, **query)
    assert set(page) == {"messages", "has_more"}
    assert seqs(page) == expected
    assert page["has_more"] is more
    assert all(m["body"] == f"m{m['seq']}" and m["room_id"] == room_id for m in page["messages"])


@pytest.mark.parametrize(
    ("query", "mentions"),
    [
        ("after_seq=1&before_seq=5", "after_seq"),
        ("after_seq=abc", "after_seq"),
        ("before_seq=1.5", "before_seq"),
        ("limit=ten", "limit"),
        ("limit=", "limit"),
        ("after_seq=-1", "after_seq"),
        ("before_seq=-1", "before_seq"),
    ],
)
def test_history_refuses_bad_queries(
    client: httpx.Client, seven: tuple[TestUser, str], query: str, mentions: str
) -> None:
    alice, room_id = seven
    reply = client.get(f"/rooms/{room_id}/messages?{query}", headers=alice.headers)
    assert mentions in assert_error(reply, 400, "bad_request")


def test_history_limit_defaults_to_50_and_is_clamped_to_500(
    server: ServerProcess, client: httpx.Client, user: Callable[[], TestUser]
) -> None:
    alice, bob = user(), user()
    room = direct(client, alice, bob)

    async def fill() -> None:
        """502 messages, the quickest way: sends pipelined on 8 WebSocket sessions at once
        (each within its burst allowance), so the server stores them in batches."""

        async def session(part: int) -> None:
            async with WSClient.connect(server.ws_url, alice.access_token) as ws:
                refs = [f"fill-{part}-{n}" for n in range(part, 502, 8)]
                for ref in refs:
                    frame = {"type": "send", "ref": ref, "room_id": room["id"], "body": "x"}
                    await ws.send_frame(frame)
                for ref in refs:
                    reply = await ws.recv_reply(ref, timeout=30)
                    assert reply["type"] == "ack", reply

        await asyncio.gather(*(session(part) for part in range(8)))

    asyncio.run(fill())
    newest = history(client, bob, room["id"])
    assert seqs(newest) == list(range(502, 452, -1)) and newest["has_more"] is True
    clamped = history(client, bob, room["id"], limit=10_000)
    assert seqs(clamped) == list(range(502, 2, -1)) and clamped["has_more"] is True
    oldest = history(client, bob, room["id"], after_seq=0, limit=501)
    assert seqs(oldest) == list(range(1, 501)) and oldest["has_more"] is True
    rest = history(client, bob, room["id"], after_seq=2, limit=501)
    assert seqs(rest) == list(range(3, 503)) and rest["has_more"] is False


# --- edits and deletes ----------------------------------------------------------------------------


def test_the_sender_edits(client: httpx.Client, user: Callable[[], TestUser]) -> None:
    alice, bob = user(), user()
    room = group(client, alice, bob)
    original = send(client, alice, room["id"], "helo")
    path = f"/rooms/{room['id']}/messages/{original['id']}"
    edited = ok(client.patch(path, json={"body": "hello"}, headers=alice.headers))
    assert set(edited) == MESSAGE_KEYS | {"edited_ts"}
    assert edited["body"] == "hello" and edited["edited_ts"] >= original["ts"]
    assert {k: v for k, v in edited.items() if k not in ("body", "edited_ts")} == {
        k: v for k, v in original.items() if k != "body"
    }
    assert history(client, bob, room["id"])["messages"] == [edited]
    # Not the sender, even as the room's owner: forbidden, and nothing changes.
    bobs = send(client, bob, room["id"], "mine")
    bobs_path = f"/rooms/{room['id']}/messages/{bobs['id']}"
    reply = client.patch(bobs_path, json={"body": "owned"}, headers=alice.headers)
    assert_error(reply, 403, "forbidden")
    for bad in ({}, {"body": 5}, {"body": "  "}, {"body": None}):
        assert_error(client.patch(path, json=bad, headers=alice.headers), 400, "bad_request")
    missing = f"/rooms/{room['id']}/messages/no-such-message"
    assert_error(client.patch(missing, json={"body": "x"}, headers=alice.headers), 404, "not_found")
    assert [m["body"] for m in history(client, bob, room["id"], after_seq=0)["messages"]] == [
        "hello",
        "mine",
    ]


def test_delete_keeps_the_seq(client: httpx.Client, user: Callable[[], TestUser]) -> None:
    alice, bob = user(), user()
    room = direct(client, alice, bob)
    first = send(client, alice, room["id"], "oops")
    second = send(client, bob, room["id"], "ok")
    path = f"/rooms/{room['id']}/messages/{first['id']}"
    # In a direct room nobody deletes another's message.
    assert_error(client.delete(path, headers=bob.headers), 403, "forbidden")
    ok(client.delete(path, headers=alice.headers), 204)
    ok(client.delete(path, headers=alice.headers), 204)  # deleting twice is harmless
    page = history(client, bob, room["id"], after_seq=0)
    deleted = page["messages"][0]
    assert deleted["seq"] == 1 and deleted["id"] == first["id"]
    assert deleted["body"] == "" and deleted["deleted"] is True
    assert page["messages"][1] == second
    assert room_of(client, alice, room["id"])["last_seq"] == 2
    # A deleted message cannot be edited, and its ref stays used.
    assert_error(client.patch(path, json={"body": "x"}, headers=alice.headers), 409, "conflict")
    repeat = client.post(
        f"/rooms/{room['id']}/messages",
        json={"ref": first["ref"], "body": "again"},
        headers=alice.headers,
    )
    assert ok(repeat, 200) == deleted
    missing = f"/rooms/{room['id']}/messages/no-such-message"
    assert_error(client.delete(missing, headers=alice.headers), 404, "not_found")


def test_a_group_owner_deletes_any_message(
    client: httpx.Client, user: Callable[[], TestUser]
) -> None:
    owner, ann, ben = user(), user(), user()
    room = group(client, owner, ann, ben)
    anns = send(client, ann, room["id"], "spam")
    path = f"/rooms/{room['id']}/messages/{anns['id']}"
    assert_error(client.delete(path, headers=ben.headers), 403, "forbidden")
    ok(client.delete(path, headers=owner.headers), 204)
    [message] = history(client, ann, room["id"])["messages"]
    assert message["deleted"] is True and message["body"] == "" and message["seq"] == 1


# --- read receipts --------------------------------------------------------------------------------


def test_read_clamps_never_goes_back_and_unread_follows(
    client: httpx.Client, user: Callable[[], TestUser]
) -> None:
    alice, bob = user(), user()
    room = direct(client, alice, bob)
    room_id = room["id"]
    unread = lambda: room_of(client, alice, room_id)["unread"]  # noqa: E731
    for n in range(3):
        send(client, bob, room_id, f"b{n}")
    send(client, alice, room_id, "own messages are never unread")
    assert unread() == 3
    ok(read(client, alice, room_id, 2), 204)
    assert unread() == 1
    ok(read(client, alice, room_id, 1), 204)  # never backwards
    assert unread() == 1
    ok(read(client, alice, room_id, 0), 204)
    assert unread() == 1
    ok(read(client, alice, room_id, 1000), 204)  # clamped to the last seq (4)...
    assert unread() == 0
    fifth = send(client, bob, room_id, "after the read")
    assert fifth["seq"] == 5
    assert unread() == 1  # ...so the next message counts
    listed = ok(client.get("/rooms", headers=alice.headers))["rooms"]
    assert [r["unread"] for r in listed if r["id"] == room_id] == [1]
    # Deleted messages are not unread.
    ok(client.delete(f"/rooms/{room_id}/messages/{fifth['id']}", headers=bob.headers), 204)
    assert unread() == 0
    # Receipts are per user.
    assert room_of(client, bob, room_id)["unread"] == 1


@pytest.mark.parametrize("seq", ["3", -1, 1.5, 2.0, True, None, [1]])
def test_read_refuses_what_is_not_a_seq(
    client: httpx.Client, seven: tuple[TestUser, str], seq: object
) -> None:
    alice, room_id = seven  # alice has read nothing: bob's seqs 2, 4 and 6 are unread
    assert "seq" in assert_error(read(client, alice, room_id, seq), 400, "bad_request")
    reply = client.post(f"/rooms/{room_id}/read", json={}, headers=alice.headers)
    assert "seq" in assert_error(reply, 400, "bad_request")
    assert room_of(client, alice, room_id)["unread"] == 3


# --- who may do what ---------------------------------------------------------------------------


@dataclass
class Scene:
    """A group room: `owner` made it with `member` and `other`; each of the first two wrote one
    message. `outsider` belongs to no room; `stranger` is a user nobody invited yet."""

    owner: TestUser
    member: TestUser
    other: TestUser
    outsider: TestUser
    stranger: TestUser
    room_id: str
    owners_message: dict[str, Any]
    members_message: dict[str, Any]

    def actor(self, role: str) -> TestUser:
        actor: TestUser = getattr(self, role)
        return actor


@pytest.fixture(scope="module")
def cast(client: httpx.Client) -> list[TestUser]:
    """The users of every scene; each scene has a room of its own, so they can be shared."""
    return [new_user(client) for _ in range(5)]


@pytest.fixture
def scene(client: httpx.Client, cast: list[TestUser]) -> Scene:
    owner, member, other, outsider, stranger = cast
    room = group(client, owner, member, other)
    return Scene(
        owner,
        member,
        other,
        outsider,
        stranger,
        room["id"],
        send(client, owner, room["id"], "from the owner"),
        send(client, member, room["id"], "from a member"),
    )


Request = tuple[str, str, dict[str, Any] | None]


def action(name: str, scene: Scene, actor: TestUser, room_id: str) -> Request:
    """The request of the action `name` by `actor` in `room_id` (the scene's room or another)."""
    rooms = f"/rooms/{room_id}"
    owners, members = scene.owners_message["id"], scene.members_message["id"]
    return {
        "view room": ("GET", rooms, None),
        "add member": ("POST", f"{rooms}/members", {"user_id": scene.stranger.id}),
        "remove other": ("DELETE", f"{rooms}/members/{scene.other.id}", None),
        "leave": ("DELETE", f"{rooms}/members/{actor.id}", None),
        "history": ("GET", f"{rooms}/messages", None),
        "send": ("POST", f"{rooms}/messages", {"ref": new_ref(), "body": "x"}),
        "edit owner's": ("PATCH", f"{rooms}/messages/{owners}", {"body": "edited"}),
        "edit member's": ("PATCH", f"{rooms}/messages/{members}", {"body": "edited"}),
        "delete owner's": ("DELETE", f"{rooms}/messages/{owners}", None),
        "delete member's": ("DELETE", f"{rooms}/messages/{members}", None),
        "read": ("POST", f"{rooms}/read", {"seq": 2}),
    }[name]


#: action: the status for (owner, member, outsider).
MATRIX = {
    "view room": (200, 200, 404),
    "add member": (204, 204, 404),
    "remove other": (204, 403, 404),
    "leave": (204, 204, 404),
    "history": (200, 200, 404),
    "send": (201, 201, 404),
    "edit owner's": (200, 403, 404),
    "edit member's": (403, 200, 404),
    "delete owner's": (204, 403, 404),
    "delete member's": (204, 204, 404),
    "read": (204, 204, 404),
}
ROLES = ("owner", "member", "outsider")
CODES = {403: "forbidden", 404: "not_found"}


def perform(client: httpx.Client, request: Request, actor: TestUser) -> httpx.Response:
    method, path, body = request
    return client.request(method, path, json=body, headers=actor.headers)


def snapshot(client: httpx.Client, scene: Scene) -> Any:
    return room_of(client, scene.owner, scene.room_id), history(client, scene.owner, scene.room_id)


@pytest.mark.parametrize("name", list(MATRIX))
@pytest.mark.parametrize("role", ROLES)
def test_authorization_matrix(client: httpx.Client, scene: Scene, name: str, role: str) -> None:
    expected = MATRIX[name][ROLES.index(role)]
    actor = scene.actor(role)
    before = snapshot(client, scene)
    reply = perform(client, action(name, scene, actor, scene.room_id), actor)
    if expected >= 400:
        assert_error(reply, expected, CODES[expected])
        assert snapshot(client, scene) == before  # a refusal changes nothing
    else:
        ok(reply, expected)


@pytest.mark.parametrize("name", list(MATRIX))
def test_outsiders_cannot_tell_a_room_exists(client: httpx.Client, scene: Scene, name: str) -> None:
    """An outsider gets the same answer for the room as for a room that does not exist."""
    outsider = scene.outsider
    real = perform(client, action(name, scene, outsider, scene.room_id), outsider)
    fake = perform(client, action(name, scene, outsider, "no-such-room"), outsider)
    assert assert_error(real, 404, "not_found") == assert_error(fake, 404, "not_found")
    if name == "send":  # nothing was stored, so the outsider's refs stay unused
        assert seqs(history(client, scene.owner, scene.room_id)) == [2, 1]


@pytest.mark.parametrize("name", list(MATRIX))
def test_every_room_endpoint_requires_auth(client: httpx.Client, scene: Scene, name: str) -> None:
    method, path, body = action(name, scene, scene.owner, scene.room_id)
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        reply = client.request(method, path, json=body, headers=headers)
        assert_error(reply, 401, "unauthorized")
        assert reply.headers["WWW-Authenticate"] == "Bearer"
    for method, path in (("GET", "/rooms"), ("POST", "/rooms")):
        assert_error(client.request(method, path, json={}), 401, "unauthorized")


# --- sizes ----------------------------------------------------------------------------------------


def test_a_body_over_max_message_bytes_is_too_large(
    server_factory: Callable[..., ServerProcess],
) -> None:
    small = server_factory(limits={"max_message_bytes": 100})
    with httpx.Client(base_url=small.api, timeout=10) as http:
        alice, bob = new_user(http), new_user(http)
        room = direct(http, alice, bob)
        path = f"/rooms/{room['id']}/messages"
        post = lambda ref, body: http.post(  # noqa: E731
            path, json={"ref": ref, "body": body}, headers=alice.headers
        )
        message = assert_error(post("big", "x" * 101), 413, "too_large")
        assert "100 bytes" in message
        # Bytes of UTF-8, not characters: 51 two-byte letters are 102 bytes.
        assert_error(post("accents", "é" * 51), 413, "too_large")
        assert ok(post("big", "x" * 100), 201)["body"] == "x" * 100  # the ref was not used up
        assert ok(post("accents", "é" * 50), 201)["seq"] == 2
        first = history(http, alice, room["id"], after_seq=0)["messages"][0]
        edit = f"{path}/{first['id']}"
        reply = http.patch(edit, json={"body": "y" * 101}, headers=alice.headers)
        assert "100 bytes" in assert_error(reply, 413, "too_large")
        assert seqs(history(http, alice, room["id"])) == [2, 1]
        assert history(http, alice, room["id"], after_seq=0)["messages"][0] == first


def test_large_messages_fit_the_body_limit_of_sends(
    server_factory: Callable[..., ServerProcess],
) -> None:
    """With max_message_bytes above the 1 MiB JSON limit, a send of the largest body is still
    read, even escaped as JSON ASCII; the other endpoints keep their limit."""
    mib = 1024 * 1024
    big = server_factory(limits={"max_message_bytes": mib})
    with httpx.Client(base_url=big.api, timeout=30) as http:
        alice, bob = new_user(http), new_user(http)
        headers = {**alice.headers, "Content-Type": "application/json"}
        room = direct(http, alice, bob)
        path = f"/rooms/{room['id']}/messages"

        def post(ref: str, body: str, ensure_ascii: bool = False) -> httpx.Response:
            content = json.dumps({"ref": ref, "body": body}, ensure_ascii=ensure_ascii)
            return http.post(path, content=content.encode(), headers=headers)

        assert ok(post("ascii", "a" * mib), 201)["body"] == "a" * mib
        emoji = "\U0001f600" * (mib // 4)  # 1 MiB of UTF-8, 3 MiB as \ud83d\ude00 escapes
        assert ok(post("emoji", emoji, ensure_ascii=True), 201)["body"] == emoji
        message = assert_error(post("over", "a" * (mib + 1)), 413, "too_large")
        assert f"{mib} bytes of UTF-8" in message
        far_over = assert_error(post("far", "a" * (4 * mib)), 413, "too_large")
        assert "request body is too large" in far_over
        first = history(http, alice, room["id"], after_seq=0, limit=1)["messages"][0]
        edited = http.patch(f"{path}/{first['id']}", json={"body": "b" * mib}, headers=headers)
        assert ok(edited)["body"] == "b" * mib
        settings = http.patch("/me/settings", json={"x": "y" * (2 * mib)}, headers=headers)
        assert_error(settings, 413, "too_large")


# --- the OpenAPI document -----------------------------------------------------------------------

ENDPOINTS = {
    ("post", "/api/v1/rooms"): {"201", "200", "400", "401", "404"},
    ("get", "/api/v1/rooms"): {"200", "401"},
    ("get", "/api/v1/rooms/{room_id}"): {"200", "401", "404"},
    ("post", "/api/v1/rooms/{room_id}/members"): {"204", "400", "401", "404"},
    ("delete", "/api/v1/rooms/{room_id}/members/{user_id}"): {"204", "400", "401", "403", "404"},
    ("get", "/api/v1/rooms/{room_id}/messages"): {"200", "400", "401", "404"},
    ("post", "/api/v1/rooms/{room_id}/messages"): {"201", "200", "400", "401", "404", "413"},
    ("patch", "/api/v1/rooms/{room_id}/messages/{message_id}"): {
        "200",
        "400",
        "401",
        "403",
        "404",
        "409",
        "413",
    },
    ("delete", "/api/v1/rooms/{room_id}/messages/{message_id}"): {"204", "401", "403", "404"},
    ("post", "/api/v1/rooms/{room_id}/read"): {"204", "400", "401", "404"},
}
REQUEST_MODELS = {
    ("post", "/api/v1/rooms"): "CreateRoomRequest",
    ("post", "/api/v1/rooms/{room_id}/members"): "AddMemberRequest",
    ("post", "/api/v1/rooms/{room_id}/messages"): "SendMessageRequest",
    ("patch", "/api/v1/rooms/{room_id}/messages/{message_id}"): "EditMessageRequest",
    ("post", "/api/v1/rooms/{room_id}/read"): "ReadRequest",
}
REPLY_MODELS = {
    ("post", "/api/v1/rooms", "201"): "RoomBody",
    ("post", "/api/v1/rooms", "200"): "RoomBody",
    ("get", "/api/v1/rooms", "200"): "RoomList",
    ("get", "/api/v1/rooms/{room_id}", "200"): "RoomBody",
    ("get", "/api/v1/rooms/{room_id}/messages", "200"): "MessagePage",
    ("post", "/api/v1/rooms/{room_id}/messages", "201"): "MessageBody",
    ("post", "/api/v1/rooms/{room_id}/messages", "200"): "MessageBody",
    ("patch", "/api/v1/rooms/{room_id}/messages/{message_id}", "200"): "MessageBody",
}


@pytest.fixture(scope="module")
def openapi(client: httpx.Client) -> dict[str, Any]:
    reply = client.get("/openapi.json")
    assert reply.status_code == 200
    return json.loads(reply.content)


def json_schema(openapi: dict[str, Any], name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}", "components": openapi["components"]}


def test_openapi_documents_rooms_and_messages(openapi: dict[str, Any]) -> None:
    paths = openapi["paths"]
    for (method, path), statuses in ENDPOINTS.items():
        assert path in paths and method in paths[path], (method, path)
        operation = paths[path][method]
        assert operation["summary"], (method, path)
        assert operation["security"] == [{"bearer": []}], (method, path)
        assert statuses | {"500"} <= set(operation["responses"]), (method, path)
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")):
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}
            elif status == "204":
                assert "content" not in response
        body = operation.get("requestBody")
        if (method, path) in REQUEST_MODELS:
            schema = body["content"]["application/json"]["schema"]
            assert schema == {"$ref": f"#/components/schemas/{REQUEST_MODELS[method, path]}"}
            assert body["required"] is True
        else:
            assert body is None, (method, path)
    for (method, path, status), model in REPLY_MODELS.items():
        schema = paths[path][method]["responses"][status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": f"#/components/schemas/{model}"}, (method, path, status)
    history_params = {
        p["name"] for p in paths["/api/v1/rooms/{room_id}/messages"]["get"]["parameters"]
    }
    assert {"room_id", "after_seq", "before_seq", "limit"} <= history_params
    schemas = openapi["components"]["schemas"]
    assert set(schemas["RoomBody"]["required"]) == ROOM_KEYS
    assert set(schemas["RoomBody"]["properties"]) == ROOM_KEYS | {
        "last_message",
        "admin_ids",
        "topic",
        "avatar_media_id",
    }
    assert set(schemas["MessageBody"]["required"]) == MESSAGE_KEYS
    assert set(schemas["MessageBody"]["properties"]) == MESSAGE_KEYS | {
        "media_id",
        "sticker_id",
        "reply_to",
        "edited_ts",
    }
    assert schemas["CreateRoomRequest"]["discriminator"]["propertyName"] == "kind"
    assert schemas["SendMessageRequest"]["required"] == ["ref"]


def test_replies_match_their_documented_schemas(
    client: httpx.Client, openapi: dict[str, Any], user: Callable[[], TestUser]
) -> None:
    validators = pytest.importorskip("openapi_schema_validator")
    validate = lambda value, name: validators.validate(  # noqa: E731
        value, json_schema(openapi, name), cls=validators.OAS31Validator
    )
    alice, bob = user(), user()
    room = direct(client, alice, bob)
    validate(room, "RoomBody")
    first = send(client, alice, room["id"], "hello")
    reply = send(client, bob, room["id"], "re", reply_to=first["id"])
    validate(reply, "MessageBody")
    edited = ok(
        client.patch(
            f"/rooms/{room['id']}/messages/{first['id']}",
            json={"body": "hi"},
            headers=alice.headers,
        )
    )
    validate(edited, "MessageBody")
    validate(ok(client.get("/rooms", headers=alice.headers)), "RoomList")
    validate(room_of(client, bob, room["id"]), "RoomBody")
    validate(history(client, bob, room["id"]), "MessagePage")
    requests = [
        ({"kind": "direct", "user_id": "u"}, "CreateRoomRequest"),
        ({"kind": "group", "name": "n", "member_ids": ["u"]}, "CreateRoomRequest"),
        ({"ref": "r", "body": "b", "reply_to": first["id"]}, "SendMessageRequest"),
        ({"body": "b"}, "EditMessageRequest"),
        ({"seq": 1}, "ReadRequest"),
        ({"user_id": "u"}, "AddMemberRequest"),
    ]
    for body, name in requests:
        validate(body, name)
