"""The client engine under faults: a killed server, a killed client process, a half-dead
connection, connections cut again and again, messages that came while the app was closed.

Real parts only: `chatcore serve` processes, device stores on files, a client process killed
with SIGKILL; the network between the clients and the server is a `TcpProxy` pair (REST and
WebSocket, see faults_support). Each test ends with the same three checks: the server's history
(REST, the source of truth) holds every message exactly once in the order it was queued, with
seqs 1..N; each client's device store holds exactly that history; and each client announced
every message it stored once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from engine_support import ready, synced
from faults_support import (
    FAST,
    LONG_WAIT,
    WAIT,
    EventLog,
    Rig,
    assert_once_in_order,
    assert_received_once,
    assert_store_matches,
    joined,
    new_account,
    person,
    proxied_server,
    running,
)

from chatcore.client.app import Client

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

WRITER = Path(__file__).with_name("outbox_writer.py")


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with proxied_server(tmp_path / "server") as rig:
        yield rig


def sent_once(log: EventLog, refs: list[str]) -> None:
    """Each of `refs` was announced as acknowledged exactly once (one `OutboxChanged(sent)`):
    a program waiting for its message hears of it, and only once."""
    counts = Counter(e.entry.ref for e in log.sent())
    never = [i for i, ref in enumerate(refs) if counts[ref] == 0]
    twice = [i for i, ref in enumerate(refs) if counts[ref] > 1]
    assert never == [], f"{len(never)} of {len(refs)} sends never announced as sent: #{never[:10]}"
    assert twice == [], f"{len(twice)} sends announced as sent more than once: #{twice[:10]}"


async def queue_all(client: Client, room_id: str, bodies: list[str]) -> list[str]:
    """Queue the bodies in order; their refs."""
    return [(await client.send(room_id, body)).ref for body in bodies]


async def until_on_the_wire(client: Client) -> None:
    """Wait until the client has sent an outbox entry (no event says so: the store does)."""
    async with asyncio.timeout(WAIT):
        while not any(entry.transmitted for entry in await client.outbox()):  # noqa: ASYNC110
            await asyncio.sleep(0.01)


# --- 1. the server dies with sends in flight -----------------------------------------------------

QUEUED = 200
ACKED_BEFORE_KILL = 50


async def test_server_killed_with_sends_in_flight_then_restarted(rig: Rig, tmp_path: Path) -> None:
    """200 messages queued; SIGKILL the server after 50 acks, with more on the wire (perhaps
    stored by the server, their acks lost); restart it on the same ports and data. The client
    reconnects by itself, sends the rest again with the same refs, and every message is on the
    server once, in the order queued."""
    async with person(rig.server) as bob, running(rig, tmp_path / "ann") as (ann, log):
        ann_id = await new_account(ann)
        room_id = await bob.group("kill", [ann_id])
        await joined(log, room_id)
        await ready(ann)

        # Queued while the network is down, then sent a full window at a time: the 50th ack
        # comes with most of them still to go, whatever the machine's speed.
        rig.refuse(True)
        await rig.cut()
        bodies = [f"message {i:03}" for i in range(QUEUED)]
        refs = await queue_all(ann, room_id, bodies)
        rig.refuse(False)

        await log.wait(lambda log: len(log.sent()) >= ACKED_BEFORE_KILL)
        mark = await log.settled_mark()
        # The network stops for the instant of the kill: what the sender puts on the wire
        # from now on gets no ack, and neither do the acks the dying server still wrote.
        await rig.freeze()
        await until_on_the_wire(ann)
        await rig.kill()
        await rig.thaw()
        await log.wait(lambda log: "offline" in log.states(mark))
        on_the_wire = [entry.ref for entry in await ann.outbox() if entry.transmitted]
        assert on_the_wire, "no send was on the wire at the kill: the test tested nothing"
        await rig.restart()
        await synced(ann, LONG_WAIT)

        assert await ann.outbox() == []
        history = await bob.history(room_id)
        assert_once_in_order(history, bodies, ann_id)
        assert [m["ref"] for m in history] == refs
        await assert_store_matches(ann, room_id, history)
        sent_once(log, refs)
        received = assert_received_once(log, room_id, in_seq_order=False)
        assert sorted(m.seq for m in received) == [m["seq"] for m in history]
        await log.settle()
        assert log.states(mark)[-1] == "ready"


# --- 2. the client process dies with a full outbox -----------------------------------------------

OFFLINE_QUEUED = 30


def text_of(path: Path) -> str:
    return path.read_text(errors="replace")


async def read_step(
    process: asyncio.subprocess.Process, step: str, log_path: Path
) -> dict[str, object]:
    """The writer's next stdout line, which must be `step` (its stderr goes to `log_path`)."""
    assert process.stdout is not None
    async with asyncio.timeout(WAIT):
        line = await process.stdout.readline()
    assert line, f"the writer ended before saying {step!r}:\n{text_of(log_path)}"
    said: dict[str, object] = json.loads(line)
    assert said["step"] == step, said
    return said


@pytest.mark.parametrize("mode", ["offline", "in-flight"])
async def test_client_process_killed_with_a_full_outbox_sends_it_after_restart(
    rig: Rig, tmp_path: Path, mode: str
) -> None:
    """A client process queues 30 messages and is SIGKILLed: `offline`, with the server out of
    reach (nothing went out); `in-flight`, on a frozen network after every send went on the
    wire unacknowledged (the server may store them once the network thaws; their acks go to a
    dead process). A new client on the same device store finds the 30 entries, in order, and
    sends them: each is on the server once, in the order queued."""
    data = tmp_path / "ann"
    async with person(rig.server) as bob:
        async with running(rig, data) as (ann, log):  # the device store, logged in
            ann_id = await new_account(ann)
            room_id = await bob.group("outbox", [ann_id])
            await joined(log, room_id)

        if mode == "offline":
            rig.refuse(True)
        # Slow pings for the in-flight run: its sends must still count as on the wire (not
        # yet put back by a ping timeout) when it is killed.
        settings = FAST if mode == "offline" else {**FAST, "ping_interval_seconds": 30.0}
        writer_log = tmp_path / "writer.log"
        with writer_log.open("wb") as stderr:
            writer = await asyncio.create_subprocess_exec(
                sys.executable,
                str(WRITER),
                rig.server_url,
                str(data),
                room_id,
                str(OFFLINE_QUEUED),
                mode,
                json.dumps(settings),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
            )
        try:
            if mode == "in-flight":
                await read_step(writer, "ready", writer_log)
                await rig.freeze()
                assert writer.stdin is not None
                writer.stdin.write(b"go\n")
                await writer.stdin.drain()
            said = await read_step(writer, "queued", writer_log)
        finally:
            with contextlib.suppress(ProcessLookupError):  # gone already: said so above
                writer.send_signal(signal.SIGKILL)
            async with asyncio.timeout(WAIT):
                await writer.wait()
        assert writer.returncode == -signal.SIGKILL, text_of(writer_log)
        refs = said["refs"]
        assert isinstance(refs, list) and len(refs) == OFFLINE_QUEUED
        if mode == "in-flight":
            rig.refuse(True)
            await rig.thaw()  # what the network held reaches the server; the writer is gone
            async with asyncio.timeout(WAIT):
                await rig.ws.wait_until(lambda proxy: proxy.connections == 0)

        bodies = [f"queued {i:03}" for i in range(OFFLINE_QUEUED)]
        async with running(rig, data) as (ann, log):
            outbox = await ann.outbox()
            assert [e.ref for e in outbox] == refs
            assert [e.body for e in outbox] == bodies
            assert all(e.transmitted for e in outbox) == (mode == "in-flight")
            assert all(e.state in ("pending", "sending") for e in outbox), outbox

            rig.refuse(False)
            await synced(ann)

            assert await ann.outbox() == []
            history = await bob.history(room_id)
            assert_once_in_order(history, bodies, ann_id)
            assert [m["ref"] for m in history] == refs
            await assert_store_matches(ann, room_id, history)
            sent_once(log, refs)


# --- 3. a half-dead connection -------------------------------------------------------------------

FROZEN_SENDS = 20


async def test_half_dead_connection_is_noticed_then_caught_up(rig: Rig, tmp_path: Path) -> None:
    """The network freezes under a ready client: no close, no byte. The ping timeout notices
    (offline, then connecting); meanwhile Bob sends 20 messages and the client queues one.
    After the thaw the client is ready again with Bob's 20 once each, in seq order, and its
    own message sent once."""
    async with person(rig.server) as bob, running(rig, tmp_path / "ann") as (ann, log):
        ann_id = await new_account(ann)
        room_id = await bob.group("frozen", [ann_id])
        await joined(log, room_id)
        await ready(ann)

        mark = await log.settled_mark()
        await rig.freeze()
        # Bounded by the ping interval and timeout (0.5 s + 1 s), with room for a slow machine.
        await log.wait(lambda log: "offline" in log.states(mark))
        bob_bodies = [f"while frozen {i:02}" for i in range(FROZEN_SENDS)]
        for body in bob_bodies:
            await bob.send(room_id, body)
        queued = await ann.send(room_id, "queued while frozen")
        assert ann.connection_state != "ready"

        await rig.thaw()
        await log.wait(lambda log: "ready" in log.states(mark))
        await synced(ann)

        states = log.states(mark)
        assert states.index("offline") < states.index("connecting") < states.index("ready")
        assert await ann.outbox() == []
        history = await bob.history(room_id)
        assert_once_in_order(history, bob_bodies, bob.id)
        assert_once_in_order(history, ["queued while frozen"], ann_id)
        await assert_store_matches(ann, room_id, history)
        sent_once(log, [queued.ref])
        received = assert_received_once(log, room_id, mark, in_seq_order=False)
        from_bob = [m for m in received if m.sender_id == bob.id]
        assert [m.body for m in from_bob] == bob_bodies  # once each, in seq order
        assert sorted(m.seq for m in received) == [m["seq"] for m in history]


# --- 4. connections cut again and again ----------------------------------------------------------

STREAMED = 300
FROM_BOB = 100
CUTS = 5


async def test_repeated_cuts_while_streaming_lose_and_repeat_nothing(
    rig: Rig, tmp_path: Path
) -> None:
    """Ann streams 300 sends while Bob (another client, same network) sends her 100; every
    connection is reset 5 times along the way, each time after 50 more of Ann's acks. Both end
    with all 400 messages once, in order, and Ann's states show each reconnect."""
    async with (
        running(rig, tmp_path / "ann") as (ann, ann_log),
        running(rig, tmp_path / "bob") as (bob, bob_log),
        person(rig.server) as reader,
    ):
        ann_id = await new_account(ann)
        bob_id = await new_account(bob)
        room_id = await reader.group("cuts", [ann_id, bob_id])
        await joined(ann_log, room_id)
        await joined(bob_log, room_id)
        await ready(ann)
        await ready(bob)

        ann_bodies = [f"ann {i:03}" for i in range(STREAMED)]
        bob_bodies = [f"bob {i:03}" for i in range(FROM_BOB)]
        mark = await ann_log.settled_mark()
        # Both queue while the cuts come: the sends stream through them.
        ann_queued = asyncio.create_task(queue_all(ann, room_id, ann_bodies))
        bob_queued = asyncio.create_task(queue_all(bob, room_id, bob_bodies))
        try:
            for cut in range(1, CUTS + 1):
                await ann_log.wait(acked(mark, cut * STREAMED // (CUTS + 1)))
                # On a live connection (the acks counted may have come on the last one).
                await ann_log.wait(lambda _: ann.connection_state in ("catching_up", "ready"))
                await rig.cut()
                async with asyncio.timeout(WAIT):
                    await ann.wait_for_state("offline")  # the cut is noticed
            ann_refs = await ann_queued
            bob_refs = await bob_queued
        finally:
            for task in (ann_queued, bob_queued):
                task.cancel()
            await asyncio.gather(ann_queued, bob_queued, return_exceptions=True)
        await synced(ann, LONG_WAIT)
        await synced(bob, LONG_WAIT)
        await ann_log.settle()

        states = ann_log.states(mark)
        # One disconnect and one new connection per cut (more only if a ping came too late).
        assert states.count("offline") >= CUTS, states
        assert states.count("catching_up") >= CUTS and states[-1] == "ready", states
        assert await ann.outbox() == [] and await bob.outbox() == []
        history = await reader.history(room_id)
        assert len(history) == STREAMED + FROM_BOB
        assert_once_in_order(history, ann_bodies, ann_id)
        assert_once_in_order(history, bob_bodies, bob_id)
        for client, log, refs in ((ann, ann_log, ann_refs), (bob, bob_log, bob_refs)):
            await assert_store_matches(client, room_id, history)
            sent_once(log, refs)
            received = assert_received_once(log, room_id, in_seq_order=False)
            assert sorted(m.seq for m in received) == [m["seq"] for m in history]


def acked(mark: int, count: int) -> Callable[[EventLog], bool]:
    return lambda log: len(log.sent(mark)) >= count


# --- 5. what came while the app was closed -------------------------------------------------------

WHILE_CLOSED = 50


async def test_messages_sent_while_the_client_was_closed_come_at_start(
    rig: Rig, tmp_path: Path
) -> None:
    """Ann's app is closed while Bob sends 50 messages; at its next start all 50 are stored
    once, in order, each announced as `MessageReceived(live=False)`."""
    data = tmp_path / "ann"
    async with person(rig.server) as bob:
        async with running(rig, data) as (ann, log):
            ann_id = await new_account(ann)
            room_id = await bob.group("closed", [ann_id])
            await joined(log, room_id)
            await ready(ann)

        bodies = [f"while closed {i:02}" for i in range(WHILE_CLOSED)]
        for body in bodies:
            await bob.send(room_id, body)

        async with running(rig, data) as (ann, log):
            await log.wait(lambda log: len(log.received(room_id)) >= WHILE_CLOSED)
            await synced(ann)

            history = await bob.history(room_id)
            assert_once_in_order(history, bodies, bob.id)
            await assert_store_matches(ann, room_id, history)
            received = assert_received_once(log, room_id)
            assert [m.body for m in received] == bodies
            assert [m.seq for m in received] == list(range(1, WHILE_CLOSED + 1))
            live = [e.message.seq for e in log.received(room_id) if e.live]
            assert live == [], f"catch-up announced as live: seqs {live[:10]}"
