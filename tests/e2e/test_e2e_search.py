"""Message search over REST (docs/protocol.md "Search"), black-box against a real server
process: only the caller's rooms, words not syntax, edits and deletes followed, paging."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from e2e_support import Crowd, Json, Person, console, expect

from chatcore.testing.server import ServerProcess

pytestmark = [pytest.mark.anyio, pytest.mark.e2e, pytest.mark.core_suite]


async def search(person: Person, q: str, status: int = 200, **params: object) -> Json:
    body: Json = expect(await person.get("/search/messages", params={"q": q, **params}), status)
    if status == 200:
        assert set(body) >= {"messages", "has_more"}, body
        assert ("next" in body) == body["has_more"], body
    return body


def ids(body: Json) -> list[str]:
    return [m["id"] for m in body["messages"]]


async def test_search_finds_messages_of_the_callers_rooms_only(server: ServerProcess) -> None:
    """Every word must match (the last as a prefix), case aside; another room's messages,
    however well they match, are never found; a named room must be the caller's."""
    async with Crowd(server) as crowd:
        alice, bob, carol = await crowd.people(3)
        team = await alice.group("team", [bob])
        private = await carol.group("private", [])
        older = await alice.send_rest(team["id"], "Release planning for Thursday")
        newer = await bob.send_rest(team["id"], "the RELEASE notes are ready")
        await bob.send_rest(team["id"], "lunch?")
        await carol.send_rest(private["id"], "release secrets")

        found = await search(bob, "release")
        assert ids(found) == [newer["id"], older["id"]]  # newest first
        assert found["messages"][0] == newer  # the Message as history shows it
        assert ids(await search(alice, "plan thurs")) == []  # "plan" is not a word there
        assert ids(await search(alice, "planning thurs")) == [older["id"]]
        assert ids(await search(carol, "release")) != []
        assert all(
            m["room_id"] == private["id"] for m in (await search(carol, "release"))["messages"]
        )
        assert ids(await search(alice, "secrets")) == []
        assert ids(await search(alice, "release", room_id=team["id"])) == ids(found)
        await search(alice, "release", 404, room_id=private["id"])
        await search(alice, "release", 404, room_id="no-such-room")


async def test_edits_and_deletes_are_followed(server: ServerProcess) -> None:
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.direct(bob)
        message = await alice.send_rest(room["id"], "meet at the old station")
        base = f"/rooms/{room['id']}/messages/{message['id']}"
        expect(await alice.patch(base, {"body": "meet at the new harbour"}), 200)
        assert ids(await search(bob, "station")) == []
        (edited,) = (await search(bob, "harbour"))["messages"]
        assert edited["body"] == "meet at the new harbour" and "edited_ts" in edited
        expect(await alice.delete(base), 204)
        assert ids(await search(bob, "harbour")) == []
        assert ids(await search(bob, "meet")) == []


async def test_pages_follow_next_without_repeats(server: ServerProcess) -> None:
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.group("paging", [bob])
        sent = [await alice.send_rest(room["id"], f"needle {i}") for i in range(7)]
        seen: list[str] = []
        params: dict[str, Any] = {"limit": 3}
        pages = 0
        while True:
            body = await search(bob, "needle", **params)
            pages += 1
            seen += ids(body)
            if not body["has_more"]:
                break
            params["before"] = body["next"]
        assert pages == 3
        assert seen == [m["id"] for m in reversed(sent)]
        await search(bob, "needle", 400, before="not a cursor")


async def test_bad_and_hostile_queries_get_results_or_400_never_500(server: ServerProcess) -> None:
    """A query is words: the syntax of SQLite's FTS5 and of PostgreSQL's tsquery is text like
    any other. A query without a word, or over 500 characters, is a 400."""
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.direct(bob)
        hello = await alice.send_rest(room["id"], "hello world")
        for q in ('hello"', "hello*", "hello:*", "'hello'", "(hello", "hello & !wor"):
            assert ids(await search(bob, q)) == [hello["id"]], q
        for q in ("hello AND world NOT", "body:hello", "wor hello", "NEAR(hello"):
            assert ids(await search(bob, q)) == [], q
        for q in ("", "   ", '"', "*", ":", "()", "'", "\\", "x" * 501, "y " * 5_000):
            await search(bob, q, 400)
        await search(bob, "hello", 400, limit="many")
        expect(await bob.get("/search/messages"), 400, "bad_request")  # no q at all
        results = await asyncio.gather(
            *(bob.get("/search/messages", params={"q": q}) for q in ("\x00", "a\u0000b", "😀"))
        )
        for reply in results:
            assert reply.status_code in (200, 400), reply.text


async def test_who_finds_what(server: ServerProcess) -> None:
    """Search against every role: the owner, a room admin and a member find the room's
    messages; an outsider and a banned user find nothing of it (404 when they name it), and
    neither does a server admin who is not a member; a disabled user's token or none is 401."""
    async with Crowd(server) as crowd:
        owner, room_admin, member, outsider, banned, disabled, admin = await crowd.people(7)
        await console(server, "user", "promote", admin.user.username)
        room = await owner.group("roles", [room_admin, member, banned, disabled])
        role = f"/rooms/{room['id']}/members/{room_admin.id}/role"
        expect(await owner.call("PUT", role, json={"role": "admin"}), 200)
        secret = await member.send_rest(room["id"], "the quarterly numbers")
        expect(await room_admin.call("PUT", f"/rooms/{room['id']}/bans/{banned.id}"), 200)
        expect(await admin.post(f"/admin/users/{disabled.id}/disable"), 200)

        for who in (owner, room_admin, member):
            assert ids(await search(who, "quarterly", room_id=room["id"])) == [secret["id"]]
            assert secret["id"] in ids(await search(who, "quarterly numbers"))
        for who in (outsider, banned, admin):
            assert ids(await search(who, "quarterly")) == []
            await search(who, "quarterly", 404, room_id=room["id"])
        expect(await disabled.get("/search/messages", params={"q": "quarterly"}), 401)
        reply = await crowd.http.get(f"{server.api}/search/messages", params={"q": "quarterly"})
        expect(reply, 401, "unauthorized")


async def test_search_is_listed_in_features(server: ServerProcess) -> None:
    async with Crowd(server) as crowd:
        info = expect(await crowd.http.get(f"{server.api}/info"), 200)
        assert "search" in info["features"] and "reports" in info["features"]
