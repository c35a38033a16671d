"""Shared helpers of the client engine's fault tests.

    async with proxied_server(tmp_path / "server") as rig:
        client = Client.for_server(rig.server_url, tmp_path / "ann", **FAST)
        async with EventLog(client) as log:
            await client.start()
            ...
            mark = await log.mark()
            await rig.freeze()                    # the network between clients and server
            await log.wait(lambda log: "offline" in log.states(mark))

A rig is a real `chatcore serve` process with a `TcpProxy` in front of each of its two ports:
the REST port (clients get `rig.server_url`) and the WebSocket port (the server's
`[websocket] public_url` names the proxy, so `/api/v1/info` sends every client through it).
A fault on the rig hits both, as a broken network would. People who only send or read over
REST (`Person`) talk to the server directly, past the proxies.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from engine_support import EventLog as BaseEventLog

from chatcore.client.app import Client
from chatcore.client.events import (
    ConnectionState,
    OutboxChanged,
    RoomChanged,
)
from chatcore.client.models import Message
from chatcore.testing.server import TIMEOUT_SCALE, ServerProcess, server_config
from chatcore.testing.tcp_proxy import TcpProxy
from chatcore.testing.users import PASSWORD, unique_username
from chatcore.testing.wsclient import new_ref

Json = dict[str, Any]

#: Client timings for tests: a dead connection is noticed within 1.5 s (a ping every 0.5 s,
#: dead after 1 s without a frame), a reconnect follows within half a second.
FAST: dict[str, float] = {
    "reconnect_min_seconds": 0.05,
    "reconnect_max_seconds": 0.5,
    "ping_interval_seconds": 0.5,
    "ping_timeout_seconds": 1.0,
}
#: Hundreds of frames through one session on purpose: the server's flood control would refuse
#: them (and the engine would wait as told, which is correct but slow).
NO_FLOOD_CONTROL = {"rate_per_second": 100_000, "rate_burst": 100_000}
#: Seconds for something that should happen at once (a reply, a reconnect after a fault).
WAIT = 10 * TIMEOUT_SCALE
#: Seconds for a long stream of sends (hundreds of messages, with faults on the way).
LONG_WAIT = 40 * TIMEOUT_SCALE


# --- the server behind its proxies -------------------------------------------------------------


@dataclass
class Rig:
    """A server process and the two proxies every client reaches it through."""

    server: ServerProcess
    rest: TcpProxy
    ws: TcpProxy

    @property
    def server_url(self) -> str:
        """The REST base URL a client is given (`[client] server_url`): through the proxy."""
        return self.rest.url("http")

    @property
    def proxies(self) -> tuple[TcpProxy, TcpProxy]:
        return self.rest, self.ws

    async def freeze(self) -> None:
        for proxy in self.proxies:
            await proxy.freeze()

    async def thaw(self) -> None:
        for proxy in self.proxies:
            await proxy.thaw()

    async def cut(self) -> None:
        await asyncio.gather(*(proxy.cut() for proxy in self.proxies))

    def refuse(self, refusing: bool = True) -> None:
        for proxy in self.proxies:
            proxy.refuse(refusing)

    async def kill(self) -> None:
        """SIGKILL the server (no goodbye to anyone); its ports and data stay for `restart`."""
        assert await asyncio.to_thread(self.server.kill) == -9

    async def restart(self) -> None:
        """Start the server (again after a kill: the same ports, the same data)."""
        await asyncio.to_thread(self.server.start)
        self._follow()

    def _follow(self) -> None:
        # A first start may move to fresh ports (see ServerProcess.start): follow the server.
        self.rest.target_port = self.server.config["server"]["port"]
        self.ws.target_port = self.server.config["websocket"]["port"]


def _config(folder: Path) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    return server_config(folder, {"websocket": NO_FLOOD_CONTROL})


@contextlib.asynccontextmanager
async def proxied_server(folder: Path) -> AsyncIterator[Rig]:
    """A fresh server in `folder`, its REST and WebSocket ports each behind a `TcpProxy`."""
    config = await asyncio.to_thread(_config, folder)
    async with (
        TcpProxy("127.0.0.1", config["server"]["port"]) as rest,
        TcpProxy("127.0.0.1", config["websocket"]["port"]) as ws,
    ):
        # `/api/v1/info` reports this as `ws_url`: every client's WebSocket goes through `ws`.
        config["websocket"]["public_url"] = ws.url("ws")
        server = await asyncio.to_thread(ServerProcess, folder, config)  # writes its config
        rig = Rig(server, rest, ws)
        await rig.restart()
        try:
            yield rig
        finally:
            await asyncio.to_thread(server.stop)


# --- people over REST, straight to the server ----------------------------------------------------


@dataclass
class Person:
    """A registered, logged-in user acting over REST, straight to the server (past the proxies)."""

    id: str
    username: str
    token: str
    http: httpx.AsyncClient

    @classmethod
    async def register(cls, http: httpx.AsyncClient, api: str) -> Person:
        """A fresh user on the server whose API (`/api/v1`) is `api`."""
        username = unique_username("rest")
        credentials = {"username": username, "password": PASSWORD}
        reply = await http.post(f"{api}/auth/register", json=credentials)
        assert reply.status_code == 201, reply.text
        reply = await http.post(f"{api}/auth/login", json=credentials)
        assert reply.status_code == 200, reply.text
        tokens = reply.json()
        http.headers["Authorization"] = f"Bearer {tokens['access_token']}"
        http.base_url = httpx.URL(api)
        return cls(tokens["user"]["id"], username, tokens["access_token"], http)

    async def group(self, name: str, member_ids: Iterable[str]) -> str:
        reply = await self.http.post(
            "/rooms", json={"kind": "group", "name": name, "member_ids": list(member_ids)}
        )
        assert reply.status_code == 201, reply.text
        return str(reply.json()["id"])

    async def send(self, room_id: str, body: str) -> Json:
        reply = await self.http.post(
            f"/rooms/{room_id}/messages", json={"ref": new_ref("rest"), "body": body}
        )
        assert reply.status_code == 201, reply.text
        message: Json = reply.json()
        return message

    async def history(self, room_id: str) -> list[Json]:
        """The room's whole history on the server, oldest first (paged with `after_seq`)."""
        messages: list[Json] = []
        while True:
            after = messages[-1]["seq"] if messages else 0
            reply = await self.http.get(
                f"/rooms/{room_id}/messages", params={"after_seq": after, "limit": 500}
            )
            assert reply.status_code == 200, reply.text
            page = reply.json()
            messages.extend(page["messages"])
            if not page["has_more"]:
                return messages


@contextlib.asynccontextmanager
async def person(server: ServerProcess) -> AsyncIterator[Person]:
    async with httpx.AsyncClient(timeout=WAIT) as http:
        yield await Person.register(http, server.api)


# --- clients and their events ------------------------------------------------------------------


async def new_account(client: Client) -> str:
    """Register a fresh user with the client's server, log in on `client`; the user's id."""
    username = unique_username("app")
    await client.register(username, PASSWORD)
    user = await client.login(username, PASSWORD)
    return user.id


class EventLog(BaseEventLog):
    """The engine tests' event log, with marks taken after the reader has caught up: a fault
    test marks the log between two bursts of events and must not count the first in the
    second."""

    async def settle(self) -> None:
        """Let the reader take every event published until now. One pass of the loop is
        enough: a publish wakes the reader's queue before this coroutine resumes, and the
        reader then empties its queue without pausing."""
        await asyncio.sleep(0)

    async def settled_mark(self) -> int:
        """A position in the log after every event published until now: `since(mark)` is
        what came after it."""
        await self.settle()
        return self.mark()

    def sent(self, mark: int = 0) -> list[OutboxChanged]:
        """`OutboxChanged(sent)` events: one per entry that left the outbox acknowledged."""
        return [
            e for e in self.since(mark) if isinstance(e, OutboxChanged) and e.entry.state == "sent"
        ]

    async def wait_state(self, state: ConnectionState, mark: int = 0) -> None:
        """Wait for a `ConnectionChanged(state)` after `mark`."""
        await self.wait(lambda log: state in log.states(mark))


async def joined(log: EventLog, room_id: str) -> None:
    """Wait until the client has stored the room (`RoomChanged` says so; a room it stored
    before the log was opened is there at once)."""

    def changed(log: EventLog) -> bool:
        return any(isinstance(e, RoomChanged) and e.room.id == room_id for e in log.events)

    if await log.client.room(room_id) is None:
        await log.wait(changed)


# --- the assertions every test makes -----------------------------------------------------------


def assert_once_in_order(history: list[Json], expected_bodies: list[str], sender_id: str) -> None:
    """The server's history (oldest first) holds each of `expected_bodies` from `sender_id`
    exactly once, in that order; every seq is there once, with no gap; no ref is stored twice."""
    seqs = [m["seq"] for m in history]
    assert seqs == list(range(1, len(seqs) + 1)), f"seqs not 1..N: {_first_break(seqs)}"
    refs = Counter((m["sender_id"], m["ref"]) for m in history)
    twice = [ref for ref, n in refs.items() if n > 1]
    assert twice == [], f"{len(twice)} refs stored twice, e.g. {twice[:3]}"
    bodies = [m["body"] for m in history if m["sender_id"] == sender_id]
    assert Counter(bodies) == Counter(expected_bodies), (
        f"missing: {sorted(set(expected_bodies) - set(bodies))[:5]}, "
        f"extra or repeated: {[b for b, n in Counter(bodies).items() if n > 1][:5]}"
    )
    assert bodies == expected_bodies, (
        f"out of order at {_first_difference(bodies, expected_bodies)}"
    )


async def assert_store_matches(client: Client, room_id: str, history: list[Json]) -> None:
    """The device store holds exactly the server's history of the room: each message once, the
    same id at the same seq."""
    stored = list(reversed(await client.store.history(room_id, limit=len(history) + 100)))
    got = [(m.seq, m.id) for m in stored]
    want = [(m["seq"], m["id"]) for m in history]
    assert got == want, f"device store differs from the server at {_first_difference(got, want)}"


def assert_received_once(
    log: EventLog, room_id: str, mark: int = 0, *, in_seq_order: bool = True
) -> list[Message]:
    """The `MessageReceived` events of the room came once per seq (and, with `in_seq_order`,
    in seq order); their messages.

    Seq order holds for a catch-up, not in general: the ack of the client's own send, or a
    live event that came before the `sync` was read, may be stored (and announced) before
    the catch-up batch of lower seqs. The store orders by seq; the events say what was new.
    """
    messages = [e.message for e in log.received(room_id, mark)]
    seqs = [m.seq for m in messages]
    repeated = [seq for seq, n in Counter(seqs).items() if n > 1]
    assert repeated == [], f"MessageReceived twice for seqs {repeated[:10]}"
    if in_seq_order:
        assert seqs == sorted(seqs), f"MessageReceived out of seq order: {_first_break(seqs)}"
    return messages


def _first_break(seqs: list[int]) -> str:
    for i in range(1, len(seqs)):
        if seqs[i] != seqs[i - 1] + 1:
            return f"index {i}: {seqs[max(0, i - 3) : i + 3]}"
    return "none"


def _first_difference(got: list[Any], want: list[Any]) -> str:
    for i, (a, b) in enumerate(zip(got, want, strict=False)):
        if a != b:
            return f"index {i}: got {a!r}, expected {b!r}"
    return f"lengths {len(got)} and {len(want)}"


@contextlib.asynccontextmanager
async def running(
    rig: Rig, folder: Path, *, connect: bool = True
) -> AsyncIterator[tuple[Client, EventLog]]:
    """A client of the rig (through its proxies) with its device store in `folder`, started
    with its event log open; closed at the end (its outbox stays in the store)."""
    client = Client.for_server(rig.server_url, folder, **FAST)
    async with EventLog(client) as log:
        await client.start(connect=connect)
        try:
            yield client, log
        finally:
            await client.close()
