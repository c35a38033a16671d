"""Reports of abuse over REST (docs/protocol.md "Reports"), black-box against a real server
process: members report, server admins list and resolve, everyone else is refused."""

from __future__ import annotations

import pytest
from e2e_support import Crowd, Json, Person, console, expect

from chatcore.testing.server import ServerProcess

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

REPORT_FIELDS = {"id", "room_id", "message_id", "reporter_id", "reason", "ts", "message", "status"}


async def admin_of(server: ServerProcess, crowd: Crowd) -> Person:
    """A new user made a server admin by the console (the API cannot make one)."""
    admin = await crowd.person()
    await console(server, "user", "promote", admin.user.username)
    return admin


def report_path(room: Json, message: Json) -> str:
    return f"/rooms/{room['id']}/messages/{message['id']}/report"


async def report(person: Person, room: Json, message: Json, reason: str = "spam") -> Json:
    body: Json = expect(await person.post(report_path(room, message), {"reason": reason}), 201)
    assert set(body) == {"report"}, body
    return body["report"]


async def test_a_report_keeps_the_message_as_reported_and_is_resolved_once(
    server: ServerProcess,
) -> None:
    async with Crowd(server) as crowd:
        alice, bob, carol = await crowd.people(3)
        admin = await admin_of(server, crowd)
        room = await alice.group("team", [bob, carol])
        rude = await alice.send_rest(room["id"], "something rude")

        mine = await report(bob, room, rude, "insults")
        assert set(mine) >= REPORT_FIELDS and mine["status"] == "open"
        assert (mine["reporter_id"], mine["reason"], mine["message"]) == (bob.id, "insults", rude)
        # A repeat while it is open answers the same report, unchanged.
        again = expect(await bob.post(report_path(room, rude), {"reason": "again"}), 200)
        assert again == {"report": mine}
        theirs = await report(carol, room, rude)

        base = f"/rooms/{room['id']}/messages/{rude['id']}"
        expect(await alice.patch(base, {"body": "something nice"}), 200)
        listed = expect(await admin.get("/admin/reports", params={"status": "open"}), 200)
        assert [r["id"] for r in listed["reports"]] == [theirs["id"], mine["id"]]
        assert listed["has_more"] is False and "next" not in listed
        assert all(r["message"]["body"] == "something rude" for r in listed["reports"])

        ws = await crowd.session(bob)
        resolved = expect(
            await admin.post(
                f"/admin/reports/{mine['id']}/resolve", {"note": "warned", "delete_message": True}
            ),
            200,
        )["report"]
        assert resolved["status"] == "resolved" and resolved["note"] == "warned"
        assert resolved["resolved_by"] == admin.id and isinstance(resolved["resolved_ts"], int)
        assert resolved["message"]["body"] == "something rude"
        event = await ws.recv("message_updated", match=lambda e: e["message"]["id"] == rude["id"])
        assert event["message"]["deleted"] is True
        expect(await admin.post(f"/admin/reports/{mine['id']}/resolve", {}), 409, "conflict")
        expect(await admin.post("/admin/reports/nope/resolve", {}), 404, "not_found")

        resolved_list = expect(await admin.get("/admin/reports?status=resolved"), 200)
        assert [r["id"] for r in resolved_list["reports"]] == [mine["id"]]
        # The other report stays open; the deleted message can no longer be reported.
        expect(await admin.post(f"/admin/reports/{theirs['id']}/resolve", {}), 200)
        expect(await carol.post(report_path(room, rude), {"reason": "x"}), 409, "conflict")

        audit = expect(await admin.get("/admin/audit"), 200)
        actions = [(e["action"], e["target_id"]) for e in audit["entries"]]
        assert ("report.resolve", mine["id"]) in actions
        assert ("message.delete", rude["id"]) in actions


async def test_admins_page_through_reports(server: ServerProcess) -> None:
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        admin = await admin_of(server, crowd)
        room = await alice.direct(bob)
        made = [
            await report(bob, room, await alice.send_rest(room["id"], f"spam {i}"))
            for i in range(5)
        ]
        seen: list[str] = []
        params: dict[str, object] = {"limit": 2}
        while True:
            page = expect(await admin.get("/admin/reports", params=params), 200)
            seen += [r["id"] for r in page["reports"]]
            if not page["has_more"]:
                break
            params["before"] = page["next"]
        newest = [r["id"] for r in reversed(made)]
        assert seen[: len(newest)] == newest  # other tests' reports are older
        for bad in ({"status": "closed"}, {"before": "x"}, {"limit": "ten"}):
            expect(await admin.get("/admin/reports", params=bad), 400, "bad_request")


async def test_bad_reports_are_refused_with_the_contracts_errors(server: ServerProcess) -> None:
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        admin = await admin_of(server, crowd)
        room = await alice.direct(bob)
        message = await alice.send_rest(room["id"], "hello")
        path = report_path(room, message)
        for body in ({}, {"reason": ""}, {"reason": "   "}, {"reason": "x" * 1001}, {"reason": 5}):
            expect(await bob.post(path, body), 400, "bad_request")
        expect(await bob.post(path, ["reason"]), 400, "bad_request")
        expect(await alice.post(path, {"reason": "me"}), 400, "bad_request")  # one's own
        missing = f"/rooms/{room['id']}/messages/no-such-message/report"
        expect(await bob.post(missing, {"reason": "x"}), 404, "not_found")
        expect(await bob.post(report_path(room, message), {"reason": "x" * 1000}), 201)
        open_ = expect(await admin.get("/admin/reports?status=open&limit=1"), 200)["reports"][0]
        resolve = f"/admin/reports/{open_['id']}/resolve"
        for body in ({"note": 5}, {"note": "n" * 1001}, {"delete_message": "yes"}):
            expect(await admin.post(resolve, body), 400, "bad_request")


async def test_who_may_report_and_who_may_administer_reports(server: ServerProcess) -> None:
    """The route of members, and the two routes of server admins, against every role: the
    owner, a room admin and a member report; an outsider, a banned user and a server admin who
    is not a member get 404; only a server admin lists and resolves (403 for everyone else);
    a disabled user's token or none gets 401."""
    async with Crowd(server) as crowd:
        owner, room_admin, member, outsider, banned, disabled = await crowd.people(6)
        admin = await admin_of(server, crowd)
        room = await owner.group("matrix", [room_admin, member, banned, disabled])
        role = f"/rooms/{room['id']}/members/{room_admin.id}/role"
        expect(await owner.call("PUT", role, json={"role": "admin"}), 200)
        by_owner = await owner.send_rest(room["id"], "from the owner")
        by_member = await member.send_rest(room["id"], "from a member")
        expect(await room_admin.call("PUT", f"/rooms/{room['id']}/bans/{banned.id}"), 200)
        expect(await admin.post(f"/admin/users/{disabled.id}/disable"), 200)

        created = await report(owner, room, by_member)
        await report(room_admin, room, by_member)
        await report(member, room, by_owner)
        for who in (outsider, banned, admin):
            expect(await who.post(report_path(room, by_member), {"reason": "x"}), 404, "not_found")
        expect(await disabled.post(report_path(room, by_owner), {"reason": "x"}), 401)
        anonymous = await crowd.http.post(
            server.api + report_path(room, by_owner), json={"reason": "x"}
        )
        expect(anonymous, 401, "unauthorized")

        resolve = f"/admin/reports/{created['id']}/resolve"
        for who in (owner, room_admin, member, outsider, banned):
            expect(await who.get("/admin/reports"), 403, "forbidden")
            expect(await who.post(resolve, {}), 403, "forbidden")
        expect(await disabled.get("/admin/reports"), 401)
        expect(await crowd.http.get(server.api + "/admin/reports"), 401, "unauthorized")
        expect(await crowd.http.post(server.api + resolve, json={}), 401, "unauthorized")
        expect(await admin.get("/admin/reports"), 200)
        expect(await admin.post(resolve, {}), 200)


async def test_reports_routes_are_in_the_openapi_document(server: ServerProcess) -> None:
    async with Crowd(server) as crowd:
        document = expect(await crowd.http.get(server.api + "/openapi.json"), 200)
        paths = document["paths"]
        report_route = paths["/api/v1/rooms/{room_id}/messages/{message_id}/report"]["post"]
        assert {"200", "201", "400", "401", "404"} <= set(report_route["responses"])
        for path, method in (
            ("/api/v1/admin/reports", "get"),
            ("/api/v1/admin/reports/{report_id}/resolve", "post"),
        ):
            assert {"200", "401", "403"} <= set(paths[path][method]["responses"]), path
        assert {"200", "400", "401", "404"} <= set(
            paths["/api/v1/search/messages"]["get"]["responses"]
        )
