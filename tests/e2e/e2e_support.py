"""Shared helpers of the end-to-end suite: people with a REST client, and their sessions.

    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.group("team", [bob])
        ws = await crowd.session(bob)
        message = await alice.send_rest(room["id"], "hi")

Everything a Crowd opens (the HTTP client, every WebSocket session) is closed when it ends.
Only what docs/protocol.md says is used: these tests are black-box.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cli_support import chatcore_cli

from chatcore.testing.cluster import ClusterProcess
from chatcore.testing.server import TIMEOUT_SCALE, ServerProcess
from chatcore.testing.services import postgres_storage_section as postgres_storage_section
from chatcore.testing.users import PASSWORD, TestUser, unique_username
from chatcore.testing.wsclient import WSClient, new_ref

Json = dict[str, Any]

#: Flood control raised for tests that push hundreds of frames through one session on
#: purpose (the crash test, a 500-message catch-up); every other test runs with the defaults.
NO_FLOOD_CONTROL = {"rate_per_second": 100_000, "rate_burst": 100_000}
HTTP_TIMEOUT = 10 * TIMEOUT_SCALE
#: Idle connections are dropped well before the server's keep-alive timeout (Hypercorn's 5 s,
#: the same as httpx's default expiry): reusing one the server is closing at that moment fails
#: the request with a ReadError that no server fault caused.
HTTP_LIMITS = httpx.Limits(keepalive_expiry=2.0)


def error_code(reply: httpx.Response) -> str | None:
    """The contract's error code of a REST reply (None when the body is not the error shape)."""
    try:
        body = reply.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None
    assert isinstance(error.get("message"), str) and error["message"], body
    assert "Traceback" not in error["message"], body
    return error.get("code")


def expect(reply: httpx.Response, status: int, code: str | None = None) -> Any:
    """Assert the status (and for errors the contract's code); the JSON body, if any."""
    request = reply.request
    sent = request.content.decode(errors="replace")[:300]
    where = f"{request.method} {request.url.path}?{request.url.query.decode()} body={sent}"
    assert reply.status_code == status, (
        f"{where}: expected {status}, got {reply.status_code}: {reply.text[:500]}"
    )
    if code is not None:
        assert error_code(reply) == code, f"{where}: expected code {code}, got {reply.text}"
    if reply.status_code == 204 or not reply.content:
        return None
    return reply.json()


@dataclass
class Person:
    """A registered, logged-in user and a REST client that acts for them."""

    user: TestUser
    http: httpx.AsyncClient
    api: str

    @property
    def id(self) -> str:
        return self.user.id

    @property
    def token(self) -> str:
        return self.user.access_token

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.http.request(method, self.api + path, headers=self.user.headers, **kwargs)

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.call("GET", path, **kwargs)

    async def post(self, path: str, json: Any = None) -> httpx.Response:
        return await self.call("POST", path, json=json)

    async def patch(self, path: str, json: Any = None) -> httpx.Response:
        return await self.call("PATCH", path, json=json)

    async def delete(self, path: str) -> httpx.Response:
        return await self.call("DELETE", path)

    # --- rooms --------------------------------------------------------------------------------

    async def direct(self, other: Person) -> Json:
        """The direct room with `other` (created or existing)."""
        reply = await self.post("/rooms", {"kind": "direct", "user_id": other.id})
        assert reply.status_code in (200, 201), reply.text
        room: Json = reply.json()
        return room

    async def group(self, name: str, members: Iterable[Person]) -> Json:
        reply = await self.post(
            "/rooms", {"kind": "group", "name": name, "member_ids": [m.id for m in members]}
        )
        room: Json = expect(reply, 201)
        return room

    async def room(self, room_id: str) -> Json:
        room: Json = expect(await self.get(f"/rooms/{room_id}"), 200)
        return room

    async def rooms(self) -> list[Json]:
        body = expect(await self.get("/rooms"), 200)
        assert set(body) >= {"rooms"}, body
        rooms: list[Json] = body["rooms"]
        return rooms

    # --- messages -----------------------------------------------------------------------------

    async def send_rest(
        self, room_id: str, body: str = "", *, ref: str | None = None, status: int = 201
    ) -> Json:
        """POST a message and return the Message (asserting the status)."""
        payload = {"ref": ref or new_ref("rest"), "body": body}
        message: Json = expect(await self.post(f"/rooms/{room_id}/messages", payload), status)
        return message

    async def history(self, room_id: str, **params: Any) -> Json:
        body: Json = expect(await self.get(f"/rooms/{room_id}/messages", params=params), 200)
        assert set(body) >= {"messages", "has_more"}, body
        return body

    async def all_messages(self, room_id: str, page: int = 500) -> list[Json]:
        """The whole history, oldest first, paged with after_seq."""
        messages: list[Json] = []
        while True:
            body = await self.history(
                room_id, after_seq=messages[-1]["seq"] if messages else 0, limit=page
            )
            messages.extend(body["messages"])
            if not body["has_more"]:
                return messages

    async def read(self, room_id: str, seq: int) -> None:
        expect(await self.post(f"/rooms/{room_id}/read", {"seq": seq}), 204)

    async def unread(self, room_id: str) -> int:
        return int((await self.room(room_id))["unread"])


async def befriend(a: Person, b: Person) -> None:
    """Make `a` and `b` contacts: `a` invites, `b` accepts."""
    invitation = expect(await a.post("/contacts/invitations", {"user_id": b.id}), 201)
    expect(await b.post(f"/contacts/invitations/{invitation['id']}/accept"), 200)


class Crowd:
    """People on one server, and every session they open; all closed at the end."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.http = httpx.AsyncClient(timeout=HTTP_TIMEOUT, limits=HTTP_LIMITS)
        self.sessions: list[WSClient] = []

    async def __aenter__(self) -> Crowd:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(*(s.close() for s in self.sessions), return_exceptions=True)
        await self.http.aclose()

    async def person(self) -> Person:
        """Register and log in a fresh user (as `chatcore.testing.users.new_user` does, on the
        crowd's own async client: a new sync client per call costs more than the server)."""
        api, username = self.server.api, unique_username()
        credentials = {"username": username, "password": PASSWORD}
        expect(await self.http.post(f"{api}/auth/register", json=credentials), 201)
        tokens = expect(await self.http.post(f"{api}/auth/login", json=credentials), 200)
        user = TestUser(
            username, PASSWORD, tokens["user"], tokens["access_token"], tokens["refresh_token"]
        )
        return Person(user, self.http, api)

    async def people(self, count: int) -> list[Person]:
        return list(await asyncio.gather(*(self.person() for _ in range(count))))

    async def session(self, person: Person) -> WSClient:
        """A new authenticated session of `person` (closed with the crowd)."""
        client = await WSClient.open(self.server.ws_url, person.token)
        self.sessions.append(client)
        return client

    async def sessions_of(self, *people: Person) -> list[WSClient]:
        return list(await asyncio.gather(*(self.session(p) for p in people)))


def ready_seqs(ws: WSClient) -> dict[str, int]:
    """`{room_id: last_seq}` from a session's `ready` event."""
    return {r["room_id"]: r["last_seq"] for r in ws.ready["rooms"]}


def first_difference(seqs: list[int], expected: list[int]) -> str:
    """Where a list of seqs first departs from the expected one (for assertion messages)."""
    for index, (got, want) in enumerate(zip(seqs, expected, strict=False)):
        if got != want:
            around = seqs[max(0, index - 3) : index + 4]
            return f"at index {index}: got seq {got}, expected {want} (around: {around})"
    return f"got {len(seqs)} seqs, expected {len(expected)}"


def config_of(server: ServerProcess | ClusterProcess) -> Path:
    """The config file of the server (of a cluster's first node: they share the storage)."""
    node = server.nodes[0] if isinstance(server, ClusterProcess) else server
    return node.config_path


async def console(server: ServerProcess | ClusterProcess, *args: str) -> str:
    """A `chatcore` console command on the server's config (as its operator runs one), off the
    event loop; it must succeed. What it printed."""
    done = await asyncio.to_thread(chatcore_cli, *args, "--config", str(config_of(server)))
    assert done.returncode == 0, done.stderr
    return done.stdout
