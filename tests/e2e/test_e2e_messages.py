"""Messages over REST (docs/protocol.md "Messages", "Idempotency"), and the events they cause,
black-box against a real server process."""

from __future__ import annotations

import asyncio

import pytest
from e2e_support import Crowd, Json, Person, expect

from chatcore.testing.server import ServerProcess
from chatcore.testing.wsclient import new_ref

pytestmark = [pytest.mark.anyio, pytest.mark.e2e, pytest.mark.core_suite]

MESSAGE_FIELDS = {"id", "room_id", "seq", "sender_id", "ref", "kind", "body", "ts", "deleted"}


def assert_message_shape(message: Json) -> None:
    assert set(message) >= MESSAGE_FIELDS, f"Message lacks {MESSAGE_FIELDS - set(message)}"
    assert isinstance(message["id"], str) and message["id"]
    assert isinstance(message["seq"], int) and message["seq"] >= 1
    assert isinstance(message["ts"], int) and message["ts"] > 1_600_000_000_000, "ts is ms"
    assert message["kind"] in ("text", "media", "sticker", "system")
    assert message["deleted"] is False or message["deleted"] is True


async def fill(person: Person, room_id: str, count: int, concurrency: int = 8) -> None:
    """Post `count` messages (several requests in flight) and check they got seqs 1..count."""
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> int:
        async with gate:
            return int((await person.send_rest(room_id, f"m{i}"))["seq"])

    seqs = await asyncio.gather(*(one(i) for i in range(count)))
    assert sorted(seqs) == list(range(1, count + 1))


# --- posting and idempotency -----------------------------------------------------------------


async def test_post_message_answers_201_with_the_stored_message(server: ServerProcess) -> None:
    """POST /rooms/{id}/messages answers 201 with the Message: seq 1 first, then seq 2."""
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.group("g", [bob])
        ref = new_ref()
        reply = await alice.post(f"/rooms/{room['id']}/messages", {"ref": ref, "body": "hello"})
        first = expect(reply, 201)
        assert_message_shape(first)
        assert first["room_id"] == room["id"]
        assert first["sender_id"] == alice.id
        assert first["ref"] == ref
        assert first["kind"] == "text"
        assert first["body"] == "hello"
        assert first["seq"] == 1
        assert first["deleted"] is False
        second = await bob.send_rest(room["id"], "hi alice")
        assert second["seq"] == 2 and second["sender_id"] == bob.id
        assert (await bob.history(room["id"], after_seq=0))["messages"] == [first, second]


async def test_same_ref_again_answers_200_with_the_stored_message_unchanged(
    server: ServerProcess,
) -> None:
    """A repeat POST with a used ref answers 200 with the stored message, whatever the new
    body, and stores nothing new."""
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.group("g", [bob])
        ref = new_ref()
        first = await alice.send_rest(room["id"], "original", ref=ref)
        again = await alice.send_rest(room["id"], "original", ref=ref, status=200)
        changed = await alice.send_rest(room["id"], "something else", ref=ref, status=200)
        assert again == first
        assert changed == first
        history = (await alice.history(room["id"]))["messages"]
        assert history == [first]
        assert (await alice.room(room["id"]))["last_seq"] == 1


async def test_the_idempotency_key_includes_the_sender_and_the_room(
    server: ServerProcess,
) -> None:
    """The key is (sender, room_id, ref): another sender, or another room, with the same ref
    makes a new message."""
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.group("g", [bob])
        other_room = await alice.group("h", [bob])
        ref = new_ref()
        mine = await alice.send_rest(room["id"], "alice", ref=ref)
        bobs = await bob.send_rest(room["id"], "bob", ref=ref)
        elsewhere = await alice.send_rest(other_room["id"], "alice elsewhere", ref=ref)
        assert bobs["id"] != mine["id"] and bobs["seq"] == 2
        assert elsewhere["room_id"] == other_room["id"] and elsewhere["seq"] == 1


@pytest.mark.parametrize(
    ("ref", "status"),
    [
        pytest.param("", 400, id="empty"),
        pytest.param("x" * 129, 400, id="129-chars"),
        pytest.param(None, 400, id="missing"),
        pytest.param(7, 400, id="a-number"),
        pytest.param("x", 201, id="1-char"),
        pytest.param("é" * 128, 201, id="128-chars"),
    ],
)
async def test_ref_is_1_to_128_characters(server: ServerProcess, ref: object, status: int) -> None:
    """A ref of 0 or 129 characters (or none) answers 400 bad_request; 1 and 128 are fine."""
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.group("g", [bob])
        payload: Json = {"body": "hi"} if ref is None else {"ref": ref, "body": "hi"}
        reply = await alice.post(f"/rooms/{room['id']}/messages", payload)
        expect(reply, status, "bad_request" if status == 400 else None)
        expected_seq = 1 if status == 201 else 0
        assert (await alice.room(room["id"]))["last_seq"] == expected_seq


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"body": 5}, id="numeric-body"),
        pytest.param({"body": "x", "kind": "hologram"}, id="unknown-kind"),
        pytest.param({"body": ["x"]}, id="list-body"),
    ],
)
async def test_a_malformed_message_is_bad_request_and_keeps_the_ref(
    server: ServerProcess, payload: Json
) -> None:
    """POST with a mistyped field answers 400 bad_request, stores nothing, and the ref can
    then be used for a good message."""
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.group("g", [bob])
        ref = new_ref()
        path = f"/rooms/{room['id']}/messages"
        expect(await alice.post(path, {"ref": ref, **payload}), 400, "bad_request")
        assert (await alice.room(room["id"]))["last_seq"] == 0
        good = expect(await alice.post(path, {"ref": ref, "body": "good"}), 201)
        assert good["seq"] == 1 and good["body"] == "good"


async def test_body_over_max_message_bytes_is_too_large_and_keeps_the_ref(
    limited_server: ServerProcess,
) -> None:
    """A body over max_message_bytes (UTF-8 bytes, not characters) answers 413 too_large,
    stores nothing and leaves the ref unused."""
    server = limited_server
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.group("g", [bob])
        path = f"/rooms/{room['id']}/messages"
        ref = new_ref()
        # 51 characters but 102 bytes: over the limit.
        expect(await alice.post(path, {"ref": ref, "body": "é" * 51}), 413, "too_large")
        expect(await alice.post(path, {"ref": ref, "body": "x" * 101}), 413, "too_large")
        assert (await alice.room(room["id"]))["last_seq"] == 0
        # Exactly 100 bytes fits, under the same ref: the failed sends did not use it up.
        fits = expect(await alice.post(path, {"ref": ref, "body": "é" * 50}), 201)
        assert fits["body"] == "é" * 50 and fits["seq"] == 1


async def test_post_to_a_room_one_left_is_not_found_and_stores_nothing(
    server: ServerProcess,
) -> None:
    """After leaving a room, POST messages there answers 404 and stores nothing."""
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.group("g", [bob])
        expect(await bob.delete(f"/rooms/{room['id']}/members/{bob.id}"), 204)
        reply = await bob.post(f"/rooms/{room['id']}/messages", {"ref": new_ref(), "body": "x"})
        expect(reply, 404, "not_found")
        assert (await alice.room(room["id"]))["last_seq"] == 0


async def test_reply_to_is_kept(server: ServerProcess) -> None:
    """A message sent with `reply_to` (a message of the room) is stored and delivered with
    it, over REST and over WebSocket."""
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.group("g", [bob])
        question = await alice.send_rest(room["id"], "lunch?")
        payload = {"ref": new_ref(), "body": "yes", "reply_to": question["id"]}
        answer = expect(await bob.post(f"/rooms/{room['id']}/messages", payload), 201)
        assert answer["reply_to"] == question["id"]
        ws = await crowd.session(alice)
        over_ws = await ws.send_message(room["id"], "great", reply_to=answer["id"])
        assert over_ws["reply_to"] == answer["id"]
        stored = (await alice.history(room["id"], after_seq=0))["messages"]
        assert [m.get("reply_to") for m in stored] == [None, question["id"], answer["id"]]


# --- history ----------------------------------------------------------------------------------


async def test_history_pages_after_and_before_a_seq(server: ServerProcess) -> None:
    """after_seq gives oldest first, before_seq and neither give newest first; has_more says
    whether the page stopped short."""
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.group("g", [bob])
        rid = room["id"]
        for i in range(10):
            await alice.send_rest(rid, f"m{i + 1}")

        def seqs(body: Json) -> list[int]:
            return [m["seq"] for m in body["messages"]]

        page = await bob.history(rid, after_seq=3, limit=4)
        assert (seqs(page), page["has_more"]) == ([4, 5, 6, 7], True)
        page = await bob.history(rid, after_seq=8, limit=4)
        assert (seqs(page), page["has_more"]) == ([9, 10], False)
        page = await bob.history(rid, after_seq=10)
        assert (seqs(page), page["has_more"]) == ([], False)
        page = await bob.history(rid, after_seq=0)
        assert (seqs(page), page["has_more"]) == (list(range(1, 11)), False)
        assert [m["body"] for m in page["messages"]] == [f"m{i}" for i in range(1, 11)]

        page = await bob.history(rid, before_seq=5, limit=2)
        assert (seqs(page), page["has_more"]) == ([4, 3], True)
        page = await bob.history(rid, before_seq=3, limit=2)
        assert (seqs(page), page["has_more"]) == ([2, 1], False)
        page = await bob.history(rid, before_seq=1)
        assert (seqs(page), page["has_more"]) == ([], False)

        page = await bob.history(rid, limit=3)
        assert (seqs(page), page["has_more"]) == ([10, 9, 8], True)
        page = await bob.history(rid)
        assert (seqs(page), page["has_more"]) == (list(range(10, 0, -1)), False)


async def test_history_with_both_after_and_before_is_bad_request(server: ServerProcess) -> None:
    """after_seq and before_seq at once answer 400 bad_request."""
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.group("g", [bob])
        await alice.send_rest(room["id"], "x")
        reply = await alice.get(
            f"/rooms/{room['id']}/messages", params={"after_seq": 0, "before_seq": 5}
        )
        expect(reply, 400, "bad_request")


async def test_history_limit_defaults_to_50_and_is_clamped_to_500(
    server: ServerProcess,
) -> None:
    """Without limit a page holds 50 messages; a limit over 500 gives 500 (this test needs
    501 messages, so it takes as long as the server needs to store them)."""
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.group("big", [bob])
        rid = room["id"]
        await fill(alice, rid, 501)

        newest = await bob.history(rid)
        assert [m["seq"] for m in newest["messages"]] == list(range(501, 451, -1))
        assert newest["has_more"] is True
        oldest = await bob.history(rid, after_seq=0)
        assert [m["seq"] for m in oldest["messages"]] == list(range(1, 51))
        assert oldest["has_more"] is True

        clamped = await bob.history(rid, after_seq=0, limit=10_000)
        assert [m["seq"] for m in clamped["messages"]] == list(range(1, 501))
        assert clamped["has_more"] is True
        rest = await bob.history(rid, after_seq=500, limit=501)
        assert [m["seq"] for m in rest["messages"]] == [501]
        assert rest["has_more"] is False
        backwards = await bob.history(rid, before_seq=502, limit=501)
        assert len(backwards["messages"]) == 500 and backwards["has_more"] is True


# --- edit and delete --------------------------------------------------------------------------


async def test_the_sender_edits_a_message_and_members_get_message_updated(
    server: ServerProcess,
) -> None:
    """PATCH by the sender answers the edited Message (same id and seq, edited_ts set); every
    member's sessions get `message_updated`."""
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.group("g", [bob])
        original = await alice.send_rest(room["id"], "tpyo")
        alice_ws, bob_ws = await crowd.sessions_of(alice, bob)
        reply = await alice.patch(
            f"/rooms/{room['id']}/messages/{original['id']}", {"body": "typo"}
        )
        edited = expect(reply, 200)
        assert edited["id"] == original["id"] and edited["seq"] == original["seq"]
        assert edited["body"] == "typo" and edited["deleted"] is False
        assert isinstance(edited.get("edited_ts"), int) and edited["edited_ts"] >= original["ts"]
        for ws in (alice_ws, bob_ws):
            event = await ws.recv("message_updated")
            assert event["message"] == edited
        assert (await bob.history(room["id"]))["messages"] == [edited]


async def test_only_the_sender_may_edit(server: ServerProcess) -> None:
    """PATCH by a member who is not the sender (the group owner included) answers 403
    forbidden and changes nothing."""
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.group("g", [bob])
        bobs = await bob.send_rest(room["id"], "bob wrote this")
        path = f"/rooms/{room['id']}/messages/{bobs['id']}"
        expect(await alice.patch(path, {"body": "the owner rewrote it"}), 403, "forbidden")
        assert (await bob.history(room["id"]))["messages"] == [bobs]


@pytest.mark.parametrize("payload", [{}, {"body": 5}, {"body": None}])
async def test_edit_without_a_string_body_is_bad_request(
    server: ServerProcess, payload: Json
) -> None:
    """PATCH without a string `body` answers 400 bad_request and changes nothing."""
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.group("g", [bob])
        sent = await alice.send_rest(room["id"], "as sent")
        reply = await alice.patch(f"/rooms/{room['id']}/messages/{sent['id']}", payload)
        expect(reply, 400, "bad_request")
        assert (await alice.history(room["id"]))["messages"] == [sent]


async def test_edit_with_a_body_over_the_limit_is_too_large(limited_server: ServerProcess) -> None:
    """PATCH with a body over max_message_bytes answers 413 too_large and keeps the old body."""
    server = limited_server
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.group("g", [bob])
        sent = await alice.send_rest(room["id"], "short")
        reply = await alice.patch(f"/rooms/{room['id']}/messages/{sent['id']}", {"body": "x" * 101})
        expect(reply, 413, "too_large")
        assert (await alice.history(room["id"]))["messages"] == [sent]


async def test_the_sender_deletes_a_message_which_keeps_its_seq(server: ServerProcess) -> None:
    """DELETE by the sender answers 204; the message keeps its seq with body "" and deleted
    true, and members get `message_updated`."""
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.group("g", [bob])
        rid = room["id"]
        first = await alice.send_rest(rid, "keep")
        doomed = await alice.send_rest(rid, "regret")
        last = await alice.send_rest(rid, "keep too")
        alice_ws, bob_ws = await crowd.sessions_of(alice, bob)
        expect(await alice.delete(f"/rooms/{rid}/messages/{doomed['id']}"), 204)
        for ws in (alice_ws, bob_ws):
            event = await ws.recv("message_updated")
            gone = event["message"]
            assert gone["id"] == doomed["id"] and gone["seq"] == 2
            assert gone["body"] == "" and gone["deleted"] is True
        history = (await bob.history(rid, after_seq=0))["messages"]
        assert [m["seq"] for m in history] == [1, 2, 3]
        assert history[0] == first and history[2] == last
        assert history[1]["id"] == doomed["id"]
        assert history[1]["body"] == "" and history[1]["deleted"] is True
        # The next message still gets the next seq: a deleted seq is never reused.
        assert (await alice.send_rest(rid, "after"))["seq"] == 4


async def test_the_group_owner_may_delete_anyones_message(server: ServerProcess) -> None:
    """DELETE by a group room's owner of another member's message answers 204."""
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.group("g", [bob])
        bobs = await bob.send_rest(room["id"], "spam")
        expect(await alice.delete(f"/rooms/{room['id']}/messages/{bobs['id']}"), 204)
        (stored,) = (await bob.history(room["id"]))["messages"]
        assert stored["deleted"] is True and stored["body"] == ""


async def test_other_members_may_not_delete(server: ServerProcess) -> None:
    """DELETE by a member who is neither the sender nor the group's owner answers 403
    forbidden; in a direct room, the peer has no owner powers either."""
    async with Crowd(server) as crowd:
        alice, bob, carol = await crowd.people(3)
        group = await alice.group("g", [bob, carol])
        bobs = await bob.send_rest(group["id"], "bob's")
        expect(await carol.delete(f"/rooms/{group['id']}/messages/{bobs['id']}"), 403, "forbidden")
        assert (await alice.history(group["id"]))["messages"] == [bobs]

        direct = await alice.direct(bob)
        alices = await alice.send_rest(direct["id"], "alice's")
        reply = await bob.delete(f"/rooms/{direct['id']}/messages/{alices['id']}")
        expect(reply, 403, "forbidden")
        assert (await alice.history(direct["id"]))["messages"] == [alices]


async def test_a_deleted_message_keeps_its_ref(server: ServerProcess) -> None:
    """The idempotency key is kept as long as the message exists: resending the ref of a
    deleted message answers 200 with the (deleted) stored message, not a new one."""
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.group("g", [bob])
        ref = new_ref()
        sent = await alice.send_rest(room["id"], "oops", ref=ref)
        expect(await alice.delete(f"/rooms/{room['id']}/messages/{sent['id']}"), 204)
        again = await alice.send_rest(room["id"], "oops", ref=ref, status=200)
        assert again["id"] == sent["id"] and again["seq"] == 1 and again["deleted"] is True
        assert (await alice.room(room["id"]))["last_seq"] == 1


# --- read receipts and unread -------------------------------------------------------------------


async def test_read_drives_unread_is_clamped_and_never_moves_backwards(
    server: ServerProcess,
) -> None:
    """POST /read answers 204; unread counts others' messages above the read seq; a seq over
    the last one is clamped to it; a lower seq never moves the read seq back."""
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.group("g", [bob])
        rid = room["id"]
        for i in range(5):
            await alice.send_rest(rid, f"m{i}")
        assert await bob.unread(rid) == 5
        await bob.read(rid, 3)
        assert await bob.unread(rid) == 2
        await bob.read(rid, 1)
        assert await bob.unread(rid) == 2, "a lower read seq moved the read position back"
        await bob.read(rid, 999)
        assert await bob.unread(rid) == 0
        # Clamped to 5, not stored as 999: a 6th message is unread.
        await alice.send_rest(rid, "sixth")
        assert await bob.unread(rid) == 1, "the read seq was not clamped to the room's last seq"
        listed = next(r for r in await bob.rooms() if r["id"] == rid)
        assert listed["unread"] == 1


async def test_unread_ignores_own_and_deleted_messages(server: ServerProcess) -> None:
    """unread counts only non-deleted messages of others."""
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.group("g", [bob])
        rid = room["id"]
        await alice.send_rest(rid, "one")
        doomed = await alice.send_rest(rid, "two")
        await bob.send_rest(rid, "bob's own")
        assert await bob.unread(rid) == 2
        expect(await alice.delete(f"/rooms/{rid}/messages/{doomed['id']}"), 204)
        assert await bob.unread(rid) == 1


@pytest.mark.parametrize("body", [{"seq": -1}, {"seq": "3"}, {}, {"seq": 1.5}])
async def test_read_with_a_bad_seq_is_bad_request(server: ServerProcess, body: Json) -> None:
    """POST /read with a missing, negative or mistyped seq answers 400 bad_request."""
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.group("g", [bob])
        await alice.send_rest(room["id"], "x")
        expect(await bob.post(f"/rooms/{room['id']}/read", body), 400, "bad_request")
        assert await bob.unread(room["id"]) == 1
