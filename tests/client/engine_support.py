"""What the client engine's tests share: clients on real servers, their event logs, people.

    async with engine_client(server, tmp_path / "ann") as (ann, log):
        ann_id = await signed_up(ann)
        entry = await ann.send(room_id, "hi")
        await log.wait(lambda log: log.sent_refs() == [entry.ref])

Every client is a real `chatcore.Client` (device store and media cache on files under the
test's folder) talking to a real `chatcore serve` process. `EventLog` reads the client's
events as they come and lets a test wait on a condition over them, with a timeout that fails
the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any, Self

import httpx

from chatcore.client.app import Client
from chatcore.client.events import (
    ClientEvent,
    ConnectionChanged,
    ConnectionState,
    MessageReceived,
    OutboxChanged,
)
from chatcore.client.models import Message, OutboxState
from chatcore.testing.server import TIMEOUT_SCALE, ServerProcess
from chatcore.testing.users import PASSWORD, TestUser, register_and_login, unique_username
from chatcore.testing.wsclient import WSClient, new_ref

#: Seconds for what should happen at once (an event, a reconnect).
WAIT = 10 * TIMEOUT_SCALE
#: Client timings for tests: reconnects within half a second.
FAST: dict[str, Any] = {"reconnect_min_seconds": 0.05, "reconnect_max_seconds": 0.5}
#: Flood control out of the way, for tests that push many frames through one session.
NO_FLOOD_CONTROL = {"rate_per_second": 100_000, "rate_burst": 100_000}


def make_client(server: ServerProcess, folder: Path, **settings: Any) -> Client:
    """A client of `server` keeping its device store and media cache in `folder`."""
    return Client.for_server(server.base_url, folder, **{**FAST, **settings})


@contextlib.asynccontextmanager
async def engine_client(
    server: ServerProcess, folder: Path, *, connect: bool = True, **settings: Any
) -> AsyncIterator[tuple[Client, EventLog]]:
    """A started client with its event log open from before the start; closed at the end."""
    client = make_client(server, folder, **settings)
    async with EventLog(client) as log:
        await client.start(connect=connect)
        try:
            yield client, log
        finally:
            await client.close()


async def signed_up(client: Client, username: str | None = None) -> str:
    """Register a fresh user through `client` and log in with it; the user's id."""
    username = username or unique_username("eng")
    await client.register(username, PASSWORD)
    return (await client.login(username, PASSWORD)).id


async def ready(client: Client, timeout: float = WAIT) -> None:  # noqa: ASYNC109
    async with asyncio.timeout(timeout):
        await client.wait_for_state("ready")


async def synced(client: Client, timeout: float = WAIT) -> None:  # noqa: ASYNC109
    async with asyncio.timeout(timeout):
        await client.sync()


class EventLog:
    """Every event of a client while the log is open, in order, and waits on conditions."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.events: list[ClientEvent] = []
        self._changed = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        events = self.client.events()  # subscribed here, before anything happens
        self._reader = asyncio.create_task(self._read(events))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def ended(self, timeout: float = WAIT) -> None:  # noqa: ASYNC109
        """Wait until the client has closed and the log has read every event before that."""
        assert self._reader is not None
        async with asyncio.timeout(timeout):
            await asyncio.shield(self._reader)

    async def _read(self, events: AsyncIterator[ClientEvent]) -> None:
        async for event in events:
            async with self._changed:
                self.events.append(event)
                self._changed.notify_all()

    async def wait(
        self,
        condition: Callable[[Self], bool],
        timeout: float = WAIT,  # noqa: ASYNC109 (each wait states its bound where it waits)
    ) -> None:
        """Return once `condition(log)` holds; fail after `timeout` seconds saying what came."""
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: condition(self))
        except TimeoutError:
            tail = ", ".join(_short(e) for e in self.events[-8:])
            raise AssertionError(
                f"condition not met after {timeout}s; states {self.states()}; "
                f"{len(self.events)} events, the last: {tail}"
            ) from None

    def mark(self) -> int:
        """A position in the log: `since(mark)` is what came after it."""
        return len(self.events)

    def since(self, mark: int = 0) -> list[ClientEvent]:
        return self.events[mark:]

    def states(self, mark: int = 0) -> list[ConnectionState]:
        return [e.state for e in self.since(mark) if isinstance(e, ConnectionChanged)]

    def outbox(self, ref: str, mark: int = 0) -> list[OutboxState]:
        """The states `ref` was announced in, in order."""
        return [
            e.entry.state
            for e in self.since(mark)
            if isinstance(e, OutboxChanged) and e.entry.ref == ref
        ]

    def sent_refs(self, mark: int = 0) -> list[str]:
        """Refs announced *sent*, in order."""
        return [
            e.entry.ref
            for e in self.since(mark)
            if isinstance(e, OutboxChanged) and e.entry.state == "sent"
        ]

    def received(self, room_id: str, mark: int = 0) -> list[MessageReceived]:
        return [
            e
            for e in self.since(mark)
            if isinstance(e, MessageReceived) and e.message.room_id == room_id
        ]


def _short(event: ClientEvent) -> str:
    if isinstance(event, ConnectionChanged):
        return f"ConnectionChanged({event.state})"
    if isinstance(event, OutboxChanged):
        return f"OutboxChanged({event.entry.state})"
    return type(event).__name__


async def stored(client: Client, room_id: str) -> list[Message]:
    """The room's messages in the client's device store, oldest first."""
    return list(reversed(await client.store.history(room_id, limit=100_000)))


# --- people over REST, straight to the server ----------------------------------------------------


class Rest:
    """A registered user acting over REST (sync httpx in a thread: the loop never blocks)."""

    def __init__(self, server: ServerProcess, user: TestUser | None = None) -> None:
        self.server = server
        self._user = user

    @classmethod
    async def new(cls, server: ServerProcess) -> Rest:
        def make() -> TestUser:
            with httpx.Client(base_url=server.api, timeout=WAIT) as http:
                return register_and_login(http, prefix="rest")

        return cls(server, await asyncio.to_thread(make))

    @property
    def user(self) -> TestUser:
        assert self._user is not None
        return self._user

    @property
    def id(self) -> str:
        return self.user.id

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.server.api, timeout=WAIT) as http:
            return await http.request(method, path, headers=self.user.headers, **kwargs)

    async def group(self, name: str, member_ids: Iterable[str]) -> str:
        reply = await self.call(
            "POST", "/rooms", json={"kind": "group", "name": name, "member_ids": list(member_ids)}
        )
        assert reply.status_code == 201, reply.text
        return str(reply.json()["id"])

    async def send_many(self, room_id: str, bodies: Iterable[str]) -> list[dict[str, Any]]:
        """Send messages over one WebSocket session, pipelined (every frame written before the
        first ack is awaited); the acked Messages, in order."""
        async with WSClient.connect(self.server.ws_url, self.user.access_token) as ws:
            refs = []
            for body in bodies:
                refs.append(new_ref("many"))
                await ws.send_frame(
                    {"type": "send", "ref": refs[-1], "room_id": room_id, "body": body}
                )
            acks = [await ws.recv_reply(ref) for ref in refs]
        assert all(ack["type"] == "ack" for ack in acks), [a for a in acks if a["type"] != "ack"]
        return [ack["message"] for ack in acks]

    async def history(self, room_id: str) -> list[dict[str, Any]]:
        """The room's whole history on the server, oldest first."""
        messages: list[dict[str, Any]] = []
        while True:
            after = messages[-1]["seq"] if messages else 0
            reply = await self.call(
                "GET", f"/rooms/{room_id}/messages", params={"after_seq": after, "limit": 500}
            )
            assert reply.status_code == 200, reply.text
            page = reply.json()
            messages.extend(page["messages"])
            if not page["has_more"]:
                return messages
