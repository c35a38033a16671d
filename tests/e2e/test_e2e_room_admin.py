"""Room administration over REST and its live side over WebSocket (docs/protocol.md "Room
administration", "The room log"), black-box against real server processes: a group's name,
topic and avatar, roles, ownership, removals, deletions by moderators, mutes, bans, and the
room log every member sees live and in history.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import httpx
import pytest
from e2e_support import Crowd, Json, Person, expect

from chatcore.clock import now_ms
from chatcore.testing.cluster import ClusterProcess
from chatcore.testing.server import ServerProcess
from chatcore.testing.wsclient import WSClient

pytestmark = [pytest.mark.anyio, pytest.mark.e2e, pytest.mark.core_suite]

Service = ServerProcess | ClusterProcess


async def log_entry(ws: WSClient, room_id: str, action: str) -> Json:
    """The next `room_log` entry of `room_id` with this action."""
    event = await ws.recv(
        "room_log",
        match=lambda e: e["entry"]["room_id"] == room_id and e["entry"]["action"] == action,
    )
    entry: Json = event["entry"]
    return entry


async def room_event(ws: WSClient, room_id: str, check: Callable[[Json], bool]) -> Json:
    """The next `room` event of `room_id` for which `check(room)` holds."""
    event = await ws.recv("room", match=lambda e: e["room"]["id"] == room_id and check(e["room"]))
    room: Json = event["room"]
    return room


async def room_log(person: Person, room_id: str, **params: object) -> Json:
    body: Json = expect(await person.get(f"/rooms/{room_id}/log", params=params), 200)
    assert set(body) == {"entries", "has_more"}, body
    return body


async def make_admin(owner: Person, room: Json, member: Person) -> None:
    path = f"/rooms/{room['id']}/members/{member.id}/role"
    changed = expect(await owner.call("PUT", path, json={"role": "admin"}), 200)
    assert member.id in changed["admin_ids"]


def png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (40, 30), "teal").save(out, "PNG")
    return out.getvalue()


# --- the room's name, topic and avatar --------------------------------------------------------


async def test_owner_and_admins_edit_the_room_and_every_member_sees_it(server: Service) -> None:
    """PATCH /rooms/{id} by the owner or an admin: members get the `room` event and the
    `room_log` entry live, and the log in history; the message stream stays untouched."""
    async with Crowd(server) as crowd:
        alice, bob, carol, dave = await crowd.people(4)
        room = await alice.group("team", [bob, carol])
        assert room["admin_ids"] == [] and "topic" not in room
        carol_ws = await crowd.session(carol)
        await make_admin(alice, room, bob)
        promoted = await log_entry(carol_ws, room["id"], "member.role")
        assert (promoted["actor_id"], promoted["target_id"]) == (alice.id, bob.id)
        assert promoted["details"] == {"role": "admin"}

        patch = {"name": "  crew ", "topic": "Plans for Q1\nand beyond"}
        changed = expect(await bob.patch(f"/rooms/{room['id']}", patch), 200)
        assert (changed["name"], changed["topic"]) == ("crew", "Plans for Q1\nand beyond")
        assert changed["admin_ids"] == [bob.id] and changed["last_seq"] == 0
        live = await room_event(carol_ws, room["id"], lambda r: r.get("topic") is not None)
        assert (live["name"], live["topic"]) == ("crew", "Plans for Q1\nand beyond")
        entry = await log_entry(carol_ws, room["id"], "room.update")
        assert entry["actor_id"] == bob.id
        assert entry["details"] == {"name": "crew", "topic": "Plans for Q1\nand beyond"}
        assert (await carol.room(room["id"]))["topic"] == "Plans for Q1\nand beyond"

        # A plain member may not; an outsider does not see the room; bad values are refused.
        expect(await carol.patch(f"/rooms/{room['id']}", {"topic": "mine"}), 403, "forbidden")
        expect(await dave.patch(f"/rooms/{room['id']}", {"topic": "x"}), 404, "not_found")
        for bad in (
            {"topic": "x" * 1001},
            {"name": None},
            {"name": ""},
            {"name": "x" * 101},
            {"topic": "bell\a"},
            {"colour": "red"},
            {"topic": 5},
            {"avatar_media_id": 5},
        ):
            expect(await alice.patch(f"/rooms/{room['id']}", bad), 400, "bad_request")
        expect(await alice.patch(f"/rooms/{room['id']}", [1]), 400, "bad_request")
        direct = await alice.direct(bob)
        expect(await alice.patch(f"/rooms/{direct['id']}", {"topic": "x"}), 400, "bad_request")

        # null clears the topic; the room then leaves it out.
        cleared = expect(await alice.patch(f"/rooms/{room['id']}", {"topic": None}), 200)
        assert "topic" not in cleared
        # A patch that changes nothing answers the room, and adds nothing to the log.
        same = expect(await alice.patch(f"/rooms/{room['id']}", {"name": "crew"}), 200)
        assert same["name"] == "crew"

        log = await room_log(carol, room["id"])
        assert [e["action"] for e in log["entries"]] == [
            "room.update",
            "room.update",
            "member.role",
            "room.create",
        ]
        assert log["entries"][0]["details"] == {"topic": None}
        assert log["has_more"] is False
        # Paging: newest first, `before` an entry's id.
        first = await room_log(carol, room["id"], limit=3)
        assert first["has_more"] is True and len(first["entries"]) == 3
        rest = await room_log(carol, room["id"], before=first["entries"][-1]["id"], limit=3)
        assert [e["action"] for e in rest["entries"]] == ["room.create"]
        assert rest["has_more"] is False
        expect(await dave.get(f"/rooms/{room['id']}/log"), 404, "not_found")
        expect(await carol.get(f"/rooms/{room['id']}/log", params={"before": "x"}), 400)
        expect(await carol.get(f"/rooms/{room['id']}/log", params={"limit": "many"}), 400)
        # The log is not in the message stream.
        assert (await alice.history(room["id"]))["messages"] == []


async def test_a_room_avatar_is_an_image_the_members_may_then_read(server: Service) -> None:
    async with Crowd(server) as crowd:
        alice, bob, carol = await crowd.people(3)
        room = await alice.group("team", [bob])
        upload = await alice.http.post(
            alice.api + "/media",
            headers=alice.user.headers,
            files={"file": ("a.png", png(), "image/png")},
        )
        assert upload.status_code == 201, upload.text
        media = upload.json()
        expect(await bob.get(f"/media/{media['id']}"), 404, "not_found")
        # Only media the caller may read: bob cannot use alice's upload.
        await make_admin(alice, room, bob)
        expect(
            await bob.patch(f"/rooms/{room['id']}", {"avatar_media_id": media["id"]}),
            404,
            "not_found",
        )
        changed = expect(
            await alice.patch(f"/rooms/{room['id']}", {"avatar_media_id": media["id"]}), 200
        )
        assert changed["avatar_media_id"] == media["id"]
        read = await bob.get(f"/media/{media['id']}")  # a member reads the avatar
        assert read.status_code == 200 and read.content == png(), read.status_code
        expect(await carol.get(f"/media/{media['id']}"), 404, "not_found")  # an outsider not
        removed = expect(await alice.patch(f"/rooms/{room['id']}", {"avatar_media_id": None}), 200)
        assert "avatar_media_id" not in removed


# --- roles and ownership ----------------------------------------------------------------------


async def test_roles_and_ownership(server: Service) -> None:
    async with Crowd(server) as crowd:
        alice, bob, carol, dave = await crowd.people(4)
        room = await alice.group("team", [bob, carol])
        role = f"/rooms/{room['id']}/members/{{}}/role"
        expect(await bob.call("PUT", role.format(carol.id), json={"role": "admin"}), 403)
        expect(await alice.call("PUT", role.format(dave.id), json={"role": "admin"}), 404)
        for bad in ({"role": "owner"}, {"role": "boss"}, {}, {"role": "admin", "x": 1}):
            expect(await alice.call("PUT", role.format(bob.id), json=bad), 400, "bad_request")
        expect(await alice.call("PUT", role.format(alice.id), json={"role": "member"}), 400)
        await make_admin(alice, room, bob)
        # Only the owner changes roles: an admin may not.
        expect(await bob.call("PUT", role.format(carol.id), json={"role": "admin"}), 403)

        bob_ws = await crowd.session(bob)
        owner = f"/rooms/{room['id']}/owner"
        expect(await bob.post(owner, {"user_id": bob.id}), 403, "forbidden")
        expect(await alice.post(owner, {"user_id": dave.id}), 404, "not_found")
        expect(await alice.post(owner, {}), 400, "bad_request")
        moved = expect(await alice.post(owner, {"user_id": bob.id}), 200)
        assert (moved["owner_id"], moved["admin_ids"]) == (bob.id, [alice.id])
        entry = await log_entry(bob_ws, room["id"], "room.owner")
        assert (entry["actor_id"], entry["target_id"]) == (alice.id, bob.id)
        live = await room_event(bob_ws, room["id"], lambda r: r["owner_id"] == bob.id)
        assert live["admin_ids"] == [alice.id]
        # The old owner is an admin now: the new owner may demote them.
        expect(await alice.post(owner, {"user_id": alice.id}), 403, "forbidden")
        demoted = expect(await bob.call("PUT", role.format(alice.id), json={"role": "member"}), 200)
        assert demoted["admin_ids"] == []
        # A direct room has no roles.
        direct = await alice.direct(bob)
        path = f"/rooms/{direct['id']}/members/{bob.id}/role"
        expect(await alice.call("PUT", path, json={"role": "admin"}), 400, "bad_request")


async def test_a_room_admin_is_nobody_in_another_room(server: Service) -> None:
    async with Crowd(server) as crowd:
        alice, bob, carol = await crowd.people(3)
        ruled = await alice.group("ruled", [bob, carol])
        plain = await alice.group("plain", [bob, carol])
        elsewhere = await alice.group("elsewhere", [carol])
        await make_admin(alice, ruled, bob)
        message = await carol.send_rest(plain["id"], "mine")
        for path, method, body in (
            ("/rooms/{}", "PATCH", {"topic": "x"}),
            (f"/rooms/{{}}/members/{carol.id}/mute", "POST", {"minutes": 5}),
            (f"/rooms/{{}}/bans/{carol.id}", "PUT", {}),
            ("/rooms/{}/bans", "GET", None),
            (f"/rooms/{{}}/members/{carol.id}", "DELETE", None),
        ):
            expect(await bob.call(method, path.format(plain["id"]), json=body), 403, "forbidden")
            expect(await bob.call(method, path.format(elsewhere["id"]), json=body), 404)
        delete = f"/rooms/{plain['id']}/messages/{message['id']}"
        expect(await bob.delete(delete), 403, "forbidden")
        assert [m["body"] for m in (await alice.history(plain["id"]))["messages"]] == ["mine"]
        assert carol.id in (await alice.room(plain["id"]))["member_ids"]


# --- removals and deletions -------------------------------------------------------------------


async def test_admins_remove_plain_members_and_delete_their_messages(server: Service) -> None:
    async with Crowd(server) as crowd:
        alice, bob, carol, dave, eve = await crowd.people(5)
        room = await alice.group("team", [bob, carol, dave, eve])
        await make_admin(alice, room, bob)
        await make_admin(alice, room, eve)
        carol_ws, dave_ws = await crowd.sessions_of(carol, dave)
        members = f"/rooms/{room['id']}/members/{{}}"
        # An admin may remove a plain member, not the owner nor another admin.
        expect(await bob.delete(members.format(alice.id)), 403, "forbidden")
        expect(await bob.delete(members.format(eve.id)), 403, "forbidden")
        expect(await dave.delete(members.format(carol.id)), 403, "forbidden")
        expect(await bob.delete(members.format(carol.id)), 204)
        removed = await log_entry(carol_ws, room["id"], "member.remove")  # told, though out
        assert (removed["actor_id"], removed["target_id"]) == (bob.id, carol.id)
        await log_entry(dave_ws, room["id"], "member.remove")
        expect(await carol.get(f"/rooms/{room['id']}"), 404, "not_found")
        # The owner may remove an admin; anyone may leave.
        expect(await alice.delete(members.format(eve.id)), 204)
        expect(await dave.delete(members.format(dave.id)), 204)
        left = await room_log(alice, room["id"], limit=1)
        assert left["entries"][0]["action"] == "member.leave"
        assert left["entries"][0]["actor_id"] == dave.id

        # Deleting others' messages: an admin may; a plain member may not.
        expect(await alice.post(f"/rooms/{room['id']}/members", {"user_id": dave.id}), 204)
        message = await alice.send_rest(room["id"], "from the owner")
        own = await dave.send_rest(room["id"], "from dave")
        path = f"/rooms/{room['id']}/messages/{{}}"
        expect(await dave.delete(path.format(message["id"])), 403, "forbidden")
        bob_ws = await crowd.session(bob)
        expect(await bob.delete(path.format(own["id"])), 204)
        entry = await log_entry(bob_ws, room["id"], "message.delete")
        assert (entry["actor_id"], entry["target_id"]) == (bob.id, own["id"])
        assert entry["details"] == {"sender_id": dave.id, "seq": own["seq"]}
        history = (await alice.history(room["id"]))["messages"]
        assert [(m["seq"], m["deleted"]) for m in history] == [
            (own["seq"], True),
            (message["seq"], False),
        ]
        # The sender deleting their own message is no moderator action: no log entry.
        mine = await dave.send_rest(room["id"], "again")
        expect(await dave.delete(path.format(mine["id"])), 204)
        assert (await room_log(alice, room["id"], limit=1))["entries"][0]["id"] == entry["id"]


# --- mutes ------------------------------------------------------------------------------------


async def test_a_muted_member_cannot_send_until_unmuted(server: Service) -> None:
    """A mute refuses the member's sends over REST and WebSocket alike (`forbidden`, saying
    until when); nothing is stored and the ref stays free."""
    async with Crowd(server) as crowd:
        alice, bob, carol = await crowd.people(3)
        room = await alice.group("team", [bob, carol])
        await make_admin(alice, room, bob)
        mute = f"/rooms/{room['id']}/members/{{}}/mute"
        carol_ws = await crowd.session(carol)
        muted = expect(await bob.post(mute.format(carol.id), {"minutes": 30}), 200)
        assert muted["user_id"] == carol.id
        assert muted["muted_until_ts"] > now_ms() + 29 * 60_000
        entry = await log_entry(carol_ws, room["id"], "member.mute")
        assert entry["details"] == {"until_ts": muted["muted_until_ts"]}

        reply = await carol.post(f"/rooms/{room['id']}/messages", {"ref": "r1", "body": "hi"})
        expect(reply, 403, "forbidden")
        assert "muted" in reply.json()["error"]["message"]
        refused = await carol_ws.send(room["id"], "hi", ref="w1")
        assert (refused["type"], refused["code"], refused["ref"]) == ("error", "forbidden", "w1")
        assert "until" in refused["message"]
        assert (await alice.history(room["id"]))["messages"] == []
        # Others still send.
        await alice.send_rest(room["id"], "owner speaks")

        # Who may mute whom, and what a mute needs.
        expect(await carol.post(mute.format(bob.id), {"minutes": 5}), 403, "forbidden")
        expect(await bob.post(mute.format(alice.id), {"minutes": 5}), 403, "forbidden")
        for bad in (
            {},
            {"minutes": 0},
            {"minutes": "5"},
            {"minutes": 5, "until_ts": now_ms() + 60_000},
            {"until_ts": now_ms() - 1},
            {"until_ts": now_ms() + 400 * 86_400_000},
            {"minutes": 5, "why": "x"},
        ):
            expect(await alice.post(mute.format(carol.id), bad), 400, "bad_request")
        outsider = await crowd.person()
        expect(await alice.post(mute.format(outsider.id), {"minutes": 5}), 404, "not_found")

        expect(await bob.delete(mute.format(carol.id)), 204)
        await log_entry(carol_ws, room["id"], "member.unmute")
        # The refused refs are free: the same refs store now.
        stored = await carol_ws.send_message(room["id"], "hi", ref="w1")
        again = await carol.send_rest(room["id"], "hi", ref="r1")
        assert (stored["seq"], again["seq"]) == (2, 3)

        # A mute until a time, which the owner may also set on an admin.
        until = now_ms() + 3_600_000
        expect(await alice.post(mute.format(bob.id), {"until_ts": until}), 200)
        expect(await bob.post(f"/rooms/{room['id']}/messages", {"ref": "b", "body": "x"}), 403)


# --- bans -------------------------------------------------------------------------------------


async def test_a_ban_removes_the_user_and_keeps_them_out(server: Service) -> None:
    async with Crowd(server) as crowd:
        alice, bob, carol, dave = await crowd.people(4)
        room = await alice.group("team", [bob, carol, dave])
        await make_admin(alice, room, bob)
        ban = f"/rooms/{room['id']}/bans/{{}}"
        carol_ws, dave_ws = await crowd.sessions_of(carol, dave)
        banned = expect(await bob.call("PUT", ban.format(carol.id), json={"reason": "spam"}), 200)
        assert (banned["user_id"], banned["by"], banned["reason"]) == (carol.id, bob.id, "spam")
        gone = await room_event(dave_ws, room["id"], lambda r: carol.id not in r["member_ids"])
        assert carol.id not in gone["member_ids"]
        entry = await log_entry(carol_ws, room["id"], "member.ban")  # the banned user is told
        assert entry["details"] == {"reason": "spam"}
        await log_entry(dave_ws, room["id"], "member.ban")
        # Banned: the room is invisible, sends are refused.
        expect(await carol.get(f"/rooms/{room['id']}"), 404, "not_found")
        expect(await carol.get(f"/rooms/{room['id']}/log"), 404, "not_found")
        reply = await carol.post(f"/rooms/{room['id']}/messages", {"ref": "x", "body": "back"})
        expect(reply, 404, "not_found")
        # A plain member cannot add them back, nor see the bans.
        add = f"/rooms/{room['id']}/members"
        expect(await dave.post(add, {"user_id": carol.id}), 403, "forbidden")
        expect(await dave.get(f"/rooms/{room['id']}/bans"), 403, "forbidden")
        listed = expect(await bob.get(f"/rooms/{room['id']}/bans"), 200)
        assert [b["user_id"] for b in listed["bans"]] == [carol.id]
        # An admin (or the owner) may add them back, which lifts the ban.
        expect(await bob.post(add, {"user_id": carol.id}), 204)
        assert expect(await bob.get(f"/rooms/{room['id']}/bans"), 200) == {"bans": []}
        actions = [e["action"] for e in (await room_log(alice, room["id"], limit=2))["entries"]]
        assert actions == ["member.add", "member.unban"]

        # Who may ban whom; a ban with no body; lifting one.
        expect(await bob.call("PUT", ban.format(alice.id)), 403, "forbidden")
        expect(await dave.call("PUT", ban.format(carol.id)), 403, "forbidden")
        expect(await bob.call("PUT", ban.format(bob.id)), 400, "bad_request")
        expect(await bob.call("PUT", ban.format("no-such-user")), 404, "not_found")
        expect(await bob.call("PUT", ban.format(carol.id), json={"reason": 5}), 400)
        expect(await bob.call("PUT", ban.format(carol.id), json={"reason": "x" * 501}), 400)
        outsider = await crowd.person()
        expect(await bob.call("PUT", ban.format(outsider.id)), 200)  # kept out in advance
        expect(await dave.post(add, {"user_id": outsider.id}), 403, "forbidden")
        expect(await bob.delete(ban.format(outsider.id)), 204)
        expect(await bob.delete(ban.format(outsider.id)), 404, "not_found")
        expect(await dave.post(add, {"user_id": outsider.id}), 204)
        # The owner may ban an admin; a direct room has no bans.
        expect(await alice.call("PUT", ban.format(bob.id)), 200)
        direct = await alice.direct(dave)
        expect(await alice.call("PUT", f"/rooms/{direct['id']}/bans/{dave.id}"), 400)


# --- the OpenAPI document (who may call each route: test_e2e_authorization.py) --------


async def test_every_room_admin_route_is_in_the_openapi_document(server: Service) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        document = expect(await http.get(server.api + "/openapi.json"), 200)
    paths = document["paths"]
    room = "/api/v1/rooms/{room_id}"
    member = room + "/members/{user_id}"
    routes = {
        ("patch", room): {"200", "400", "401", "403", "404"},
        ("put", member + "/role"): {"200", "400", "401", "403", "404"},
        ("post", room + "/owner"): {"200", "400", "401", "403", "404"},
        ("post", member + "/mute"): {"200", "400", "401", "403", "404"},
        ("delete", member + "/mute"): {"204", "400", "401", "403", "404"},
        ("get", room + "/bans"): {"200", "400", "401", "403", "404"},
        ("put", room + "/bans/{user_id}"): {"200", "400", "401", "403", "404"},
        ("delete", room + "/bans/{user_id}"): {"204", "400", "401", "403", "404"},
        ("get", room + "/log"): {"200", "400", "401", "404"},
    }
    for (method, path), statuses in routes.items():
        operation = paths[path][method]
        assert operation["summary"], (method, path)
        assert operation["security"] == [{"bearer": []}], (method, path)
        assert statuses | {"500"} <= set(operation["responses"]), (method, path)
    schemas = document["components"]["schemas"]
    assert {"admin_ids", "topic", "avatar_media_id"} <= set(schemas["RoomBody"]["properties"])
    assert {"id", "room_id", "ts", "actor_id", "action"} <= set(
        schemas["RoomLogEntryBody"]["required"]
    )
    log_params = {p["name"] for p in paths[room + "/log"]["get"]["parameters"]}
    assert {"before", "limit"} <= log_params
