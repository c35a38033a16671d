"""A small async WebSocket client for tests, speaking docs/protocol.md ("WebSocket protocol").

    async with WSClient.connect(server.ws_url, user.access_token) as ws:
        ack = await ws.send_message(room_id, "hello")           # waits for the ack
        event = await ws.recv("message", timeout=5)             # next `message`, others kept
        result = await ws.sync({room_id: 0})                    # frames up to `synced`

A reader task takes every frame off the socket as soon as it arrives (so a slow test never
makes the server's per-session buffer overflow) and appends it to `log` (every frame ever
received, in arrival order) and to a pending buffer. `recv(type)` takes the oldest pending
frame of that type and leaves the others for later calls, so a test can wait for one kind of
event while others keep arriving. Every wait has a timeout (scaled by
`CHATCORE_TEST_TIMEOUT_SCALE`): a missing event fails the test instead of hanging it. (The
`timeout=` parameters, flagged by ruff's ASYNC109, are on purpose: a test states how long an
event may take right where it waits for it.)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from chatcore.testing.server import TIMEOUT_SCALE

__all__ = ["WAIT", "Closed", "SyncResult", "WSClient", "new_ref", "seqs_of"]

#: Seconds to wait for an event that should come at once.
WAIT = 5 * TIMEOUT_SCALE

Event = dict[str, Any]
Match = Callable[[Event], bool]

_refs = itertools.count()


def new_ref(prefix: str = "r") -> str:
    """A fresh client `ref` (unique in this process and across processes)."""
    return f"{prefix}-{next(_refs)}-{uuid.uuid4().hex[:12]}"


class Closed(Exception):
    """The connection ended while a test was waiting for an event."""

    def __init__(self, code: int | None, waited_for: str) -> None:
        super().__init__(f"connection closed (code {code}) while waiting for {waited_for}")
        self.code = code


@dataclass
class SyncResult:
    """What came back for one `sync`: its `synced` event, and the frames that arrived between
    sending the `sync` and its `synced` (in arrival order; catch-up `message` and
    `message_updated` events among them were taken out of the pending buffer)."""

    synced: Event
    between: list[Event] = field(default_factory=list)

    def messages(self, room_id: str | None = None) -> list[Event]:
        """The `message` payloads (Message objects) of the window, optionally for one room."""
        return [
            e["message"]
            for e in self.between
            if e.get("type") == "message"
            and (room_id is None or e["message"].get("room_id") == room_id)
        ]

    def seqs(self, room_id: str) -> list[int]:
        return [m["seq"] for m in self.messages(room_id)]

    def updates(self) -> list[Event]:
        """The Message payloads of `message_updated` events of the window."""
        return [e["message"] for e in self.between if e.get("type") == "message_updated"]


class WSClient:
    """One authenticated session. Make it with `WSClient.connect(...)` (an async context
    manager) or `await WSClient.open(...)` and `await client.close()`."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ready: Event = {}
        #: Every frame received, in arrival order (never consumed).
        self.log: list[Event] = []
        self._pending: list[Event] = []
        self._changed = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None
        self.close_code: int | None = None
        self.closed = False
        #: A frame that broke the contract's framing (binary, not a JSON object with a type).
        self.failure: AssertionError | None = None

    # --- opening and closing ----------------------------------------------------------------

    @classmethod
    async def open(cls, ws_url: str, token: str | None, **connect_kwargs: Any) -> WSClient:
        """Connect and, when `token` is given, authenticate and wait for `ready`."""
        ws = await asyncio.wait_for(ws_connect(ws_url, **connect_kwargs), WAIT)
        client = cls(ws)
        client._reader = asyncio.create_task(client._read())
        if token is not None:
            try:
                await client.send_frame({"type": "auth", "token": token})
                first = await client.recv(timeout=WAIT)
                if first.get("type") != "ready":
                    raise AssertionError(f"expected ready after auth, got {first}")
                client.ready = first
            except BaseException:
                await client.close()
                raise
        return client

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls, ws_url: str, token: str | None, **connect_kwargs: Any
    ) -> AsyncIterator[WSClient]:
        client = await cls.open(ws_url, token, **connect_kwargs)
        try:
            yield client
        finally:
            await client.close()

    async def close(self) -> None:
        """Close the connection (normal closure) and stop the reader."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), WAIT)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
            self._reader = None

    async def abort(self) -> None:
        """Drop the TCP connection without a closing handshake (a client that vanished)."""
        self.ws.transport.abort()
        await self.close()

    @property
    def user_id(self) -> str:
        return str(self.ready["user"]["id"])

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                if isinstance(raw, bytes):
                    raise AssertionError(f"the server sent a binary frame: {raw[:80]!r}")
                event = json.loads(raw)
                if not isinstance(event, dict) or not isinstance(event.get("type"), str):
                    raise AssertionError(f"a server frame is not an object with a type: {raw}")
                async with self._changed:
                    self.log.append(event)
                    self._pending.append(event)
                    self._changed.notify_all()
        except ConnectionClosed:
            pass
        except (AssertionError, ValueError) as exc:
            self.failure = AssertionError(f"bad frame from the server: {exc}")
        finally:
            self.close_code = self.ws.close_code
            self.closed = True
            # Wake the waiters so they see `closed`. When `close()` cancelled this task, taking
            # the lock may be cancelled too; then `close()` is the only waiter and needs nothing.
            with contextlib.suppress(asyncio.CancelledError):
                async with self._changed:
                    self._changed.notify_all()

    # --- sending ------------------------------------------------------------------------------

    async def send_frame(self, frame: Mapping[str, Any] | str | bytes) -> None:
        """Send one frame: a dict is JSON-encoded, a str/bytes is sent as is (bad input tests)."""
        data = frame if isinstance(frame, str | bytes) else json.dumps(frame)
        await self.ws.send(data)

    # --- receiving ----------------------------------------------------------------------------

    def _take(self, type_: str | None, match: Match | None) -> Event | None:
        for index, event in enumerate(self._pending):
            if (type_ is None or event.get("type") == type_) and (match is None or match(event)):
                return self._pending.pop(index)
        return None

    async def recv(
        self,
        type: str | None = None,
        *,
        timeout: float = WAIT,  # noqa: ASYNC109
        match: Match | None = None,
    ) -> Event:
        """The oldest pending frame of `type` (any type when None) for which `match` holds;
        waits up to `timeout` seconds for it. Other frames stay pending."""
        waited_for = f"a {type or 'any'} frame" + (" (matching)" if match else "")
        try:
            async with asyncio.timeout(timeout):
                async with self._changed:
                    while True:
                        event = self._take(type, match)
                        if event is not None:
                            return event
                        if self.failure is not None:
                            raise self.failure
                        if self.closed:
                            raise Closed(self.close_code, waited_for)
                        await self._changed.wait()
        except TimeoutError:
            pending = [e.get("type") for e in self._pending][-20:]
            raise AssertionError(
                f"no {waited_for} within {timeout:.1f}s; pending types: {pending}"
            ) from None

    async def recv_reply(self, ref: str, *, timeout: float = WAIT) -> Event:  # noqa: ASYNC109
        """The reply to the frame with `ref`: its ack, pong, synced or error."""
        types = {"ack", "error", "pong", "synced"}
        return await self.recv(
            timeout=timeout, match=lambda e: e.get("type") in types and e.get("ref") == ref
        )

    def pending(self, type: str | None = None) -> list[Event]:
        """The pending frames (of `type`), without consuming them."""
        return [e for e in self._pending if type is None or e.get("type") == type]

    def drain(self, type: str | None = None) -> list[Event]:
        """Take and return every pending frame (of `type`)."""
        taken = [e for e in self._pending if type is None or e.get("type") == type]
        self._pending = [e for e in self._pending if not (type is None or e.get("type") == type)]
        return taken

    async def wait_closed(self, timeout: float = WAIT) -> int | None:  # noqa: ASYNC109
        """Wait until the server closes the connection; its close code."""
        async with asyncio.timeout(timeout):
            async with self._changed:
                while not self.closed:
                    await self._changed.wait()
        return self.close_code

    # --- protocol helpers ---------------------------------------------------------------------

    async def ping(self, *, timeout: float = WAIT) -> None:  # noqa: ASYNC109
        """A barrier: every event the server queued for this session before it handled the
        ping has arrived once this returns."""
        ref = new_ref("ping")
        await self.send_frame({"type": "ping", "ref": ref})
        reply = await self.recv_reply(ref, timeout=timeout)
        assert reply == {"type": "pong", "ref": ref}, reply

    async def send(
        self,
        room_id: str,
        body: str | None = "",
        *,
        ref: str | None = None,
        timeout: float = WAIT,  # noqa: ASYNC109
        **fields: Any,
    ) -> Event:
        """Send a message frame and return the reply for its ref (`ack` or `error`)."""
        ref = ref or new_ref("m")
        frame: dict[str, Any] = {"type": "send", "ref": ref, "room_id": room_id, **fields}
        if body is not None:
            frame["body"] = body
        await self.send_frame(frame)
        return await self.recv_reply(ref, timeout=timeout)

    async def send_message(
        self, room_id: str, body: str = "", *, ref: str | None = None, **fields: Any
    ) -> Event:
        """Send a message and return the Message of its ack; fail on any other reply."""
        reply = await self.send(room_id, body, ref=ref, **fields)
        assert reply.get("type") == "ack", f"expected an ack, got {reply}"
        message = reply["message"]
        assert isinstance(message, dict), reply
        return message

    async def messages_until(
        self,
        room_id: str,
        seq: int,
        *,
        timeout: float = WAIT,  # noqa: ASYNC109
    ) -> list[Event]:
        """Take `message` events of `room_id` (their Message payloads, in arrival order) until
        one with seq >= `seq` has arrived."""
        taken: list[Event] = []
        async with asyncio.timeout(timeout):
            while not taken or taken[-1]["seq"] < seq:
                event = await self.recv(
                    "message",
                    timeout=timeout,
                    match=lambda e: e["message"].get("room_id") == room_id,
                )
                taken.append(event["message"])
        return taken

    async def sync(
        self,
        rooms: Mapping[str, int],
        *,
        since_ts: int | None = None,
        ref: str | None = None,
        timeout: float = WAIT,  # noqa: ASYNC109
    ) -> SyncResult:
        """Send a `sync` and collect the frames up to its `synced`.

        Catch-up `message`/`message_updated` events that arrived in that window are consumed
        from the pending buffer (they are in the result); other frames stay pending.
        """
        ref = ref or new_ref("sync")
        frame: dict[str, Any] = {"type": "sync", "ref": ref, "rooms": dict(rooms)}
        if since_ts is not None:
            frame["since_ts"] = since_ts
        start = len(self.log)
        await self.send_frame(frame)
        reply = await self.recv_reply(ref, timeout=timeout)
        assert reply.get("type") == "synced", f"expected synced, got {reply}"
        end = next(i for i in range(start, len(self.log)) if self.log[i] is reply)
        between = self.log[start:end]
        caught = {id(e) for e in between if e.get("type") in {"message", "message_updated"}}
        self._pending = [e for e in self._pending if id(e) not in caught]
        return SyncResult(synced=reply, between=between)

    async def sync_all(
        self, rooms: Mapping[str, int], *, since_ts: int | None = None, rounds: int = 50
    ) -> list[SyncResult]:
        """Sync again from the `synced` values while any room is in `has_more`."""
        results = [await self.sync(rooms, since_ts=since_ts)]
        known = dict(rooms)
        while results[-1].synced.get("has_more"):
            assert len(results) < rounds, "has_more never cleared"
            known.update(results[-1].synced["rooms"])
            results.append(await self.sync(known, since_ts=since_ts))
        return results


def seqs_of(messages: Iterable[Event]) -> list[int]:
    """The seqs of Message objects, in the given order."""
    return [int(m["seq"]) for m in messages]
