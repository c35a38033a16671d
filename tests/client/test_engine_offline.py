"""The client engine without a server, and after: sends queued offline go once and in order when
the server is back, and messages that came while a client was closed are caught up at its start.

Real `chatcore serve` processes (stopped and started again on the same ports and data) and
device stores on files.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from engine_support import (
    NO_FLOOD_CONTROL,
    WAIT,
    Rest,
    engine_client,
    ready,
    signed_up,
    stored,
    synced,
)

from chatcore.client.events import RoomChanged
from chatcore.testing.server import ServerProcess, start_server

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

#: More than two catch-up batches of the server below (`max_sync_messages`).
CAUGHT_UP = 1200
SYNC_BATCH = 500


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    overrides = {"websocket": NO_FLOOD_CONTROL, "limits": {"max_sync_messages": SYNC_BATCH}}
    with start_server(tmp_path / "server", overrides) as running:
        yield running


async def test_sends_queued_while_the_server_is_down_go_once_in_order_when_it_returns(
    server: ServerProcess, tmp_path: Path
) -> None:
    """The server stops; Ann queues 5 messages (pending, in the outbox, in order); the server
    starts again on the same ports: Ann reconnects by herself and sends them, in order, each
    exactly once."""
    bob = await Rest.new(server)
    async with engine_client(server, tmp_path / "ann") as (ann, log):
        ann_id = await signed_up(ann)
        room_id = await bob.group("offline", [ann_id])
        await ready(ann)
        await log.wait(lambda log: any(isinstance(e, RoomChanged) for e in log.events))

        mark = log.mark()
        await asyncio.to_thread(server.stop)
        await log.wait(lambda log: "offline" in log.states(mark))
        bodies = [f"queued offline {i}" for i in range(5)]
        refs = [(await ann.send(room_id, body)).ref for body in bodies]
        queued = await ann.outbox()
        assert [e.ref for e in queued] == refs
        assert [e.body for e in queued] == bodies
        assert all(e.state == "pending" and not e.transmitted for e in queued)
        assert [e.position for e in queued] == sorted(e.position for e in queued)

        await asyncio.to_thread(server.start)
        await log.wait(lambda log: sorted(log.sent_refs(mark)) == sorted(refs))
        await synced(ann)

        assert log.sent_refs(mark) == refs  # acked in the order queued
        await log.wait(lambda log: "ready" in log.states(mark))
        assert await ann.outbox() == []
        history = await bob.history(room_id)
        assert [(m["ref"], m["body"]) for m in history] == list(zip(refs, bodies, strict=True))
        assert [m["seq"] for m in history] == [1, 2, 3, 4, 5]
        assert [m.id for m in await stored(ann, room_id)] == [m["id"] for m in history]


async def test_messages_sent_while_a_client_was_closed_are_caught_up_at_its_start(
    server: ServerProcess, tmp_path: Path
) -> None:
    """Bob's app is closed while Ann sends 1,200 messages (more than two catch-up batches). At
    Bob's next start the connection goes connecting, catching up, ready; every message is
    stored once, in seq order, each announced once as `MessageReceived(live=False)`, and the
    room's cursor is at the last seq."""
    async with engine_client(server, tmp_path / "bob") as (bob, bob_log):
        bob_id = await signed_up(bob)
        ann = await Rest.new(server)
        room_id = await ann.group("catch-up", [bob_id])
        await ready(bob)
        await bob_log.wait(lambda log: any(isinstance(e, RoomChanged) for e in log.events))

    bodies = [f"while closed {i:04}" for i in range(CAUGHT_UP)]
    sent = await ann.send_many(room_id, bodies)
    assert [m["seq"] for m in sent] == list(range(1, CAUGHT_UP + 1))

    async with engine_client(server, tmp_path / "bob") as (bob, log):
        await log.wait(lambda log: "ready" in log.states(), timeout=3 * WAIT)

        assert log.states() == ["connecting", "catching_up", "ready"]
        messages = await stored(bob, room_id)
        assert [m.id for m in messages] == [m["id"] for m in sent]  # each once, in seq order
        assert [m.body for m in messages] == bodies
        assert (await bob.store.cursors())[room_id] == CAUGHT_UP
        received = log.received(room_id)
        assert [e.message for e in received] == messages
        assert not any(e.live for e in received)
        summary = await bob.room(room_id)
        assert summary is not None and summary.unread == CAUGHT_UP
