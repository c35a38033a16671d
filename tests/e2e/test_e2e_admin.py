"""Administration end to end (docs/protocol.md, Administration): real server processes, the
admin API over HTTP, sessions over WebSocket, and the console acting on a running node.

Every admin route refuses everyone but a server admin (401 without a token, 403 otherwise);
disabling ends a user's logins and closes their sessions, on this node and on another node of
a cluster; erasure leaves a tombstone and keeps each room's seqs gapless; a shut room takes
nobody's messages any more; every action is in the audit log.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from cli_support import chatcore_cli
from e2e_support import Crowd, Person, expect

from chatcore.testing.cluster import ClusterProcess, start_cluster
from chatcore.testing.server import ServerProcess, start_server
from chatcore.testing.services import postgres_storage_section, redis_url, require_url
from chatcore.testing.users import PASSWORD
from chatcore.testing.wsclient import WSClient, new_ref

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

#: Ended logins are re-read from storage this often, so that a console command's (made in a
#: process of its own, whose in-memory broker reaches no node) closes sessions within a test.
REVOCATION_SYNC = {"revocation_sync_seconds": 0.2}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with start_server(tmp_path_factory.mktemp("admin"), {"auth": REVOCATION_SYNC}) as running:
        yield running


def console(config: Path, *args: str, stdin: str | None = None) -> str:
    """Run `chatcore ARGS --config CONFIG` as the operator would; its output (it must work)."""
    result = chatcore_cli(*args, "--config", str(config), stdin=stdin)
    assert result.returncode == 0, result.stderr
    return result.stdout


async def promoted(crowd: Crowd, config: Path) -> Person:
    """A new user made a server admin by the console."""
    admin = await crowd.person()
    await anyio.to_thread.run_sync(console, config, "user", "promote", admin.user.username)
    return admin


async def login(crowd: Crowd, username: str, password: str = PASSWORD) -> httpx.Response:
    credentials = {"username": username, "password": password}
    return await crowd.http.post(f"{crowd.server.api}/auth/login", json=credentials)


# --- who may use the admin API: tests/e2e/test_e2e_authorization.py -----------------------


async def test_the_openapi_document_lists_403_for_every_admin_route(node: ServerProcess) -> None:
    async with httpx.AsyncClient() as http:
        document = expect(await http.get(node.api + "/openapi.json"), 200)
    admin_paths = {p: ops for p, ops in document["paths"].items() if "/admin/" in p}
    assert len(admin_paths) >= 8, sorted(document["paths"])
    for path, operations in admin_paths.items():
        for method, operation in operations.items():
            assert {"401", "403"} <= set(operation["responses"]), (method, path)


async def test_me_shows_the_own_admin_flag_which_the_api_never_sets(node: ServerProcess) -> None:
    async with Crowd(node) as crowd:
        plain = await crowd.person()
        me = expect(await plain.get("/me"), 200)
        assert me["is_admin"] is False
        expect(await plain.patch("/me", {"is_admin": True}), 400, "bad_request")
        assert expect(await plain.get("/me"), 200)["is_admin"] is False
        admin = await promoted(crowd, node.config_path)
        assert expect(await admin.get("/me"), 200)["is_admin"] is True
        # Nobody else sees the flag; no route promotes, not even an admin.
        assert "is_admin" not in expect(await plain.get(f"/users/{admin.id}"), 200)
        for path in (f"/admin/users/{plain.id}/promote", f"/admin/users/{plain.id}/admin"):
            assert (await admin.post(path)).status_code in (404, 405)
        assert expect(await plain.get("/me"), 200)["is_admin"] is False


async def test_an_admin_cannot_disable_demote_or_erase_themselves(node: ServerProcess) -> None:
    async with Crowd(node) as crowd:
        admin = await promoted(crowd, node.config_path)
        for method, path in (
            ("POST", f"/admin/users/{admin.id}/disable"),
            ("POST", f"/admin/users/{admin.id}/demote"),
            ("DELETE", f"/admin/users/{admin.id}"),
        ):
            expect(await admin.call(method, path), 400, "bad_request")
        assert expect(await admin.get("/me"), 200)["is_admin"] is True
        # Another admin may demote them.
        other = await promoted(crowd, node.config_path)
        assert expect(await other.post(f"/admin/users/{admin.id}/demote"), 200)["is_admin"] is False
        expect(await admin.get("/admin/users"), 403, "forbidden")


async def test_bad_input_gets_the_error_shapes(node: ServerProcess) -> None:
    async with Crowd(node) as crowd:
        admin = await promoted(crowd, node.config_path)
        user = await crowd.person()
        expect(await admin.get("/admin/users/no-such-user"), 404, "not_found")
        expect(await admin.post("/admin/users/no-such-user/disable"), 404, "not_found")
        expect(await admin.post("/admin/rooms/no-such-room/shutdown"), 404, "not_found")
        expect(await admin.call("DELETE", f"/admin/users/{user.id}?messages=all"), 400)
        expect(await admin.post(f"/admin/users/{user.id}/password", {"password": "short"}), 400)
        expect(await admin.post(f"/admin/users/{user.id}/password", {"pass": "a" * 10}), 400)
        expect(await admin.post(f"/admin/users/{user.id}/password", ["x"]), 400)
        expect(await admin.get("/admin/users", params={"limit": "many"}), 400, "bad_request")
        expect(await admin.call("DELETE", f"/admin/users/{user.id}/logins/nope"), 404)
        expect(await admin.get("/admin/audit", params={"before": "yesterday"}), 400, "bad_request")


# --- users: lists, disable, logins, password ------------------------------------------------


async def test_users_are_listed_with_their_state_and_counts(node: ServerProcess) -> None:
    async with Crowd(node) as crowd:
        admin = await promoted(crowd, node.config_path)
        ann, bob = await crowd.people(2)
        room = await ann.group("counted", [bob])
        await ann.send_rest(room["id"], "one")
        await ann.send_rest(room["id"], "two")
        found = expect(await admin.get("/admin/users", params={"q": ann.user.username}), 200)
        assert found["has_more"] is False
        [view] = found["users"]
        assert view["id"] == ann.id and view["username"] == ann.user.username
        assert view["counts"] == {"rooms": 1, "messages": 2, "logins": 1}
        assert (view["is_admin"], view["disabled"]) == (False, False)
        assert view["last_seen_ts"] >= view["created_ts"]
        page = expect(await admin.get("/admin/users", params={"limit": 1}), 200)
        assert len(page["users"]) == 1 and page["has_more"] is True
        rooms = expect(await admin.get("/admin/rooms", params={"limit": 200}), 200)
        [listed] = [r for r in rooms["rooms"] if r["id"] == room["id"]]
        assert listed["counts"] == {"members": 2, "messages": 2} and listed["name"] == "counted"


async def test_disable_closes_sessions_and_refuses_logins_until_enabled(
    node: ServerProcess,
) -> None:
    async with Crowd(node) as crowd:
        admin = await promoted(crowd, node.config_path)
        user, friend = await crowd.people(2)
        tokens = expect(await login(crowd, user.user.username), 200)  # a second login
        second = Person(
            dataclasses.replace(user.user, access_token=tokens["access_token"]),
            crowd.http,
            node.api,
        )
        sessions = [await crowd.session(user), await crowd.session(second)]
        bystander = await crowd.session(friend)

        view = expect(await admin.post(f"/admin/users/{user.id}/disable"), 200)
        assert view["disabled"] is True and view["counts"]["logins"] == 0
        for ws in sessions:
            assert await ws.wait_closed() == 4401
        await bystander.ping()  # others are untouched
        expect(await user.get("/me"), 401, "unauthorized")
        refused = await login(crowd, user.user.username)
        expect(refused, 403, "forbidden")
        assert refused.json()["error"]["message"] == (
            "This account is disabled; ask the server's admins."
        )
        expect(await login(crowd, user.user.username, "wrong password!"), 401)
        refresh = {"refresh_token": tokens["refresh_token"]}
        expect(await crowd.http.post(node.api + "/auth/refresh", json=refresh), 401)
        refused_ws = await WSClient.open(node.ws_url, None)
        crowd.sessions.append(refused_ws)
        await refused_ws.send_frame({"type": "auth", "token": tokens["access_token"]})
        assert (await refused_ws.recv("error"))["code"] == "unauthorized"
        assert await refused_ws.wait_closed() == 4401

        view = expect(await admin.post(f"/admin/users/{user.id}/enable"), 200)
        assert view["disabled"] is False
        expect(await login(crowd, user.user.username), 200)


async def test_an_admin_ends_one_login_or_all(node: ServerProcess) -> None:
    async with Crowd(node) as crowd:
        admin = await promoted(crowd, node.config_path)
        user = await crowd.person()
        first = await crowd.session(user)
        tokens = expect(await login(crowd, user.user.username), 200)
        other = await WSClient.open(node.ws_url, tokens["access_token"])
        crowd.sessions.append(other)
        logins = expect(await admin.get(f"/admin/users/{user.id}/logins"), 200)["logins"]
        assert len(logins) == 2 and all("ended_ts" not in login for login in logins)
        newest = logins[0]["id"]

        expect(await admin.call("DELETE", f"/admin/users/{user.id}/logins/{newest}"), 204)
        assert await other.wait_closed() == 4401
        await first.ping()  # the other login lives on
        logins = expect(await admin.get(f"/admin/users/{user.id}/logins"), 200)["logins"]
        assert "ended_ts" in logins[0] and "ended_ts" not in logins[1]

        expect(await admin.call("DELETE", f"/admin/users/{user.id}/logins"), 204)
        assert await first.wait_closed() == 4401
        expect(await login(crowd, user.user.username), 200)  # not disabled: may log in again


async def test_an_admin_sets_a_password(node: ServerProcess) -> None:
    async with Crowd(node) as crowd:
        admin = await promoted(crowd, node.config_path)
        user = await crowd.person()
        new = {"password": "a brand new password"}
        expect(await admin.post(f"/admin/users/{user.id}/password", new), 204)
        expect(await login(crowd, user.user.username), 401)
        expect(await login(crowd, user.user.username, new["password"]), 200)
        expect(await user.get("/me"), 200)  # their logins stay


# --- erasure and shutdown --------------------------------------------------------------------


async def test_erase_keeping_messages_leaves_a_tombstone(node: ServerProcess) -> None:
    async with Crowd(node) as crowd:
        admin = await promoted(crowd, node.config_path)
        eve, bob = await crowd.people(2)
        room = await eve.group("eve's room", [bob])
        sent = await eve.send_rest(room["id"], "something personal")
        bob_ws = await crowd.session(bob)
        eve_ws = await crowd.session(eve)

        erased = expect(await admin.call("DELETE", f"/admin/users/{eve.id}"), 200)
        assert erased == {"user_id": eve.id, "rooms_left": 1, "messages_removed": 0}
        assert await eve_ws.wait_closed() == 4401
        event = await bob_ws.recv("room")
        assert event["room"]["member_ids"] == [bob.id] and event["room"]["owner_id"] == bob.id
        log = await bob_ws.recv("room_log")
        assert (log["entry"]["action"], log["entry"]["target_id"]) == ("member.remove", eve.id)
        tomb = expect(await bob.get(f"/users/{eve.id}"), 200)
        assert tomb == {
            "id": eve.id,
            "username": "",
            "display_name": "Deleted user",
            "deleted": True,
        }
        [kept] = (await bob.history(room["id"]))["messages"]
        assert (kept["id"], kept["body"], kept["sender_id"]) == (
            sent["id"],
            "something personal",
            eve.id,
        )
        found = expect(await bob.get("/users", params={"q": eve.user.username}), 200)
        assert found["users"] == []
        expect(await login(crowd, eve.user.username), 401)
        expect(await admin.get(f"/admin/users/{eve.id}"), 404)
        expect(await admin.call("DELETE", f"/admin/users/{eve.id}"), 404)
        # The username is free again, for a new account.
        again = {"username": eve.user.username, "password": PASSWORD}
        reply = expect(await crowd.http.post(node.api + "/auth/register", json=again), 201)
        assert reply["user"]["id"] != eve.id
        entry = expect(await admin.get("/admin/audit", params={"target_id": eve.id}), 200)
        [erase] = entry["entries"]
        assert (erase["action"], erase["actor_id"]) == ("user.erase", admin.id)
        assert eve.user.username not in str(erase) and "personal" not in str(erase)


async def test_erase_removing_messages_keeps_every_seq(node: ServerProcess) -> None:
    async with Crowd(node) as crowd:
        admin = await promoted(crowd, node.config_path)
        eve, bob = await crowd.people(2)
        room = await bob.group("mixed", [eve])
        first = await eve.send_rest(room["id"], "mine 1")
        theirs = await bob.send_rest(room["id"], "bob's")
        second = await eve.send_rest(room["id"], "mine 2")
        bob_ws = await crowd.session(bob)

        url = f"/admin/users/{eve.id}?messages=remove"
        assert expect(await admin.call("DELETE", url), 200)["messages_removed"] == 2
        updated = [await bob_ws.recv("message_updated") for _ in range(2)]
        assert sorted(u["message"]["seq"] for u in updated) == [first["seq"], second["seq"]]
        assert all(u["message"]["deleted"] and u["message"]["body"] == "" for u in updated)
        history = await bob.all_messages(room["id"])  # oldest first
        assert [m["seq"] for m in history] == [1, 2, 3]
        assert [m["deleted"] for m in history] == [True, False, True]
        assert history[1]["body"] == theirs["body"]
        # A member catching up later gets the same.
        result = await bob_ws.sync({room["id"]: 0})
        assert [m["seq"] for m in result.messages(room["id"])] == [1, 2, 3]


async def test_a_shut_room_takes_no_messages_and_no_members(node: ServerProcess) -> None:
    async with Crowd(node) as crowd:
        admin = await promoted(crowd, node.config_path)
        owner, member, newcomer = await crowd.people(3)
        room = await owner.group("doomed", [member])
        await member.send_rest(room["id"], "before")
        member_ws = await crowd.session(member)

        expect(await admin.post(f"/admin/rooms/{room['id']}/shutdown"), 204)
        event = await member_ws.recv("room")
        assert event["room"]["id"] == room["id"] and event["room"]["member_ids"] == []
        entry = (await member_ws.recv("room_log"))["entry"]
        assert (entry["action"], entry["target_id"], entry["actor_id"]) == (
            "member.remove",
            member.id,
            admin.id,
        )
        for who in (owner, member):
            expect(await who.get(f"/rooms/{room['id']}"), 404, "not_found")
            payload = {"ref": new_ref(), "body": "after"}
            expect(await who.post(f"/rooms/{room['id']}/messages", payload), 404)
            add = await who.post(f"/rooms/{room['id']}/members", {"user_id": newcomer.id})
            expect(add, 404, "not_found")
        refusal = await member_ws.send(room["id"], "ws")
        assert (refusal["type"], refusal["code"]) == ("error", "not_found")
        rooms = expect(await admin.get("/admin/rooms", params={"limit": 200}), 200)["rooms"]
        [listed] = [r for r in rooms if r["id"] == room["id"]]
        assert listed["counts"] == {"members": 0, "messages": 1}  # the message stays stored
        [entry] = expect(await admin.get("/admin/audit", params={"target_id": room["id"]}), 200)[
            "entries"
        ]
        assert entry["action"] == "room.shutdown" and entry["details"]["members_removed"] == 2


async def test_the_audit_log_pages_newest_first(node: ServerProcess) -> None:
    async with Crowd(node) as crowd:
        admin = await promoted(crowd, node.config_path)
        user = await crowd.person()
        for _ in range(3):
            expect(await admin.post(f"/admin/users/{user.id}/disable"), 200)
            expect(await admin.post(f"/admin/users/{user.id}/enable"), 200)
        params: dict[str, Any] = {"target_id": user.id, "limit": 4}
        first = expect(await admin.get("/admin/audit", params=params), 200)
        assert first["has_more"] is True and len(first["entries"]) == 4
        assert [e["action"] for e in first["entries"][:2]] == ["user.enable", "user.disable"]
        rest = expect(
            await admin.get("/admin/audit", params={**params, "before": first["next"]}), 200
        )
        assert rest["has_more"] is False and len(rest["entries"]) == 2
        ids = [int(e["id"]) for e in first["entries"] + rest["entries"]]
        assert ids == sorted(ids, reverse=True)
        assert all(
            e["actor_id"] == admin.id and e["details"]["via"] == "api" for e in first["entries"]
        )


# --- the console on a running server ---------------------------------------------------------


async def test_a_console_disable_closes_the_live_session_of_a_running_node(
    node: ServerProcess,
) -> None:
    """One node with its in-memory broker: the command's own broker reaches nobody, so the node
    learns of the ended login from storage (`revocation_sync_seconds`) and closes the session."""
    async with Crowd(node) as crowd:
        user = await crowd.person()
        ws = await crowd.session(user)
        out = await anyio.to_thread.run_sync(
            console, node.config_path, "user", "disable", user.user.username
        )
        assert "disabled" in out
        assert await ws.wait_closed() == 4401
        expect(await login(crowd, user.user.username), 403, "forbidden")
        audit = await anyio.to_thread.run_sync(console, node.config_path, "audit", "--limit", "1")
        assert f"  console  user.disable  user {user.id}" in audit


# --- a cluster ---------------------------------------------------------------------------------


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ClusterProcess]:
    """Two nodes sharing a PostgreSQL schema and a Redis broker."""
    require_url("Redis", redis_url())
    with (
        postgres_storage_section() as storage,
        start_cluster(tmp_path, "redis", storage) as running,
    ):
        yield running


@pytest.mark.postgres
async def test_a_disable_on_node_a_closes_the_session_on_node_b(cluster: ClusterProcess) -> None:
    node_a, node_b = cluster.nodes
    async with Crowd(node_a) as crowd:
        admin = await promoted(crowd, node_a.config_path)
        user = await crowd.person()
        on_b = await WSClient.open(node_b.ws_url, user.token)
        crowd.sessions.append(on_b)
        expect(await admin.post(f"/admin/users/{user.id}/disable"), 200)
        assert await on_b.wait_closed() == 4401
        credentials = {"username": user.user.username, "password": PASSWORD}
        expect(await crowd.http.post(node_b.api + "/auth/login", json=credentials), 403)
        me = await crowd.http.get(node_b.api + "/me", headers=user.user.headers)
        expect(me, 401, "unauthorized")
