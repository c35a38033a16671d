"""Who may do what: the authorization matrix of the routes of room and server administration,
reports, search and retention, against real servers (on every deployment: one node, and
2-node clusters where consecutive people talk to different nodes).

Eight callers meet every route: a server admin (who is not in the room), the room's owner, a
room admin, a plain member, a non-member, a user banned from the room, a disabled user (their
token ended with their logins) and anonymous (no token). Each route has a policy saying what
each of them gets; a refusal is the protocol's error shape with its code (401 `unauthorized`,
403 `forbidden`, 404 `not_found`), and changes nothing (no audit entry, no room-log entry). A
route of the route table that is neither in the matrix nor in `OLDER_ROUTES` fails the suite:
a new route cannot be added without saying who may call it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from e2e_support import Crowd, Json, Person, console, expect

from chatcore.testing.cluster import ClusterProcess
from chatcore.testing.server import ServerProcess
from chatcore_rest.endpoints import AREAS

pytestmark = [pytest.mark.anyio, pytest.mark.e2e, pytest.mark.core_suite]

Service = ServerProcess | ClusterProcess

CALLERS = (
    "server_admin",
    "owner",
    "room_admin",
    "member",
    "outsider",
    "banned",
    "disabled",
    "anonymous",
)
OK = "ok"  # any 2xx
#: What each caller gets, by policy. Server admins have no powers inside rooms they are not in
#: (the admin API is theirs); a banned user is not in the room; an ended login is a 401.
_NOT_THEIRS = {"server_admin": 404, "outsider": 404, "banned": 404}
_NO_LOGIN = {"disabled": 401, "anonymous": 401}
POLICIES: dict[str, dict[str, int | str]] = {
    "server admin": {
        "server_admin": OK,
        **dict.fromkeys(("owner", "room_admin", "member", "outsider", "banned"), 403),
        **_NO_LOGIN,
    },
    "room owner": {"owner": OK, "room_admin": 403, "member": 403, **_NOT_THEIRS, **_NO_LOGIN},
    "room admin": {"owner": OK, "room_admin": OK, "member": 403, **_NOT_THEIRS, **_NO_LOGIN},
    "room member": {"owner": OK, "room_admin": OK, "member": OK, **_NOT_THEIRS, **_NO_LOGIN},
    "anyone logged in": {
        **dict.fromkeys(CALLERS, OK),
        **_NO_LOGIN,
    },
}
CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found"}


@dataclass
class Cast:
    """The callers, their room, and what the routes act on."""

    crowd: Crowd
    people: dict[str, Person]  # every caller but anonymous
    target: Person  # a plain member the moderators act on
    room: Json
    message: Json  # the target's message in the room

    @property
    def rid(self) -> str:
        return str(self.room["id"])

    async def call(self, caller: str, request: Request) -> httpx.Response:
        method, path, body = request
        kwargs: dict[str, Any] = {"json": body} if body is not None else {}
        if caller == "anonymous":
            # The crowd's client, with nobody's token.
            api = self.people["owner"].api
            return await self.crowd.http.request(method, api + path, **kwargs)
        return await self.people[caller].call(method, path, **kwargs)

    async def group(self) -> Json:
        """A new group room with the cast's roles: owner, room admin, member and target, and
        the banned user banned."""
        owner = self.people["owner"]
        members = [self.people["room_admin"], self.people["member"], self.target]
        room = await owner.group("matrix", members)
        admin_role = f"/rooms/{room['id']}/members/{self.people['room_admin'].id}/role"
        expect(await owner.call("PUT", admin_role, json={"role": "admin"}), 200)
        expect(await owner.call("PUT", f"/rooms/{room['id']}/bans/{self.people['banned'].id}"), 200)
        return room

    async def newcomer(self) -> Person:
        return await self.crowd.person()

    async def member_of_room(self) -> Person:
        """A new user the owner added to the room."""
        person = await self.crowd.person()
        expect(
            await self.people["owner"].post(f"/rooms/{self.rid}/members", {"user_id": person.id}),
            204,
        )
        return person

    async def report(self) -> str:
        """An open report (by the member, of a new message of the target's)."""
        message = await self.target.send_rest(self.rid, "report me")
        path = f"/rooms/{self.rid}/messages/{message['id']}/report"
        reply = expect(await self.people["member"].post(path, {"reason": "spam"}), 201)
        return str(reply["report"]["id"])

    async def newest_audit_id(self) -> str | None:
        body = expect(
            await self.people["server_admin"].get("/admin/audit", params={"limit": 1}), 200
        )
        return body["entries"][0]["id"] if body["entries"] else None

    async def newest_log_id(self) -> str | None:
        body = expect(
            await self.people["owner"].get(f"/rooms/{self.rid}/log", params={"limit": 1}), 200
        )
        return body["entries"][0]["id"] if body["entries"] else None


Request = tuple[str, str, Any]  # (method, path, JSON body or None)


@dataclass(frozen=True)
class Row:
    """One route: its policy, and how to make a request to it that only authorization can
    refuse. `fresh`: the request consumes what it acts on (a ban, an erasure), so each caller
    expected to succeed gets a request of its own."""

    policy: str
    request: Callable[[Cast], Awaitable[Request]]
    fresh: bool = False


def fixed(method: str, path: str, body: Any = None) -> Callable[[Cast], Awaitable[Request]]:
    """A request whose path names the cast's room (`{rid}`), target (`{tid}`) and target's
    message (`{mid}`)."""

    async def make(cast: Cast) -> Request:
        filled = path.format(rid=cast.rid, tid=cast.target.id, mid=cast.message["id"])
        return method, filled, body

    return make


async def _transfer(cast: Cast) -> Request:
    room = await cast.group()
    return "POST", f"/rooms/{room['id']}/owner", {"user_id": cast.target.id}


async def _ban(cast: Cast) -> Request:
    return "PUT", f"/rooms/{cast.rid}/bans/{(await cast.newcomer()).id}", {"reason": "matrix"}


async def _unban(cast: Cast) -> Request:
    banned = await cast.newcomer()
    expect(await cast.people["owner"].call("PUT", f"/rooms/{cast.rid}/bans/{banned.id}"), 200)
    return "DELETE", f"/rooms/{cast.rid}/bans/{banned.id}", None


async def _remove(cast: Cast) -> Request:
    return "DELETE", f"/rooms/{cast.rid}/members/{(await cast.member_of_room()).id}", None


async def _delete_message(cast: Cast) -> Request:
    message = await cast.target.send_rest(cast.rid, "delete me")
    return "DELETE", f"/rooms/{cast.rid}/messages/{message['id']}", None


async def _resolve(cast: Cast) -> Request:
    return "POST", f"/admin/reports/{await cast.report()}/resolve", {"note": "seen"}


def _on_newcomer(
    method: str, suffix: str, body: Any = None
) -> Callable[[Cast], Awaitable[Request]]:
    async def make(cast: Cast) -> Request:
        return method, f"/admin/users/{(await cast.newcomer()).id}{suffix}", body

    return make


async def _end_login(cast: Cast) -> Request:
    user = await cast.newcomer()
    logins = expect(await cast.people["server_admin"].get(f"/admin/users/{user.id}/logins"), 200)
    return "DELETE", f"/admin/users/{user.id}/logins/{logins['logins'][0]['id']}", None


async def _shutdown(cast: Cast) -> Request:
    return "POST", f"/admin/rooms/{(await cast.group())['id']}/shutdown", None


#: Every route of this matrix, by its view's name (the route table's endpoint names).
MATRIX: dict[str, Row] = {
    # room administration
    "update_room": Row("room admin", fixed("PATCH", "/rooms/{rid}", {"topic": "the matrix"})),
    "set_role": Row(
        "room owner", fixed("PUT", "/rooms/{rid}/members/{tid}/role", {"role": "member"})
    ),
    "transfer_ownership": Row("room owner", _transfer, fresh=True),
    "mute": Row("room admin", fixed("POST", "/rooms/{rid}/members/{tid}/mute", {"minutes": 1})),
    "unmute": Row("room admin", fixed("DELETE", "/rooms/{rid}/members/{tid}/mute")),
    "list_bans": Row("room admin", fixed("GET", "/rooms/{rid}/bans")),
    "ban": Row("room admin", _ban, fresh=True),
    "unban": Row("room admin", _unban, fresh=True),
    "get_log": Row("room member", fixed("GET", "/rooms/{rid}/log")),
    "remove_member": Row("room admin", _remove, fresh=True),
    "delete_message": Row("room admin", _delete_message, fresh=True),
    # retention
    "get_retention": Row("room member", fixed("GET", "/rooms/{rid}/retention")),
    "put_retention": Row("room admin", fixed("PUT", "/rooms/{rid}/retention", {"days": 30})),
    # search and reports
    "search_messages": Row("anyone logged in", fixed("GET", "/search/messages?q=matrix")),
    "report_message": Row(
        "room member", fixed("POST", "/rooms/{rid}/messages/{mid}/report", {"reason": "spam"})
    ),
    "list_reports": Row("server admin", fixed("GET", "/admin/reports")),
    "resolve_report": Row("server admin", _resolve, fresh=True),
    # server administration
    "admin_list_users": Row("server admin", fixed("GET", "/admin/users")),
    "admin_get_user": Row("server admin", fixed("GET", "/admin/users/{tid}")),
    "admin_erase_user": Row("server admin", _on_newcomer("DELETE", "?messages=keep"), fresh=True),
    "admin_disable_user": Row("server admin", _on_newcomer("POST", "/disable"), fresh=True),
    "admin_enable_user": Row("server admin", fixed("POST", "/admin/users/{tid}/enable")),
    "admin_demote_user": Row("server admin", fixed("POST", "/admin/users/{tid}/demote")),
    "admin_set_password": Row(
        "server admin", _on_newcomer("POST", "/password", {"password": "a new password"})
    ),
    "admin_list_logins": Row("server admin", fixed("GET", "/admin/users/{tid}/logins")),
    "admin_end_logins": Row("server admin", _on_newcomer("DELETE", "/logins"), fresh=True),
    "admin_end_login": Row("server admin", _end_login, fresh=True),
    "admin_list_rooms": Row("server admin", fixed("GET", "/admin/rooms")),
    "admin_shutdown_room": Row("server admin", _shutdown, fresh=True),
    "admin_audit": Row("server admin", fixed("GET", "/admin/audit")),
}

#: The routes from before administration existed: their callers are checked by their own
#: areas' suites (rooms, messages, contacts, media, ...), not (yet) by this matrix.
OLDER_ROUTES = {
    "get_health", "get_metrics", "get_info", "get_docs_page", "get_docs_file",
    "register", "login", "refresh", "logout", "get_me", "update_me", "get_settings",
    "patch_settings", "search_users", "get_user", "create_room", "list_rooms", "get_room",
    "add_member", "list_messages", "send_message", "edit_message", "mark_read", "invite",
    "list_invitations", "accept_invitation", "decline_invitation", "list_contacts",
    "remove_contact", "block_user", "list_blocks", "unblock_user", "register_device",
    "list_devices", "remove_device", "upload_media", "download_media", "media_thumbnail",
    "list_sticker_packs", "get_sticker_pack",
}  # fmt: skip


def test_every_route_has_its_row() -> None:
    """A route added to the table without a row here (or in OLDER_ROUTES) fails."""
    routes = {view.__name__ for area in AREAS for _, _, view in area.routes}
    assert routes - OLDER_ROUTES - set(MATRIX) == set()
    assert set(MATRIX) - routes == set(), "rows of routes that no longer exist"
    assert set(MATRIX).isdisjoint(OLDER_ROUTES)
    for row in MATRIX.values():
        assert set(POLICIES[row.policy]) == set(CALLERS)


async def make_cast(crowd: Crowd, server: Service) -> Cast:
    names = [c for c in CALLERS if c != "anonymous"]
    people = dict(zip(names, await crowd.people(len(names)), strict=True))
    target = await crowd.person()
    await console(server, "user", "promote", people["server_admin"].user.username)
    cast = Cast(crowd, people, target, room={}, message={})
    cast.room = await cast.group()
    expect(
        await people["owner"].post(
            f"/rooms/{cast.rid}/members", {"user_id": people["disabled"].id}
        ),
        204,
    )
    expect(await people["server_admin"].post(f"/admin/users/{people['disabled'].id}/disable"), 200)
    cast.message = await target.send_rest(cast.rid, "hello matrix")
    return cast


async def test_every_caller_gets_what_the_policy_says(server: Service) -> None:
    async with Crowd(server) as crowd:
        cast = await make_cast(crowd, server)
        for name, row in MATRIX.items():
            policy = POLICIES[row.policy]
            refused = [c for c in CALLERS if policy[c] != OK]
            allowed = [c for c in CALLERS if policy[c] == OK]
            request = await row.request(cast)
            audit_before, log_before = await cast.newest_audit_id(), await cast.newest_log_id()
            for caller in refused:
                status = policy[caller]
                assert isinstance(status, int)
                reply = await cast.call(caller, request)
                where = f"{name} ({request[0]} {request[1]}) by {caller}"
                assert reply.status_code == status, f"{where}: {reply.status_code} {reply.text}"
                expect(reply, status, CODES[status])
                if row.policy == "server admin" and status == 403:
                    assert reply.json()["error"]["message"] == "This needs a server admin."
            # A refusal changes nothing: no action was audited, the room's log did not move.
            assert (await cast.newest_audit_id(), await cast.newest_log_id()) == (
                audit_before,
                log_before,
            ), f"{name}: a refused call changed something"
            for caller in allowed:
                if row.fresh:
                    request = await row.request(cast)
                reply = await cast.call(caller, request)
                assert 200 <= reply.status_code < 300, (
                    f"{name} ({request[0]} {request[1]}) by {caller}: {reply.status_code} "
                    f"{reply.text}"
                )
        # Every moderator action that succeeded is in the audit log, which the server admin reads.
        audit = expect(
            await cast.people["server_admin"].get("/admin/audit", params={"limit": 200}), 200
        )
        actions = {e["action"] for e in audit["entries"] if e.get("room_id") == cast.rid}
        assert {
            "room.update",
            "room.role",
            "room.mute",
            "room.unmute",
            "room.ban",
            "room.unban",
            "room.remove_member",
            "message.delete",
            "room.retention",
        } <= actions, actions


async def test_search_shows_nobody_a_room_they_are_not_in(server: Service) -> None:
    """The one route everyone may call answers each with their own rooms only."""
    async with Crowd(server) as crowd:
        cast = await make_cast(crowd, server)
        for caller in ("owner", "room_admin", "member"):
            found = expect(
                await cast.people[caller].get("/search/messages", params={"q": "hello matrix"}), 200
            )
            assert [m["id"] for m in found["messages"]] == [cast.message["id"]], caller
        for caller in ("server_admin", "outsider", "banned"):
            found = expect(
                await cast.people[caller].get("/search/messages", params={"q": "hello matrix"}), 200
            )
            assert found["messages"] == [], caller
            named = await cast.people[caller].get(
                "/search/messages", params={"q": "hello", "room_id": cast.rid}
            )
            expect(named, 404, "not_found")
