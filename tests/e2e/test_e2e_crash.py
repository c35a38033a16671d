"""The crash test (docs/protocol.md "Guarantees", WebSocket items 2 and 4): a node is killed with
SIGKILL while a client has a window of sends in flight, and restarted on the same ports and
data folder. A client that resends every ref it saw no ack for and syncs from its last seen
seqs must end with every message exactly once, in seq order; no acknowledged message may be
lost."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from e2e_support import NO_FLOOD_CONTROL, Crowd, Json, Person, expect, first_difference

from chatcore.testing.server import ServerProcess
from chatcore.testing.wsclient import WAIT, Closed, WSClient, new_ref

pytestmark = [pytest.mark.anyio, pytest.mark.e2e, pytest.mark.core_suite, pytest.mark.crash]

WINDOW = 20  # sends in flight at once
ACKS_BEFORE_KILL = 300


@dataclass
class Outbox:
    """What a careful client remembers: every ref it sent (with its body) and every ack."""

    sent: dict[str, str] = field(default_factory=dict)
    acked: dict[str, Json] = field(default_factory=dict)
    errors: list[Json] = field(default_factory=list)

    def unacked(self) -> dict[str, str]:
        return {ref: body for ref, body in self.sent.items() if ref not in self.acked}


async def pump_ws(ws: WSClient, room_id: str, outbox: Outbox, enough: asyncio.Event) -> None:
    """Keep WINDOW unacknowledged sends in flight on `ws` until the connection dies; set
    `enough` after ACKS_BEFORE_KILL acks."""
    window = asyncio.Semaphore(WINDOW)

    async def send_forever() -> None:
        while True:
            await window.acquire()
            ref = new_ref("crash")
            body = f"body of {ref}"
            outbox.sent[ref] = body  # remembered before it leaves: it may never be acked
            await ws.send_frame({"type": "send", "ref": ref, "room_id": room_id, "body": body})

    async def read_acks() -> None:
        while True:
            reply = await ws.recv(
                timeout=4 * WAIT,
                match=lambda e: e["type"] in ("ack", "error") and e.get("ref") in outbox.sent,
            )
            if reply["type"] == "ack":
                outbox.acked[reply["ref"]] = reply["message"]
            else:
                outbox.errors.append(reply)
            window.release()
            if len(outbox.acked) >= ACKS_BEFORE_KILL:
                enough.set()

    sender = asyncio.create_task(send_forever())
    try:
        await read_acks()
    except Closed:
        pass  # the node was killed: the end of this connection
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sender


async def pump_rest(person: Person, room_id: str, outbox: Outbox, enough: asyncio.Event) -> None:
    """WINDOW workers POST messages until requests start failing (the node is gone)."""
    dead = asyncio.Event()

    async def worker() -> None:
        while not dead.is_set():
            ref = new_ref("crash-rest")
            body = f"body of {ref}"
            outbox.sent[ref] = body
            try:
                reply = await person.post(f"/rooms/{room_id}/messages", {"ref": ref, "body": body})
            except httpx.TransportError:
                dead.set()
                return
            if reply.status_code in (200, 201):
                outbox.acked[ref] = reply.json()
            else:
                outbox.errors.append({"status": reply.status_code, "body": reply.text})
            if len(outbox.acked) >= ACKS_BEFORE_KILL:
                enough.set()

    await asyncio.gather(*(worker() for _ in range(WINDOW)))


def seen_seqs(ws: WSClient, room_id: str) -> dict[int, Json]:
    """Every `message` of `room_id` a session received, deduplicated by seq (as the contract
    tells clients to); fails when one seq came with two different messages."""
    by_seq: dict[int, Json] = {}
    for event in ws.log:
        if event["type"] == "message" and event["message"]["room_id"] == room_id:
            message = event["message"]
            earlier = by_seq.setdefault(message["seq"], message)
            assert earlier["id"] == message["id"], f"seq {message['seq']} reused: {earlier}"
    return by_seq


async def crash_and_recover(server: ServerProcess, transport: str) -> None:
    async with Crowd(server) as crowd:
        alice, bob = await crowd.people(2)
        room = await alice.group("crash", [bob])
        rid = room["id"]
        alice_ws, bob_ws = await crowd.sessions_of(alice, bob)

        outbox = Outbox()
        enough = asyncio.Event()
        if transport == "ws":
            pump = asyncio.create_task(pump_ws(alice_ws, rid, outbox, enough))
        else:
            pump = asyncio.create_task(pump_rest(alice, rid, outbox, enough))
        try:
            async with asyncio.timeout(4 * WAIT):
                await enough.wait()
            # The pump keeps its window full while the process dies.
            exit_code = await asyncio.to_thread(server.kill)
            assert exit_code == -9
            async with asyncio.timeout(4 * WAIT):
                await pump
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
        assert outbox.errors == [], f"sends answered by errors before the crash: {outbox.errors}"
        before_kill = dict(outbox.acked)
        in_flight = outbox.unacked()
        assert len(before_kill) >= ACKS_BEFORE_KILL
        assert in_flight, "no send was in flight at the kill: the test did not test the crash"
        bob_before = seen_seqs(bob_ws, rid)
        alice_before = seen_seqs(alice_ws, rid)
        await bob_ws.wait_closed()

        await asyncio.to_thread(server.start)

        # The receiver comes back first, so the resends also reach it live.
        bob_ws = await crowd.session(bob)
        alice_ws = await crowd.session(alice)

        # Resend every ref without an ack, same ref, same content, the way it was sent.
        if transport == "ws":
            for ref, body in in_flight.items():
                frame = {"type": "send", "ref": ref, "room_id": rid, "body": body}
                await alice_ws.send_frame(frame)
            for ref in in_flight:
                reply = await alice_ws.recv_reply(ref, timeout=4 * WAIT)
                assert reply["type"] == "ack", f"resend of {ref} answered {reply}"
                outbox.acked[ref] = reply["message"]
        else:
            for ref, body in in_flight.items():
                posted = await alice.post(f"/rooms/{rid}/messages", {"ref": ref, "body": body})
                assert posted.status_code in (200, 201), f"resend of {ref}: {posted.text}"
                outbox.acked[ref] = expect(posted, posted.status_code)
        for ref, body in in_flight.items():
            assert outbox.acked[ref]["ref"] == ref and outbox.acked[ref]["body"] == body
        total = len(outbox.sent)

        # The source of truth: REST history.
        history = await bob.all_messages(rid)
        seqs = [m["seq"] for m in history]
        assert seqs == list(range(1, total + 1)), "history seqs are not 1..N without gaps: " + (
            first_difference(seqs, list(range(1, total + 1)))
        )
        refs = Counter(m["ref"] for m in history)
        duplicated = {ref: n for ref, n in refs.items() if n > 1}
        assert duplicated == {}, f"{len(duplicated)} refs stored twice: {list(duplicated)[:5]}"
        assert set(refs) == set(outbox.sent), "history refs differ from the refs sent"
        by_ref = {m["ref"]: m for m in history}
        lost = [ref for ref in before_kill if ref not in by_ref]
        assert lost == [], f"{len(lost)} acknowledged messages lost in the crash"
        changed = [ref for ref, m in before_kill.items() if by_ref[ref] != m]
        assert changed == [], f"acknowledged messages changed by the crash: {changed[:5]}"
        assert all(by_ref[ref] == m for ref, m in outbox.acked.items())
        assert all(m["body"] == outbox.sent[m["ref"]] for m in history)

        # Each client syncs from its last seen seq and ends with every seq exactly once.
        for ws, before in ((bob_ws, bob_before), (alice_ws, alice_before)):
            await ws.sync_all({rid: max(before, default=0)})
            if max(seen_seqs(ws, rid), default=0) < total:
                await ws.messages_until(rid, total, timeout=2 * WAIT)
            merged = {**before, **seen_seqs(ws, rid)}
            missing = sorted(set(range(1, total + 1)) - set(merged))
            assert missing == [], f"{ws.user_id} misses seqs after its sync: {missing[:10]}"
            assert sorted(merged) == list(range(1, total + 1))
            wrong = [s for s, m in merged.items() if m["id"] != history[s - 1]["id"]]
            assert wrong == [], f"{ws.user_id} holds other messages than history at {wrong[:5]}"


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "storage", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def test_sigkill_under_websocket_sends_loses_and_duplicates_nothing(
    storage: str, deployment: str, request: pytest.FixtureRequest
) -> None:
    """SIGKILL with a window of 20 WebSocket sends in flight, restart, resend unacked refs,
    sync: 0 acknowledged messages lost, each ref once, seqs 1..N, both clients see every seq
    (on the embedded SQLite storage and on PostgreSQL)."""
    # `deployment` (one node or a cluster, see conftest.py) is asked for here so the test runs on
    # each; the server comes from `server_factory` below, after the PostgreSQL schema.
    overrides: dict[str, Any] = {"websocket": NO_FLOOD_CONTROL}
    if storage == "postgres":
        # Set up before the server, so it is torn down (schema dropped) after the server.
        overrides["storage"] = request.getfixturevalue("postgres_storage")
    server = request.getfixturevalue("server_factory")(**overrides)
    await crash_and_recover(server, "ws")


@pytest.mark.timeout(60)
async def test_sigkill_under_rest_sends_loses_and_duplicates_nothing(
    server_factory: Callable[..., ServerProcess],
) -> None:
    """The same crash with the sends over REST (20 POSTs in flight; the ones without an
    answer are POSTed again with the same ref)."""
    server = server_factory(websocket=NO_FLOOD_CONTROL)
    await crash_and_recover(server, "rest")
