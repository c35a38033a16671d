"""The outbox: refusals that fail one entry and block nothing, what a program may do with an entry
(resend, edit, cancel) before and after it went on the wire, and flood control obeyed in order.

Real `chatcore serve` processes and device stores on files.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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

from chatcore.client.app import Client
from chatcore.client.connection import Link
from chatcore.client.errors import OutboxError
from chatcore.client.events import ClientEvent, OutboxChanged, RoomChanged
from chatcore.client.live import PING_REF_PREFIX
from chatcore.testing.server import ServerProcess, start_server
from chatcore.testing.wsclient import new_ref

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

#: Flood control that a burst of 30 sends would overrun: the client paces itself below it
#: (the server states it in /api/v1/info), unless other frames empty the bucket first.
TIGHT = {"rate_per_second": 10, "rate_burst": 20}
FLOODED = 30
#: A slow refill (a token every half second): a client slowed down between two frames lets
#: the bucket refill in between.
SLOW_REFILL = {"rate_per_second": 2, "rate_burst": 20}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with start_server(tmp_path_factory.mktemp("server"), {"websocket": NO_FLOOD_CONTROL}) as s:
        yield s


async def test_a_refused_send_fails_with_the_servers_reason_and_blocks_nothing(
    server: ServerProcess, tmp_path: Path
) -> None:
    """A send to a room Ann is not in becomes *failed* with the server's code and sentence;
    the send queued after it, to a room she is in, still goes. A resend is refused again; a
    cancel removes the entry."""
    bob = await Rest.new(server)
    async with engine_client(server, tmp_path / "ann") as (ann, log):
        ann_id = await signed_up(ann)
        shared = await bob.group("shared", [ann_id])
        private = await bob.group("private", [])
        await ready(ann)

        bad = await ann.send(private, "nobody hears this")
        good = await ann.send(shared, "this one goes")
        await log.wait(
            lambda log: "failed" in log.outbox(bad.ref) and log.sent_refs() == [good.ref]
        )

        [failed] = await ann.outbox()
        assert (failed.ref, failed.state, failed.error_code) == (bad.ref, "failed", "not_found")
        assert failed.error_message and "not" in failed.error_message.lower()
        with pytest.raises(OutboxError) as refused:
            await ann.wait_sent(bad.ref)
        assert refused.value.entry == failed
        assert [m.body for m in await stored(ann, shared)] == ["this one goes"]
        assert await stored(ann, private) == []

        mark = log.mark()
        again = await ann.resend(bad.ref)
        assert (again.state, again.error_code, again.error_message) == ("pending", None, None)
        await log.wait(lambda log: log.outbox(bad.ref, mark) == ["pending", "failed"])

        cancelled = await ann.cancel(bad.ref)
        assert cancelled.state == "cancelled"
        await log.wait(lambda log: log.outbox(bad.ref, mark) == ["pending", "failed", "cancelled"])
        assert await ann.outbox() == []
        assert [m["ref"] for m in await bob.history(shared)] == [good.ref]


async def test_editing_a_failed_send_queues_it_again_with_the_new_text(
    server: ServerProcess, tmp_path: Path
) -> None:
    """A text over the server's limit fails with `too_large`; shortened with `edit_pending`,
    the same entry (same ref) is queued again and sent with the new text."""
    bob = await Rest.new(server)
    async with engine_client(server, tmp_path / "ann") as (ann, log):
        ann_id = await signed_up(ann)
        room = await bob.group("limits", [ann_id])
        await ready(ann)
        limit = (await ann.api.info()).limits["max_message_bytes"]

        long = await ann.send(room, "x" * (limit + 1))
        await log.wait(lambda log: "failed" in log.outbox(long.ref))
        [failed] = await ann.outbox()
        assert (failed.state, failed.error_code) == ("failed", "too_large")

        edited = await ann.edit_pending(long.ref, "short enough")
        assert (edited.state, edited.error_code, edited.body) == ("pending", None, "short enough")
        message = await asyncio.wait_for(ann.wait_sent(long.ref), WAIT)
        assert (message.ref, message.body) == (long.ref, "short enough")
        assert [m["body"] for m in await bob.history(room)] == ["short enough"]


async def test_entries_that_never_left_the_device_can_be_edited_and_cancelled(
    server: ServerProcess, tmp_path: Path
) -> None:
    """Queued without a connection, an entry can be edited (the new text is what is sent) or
    cancelled (its waiter learns it); both are announced."""
    bob = await Rest.new(server)
    folder = tmp_path / "ann"
    async with engine_client(server, folder, connect=False) as (ann, log):
        ann_id = await signed_up(ann)
        room_id = await bob.group("drafts", [ann_id])
        kept = await ann.send(room_id, "helo")
        dropped = await ann.send(room_id, "never mind")
        waiter = asyncio.create_task(ann.wait_sent(dropped.ref))

        edited = await ann.edit_pending(kept.ref, "hello")
        assert (edited.body, edited.state, edited.transmitted) == ("hello", "pending", False)
        cancelled = await ann.cancel(dropped.ref)
        assert cancelled.ref == dropped.ref and cancelled.state == "cancelled"
        async with asyncio.timeout(WAIT):
            with pytest.raises(OutboxError):
                await waiter
        assert [(e.ref, e.body) for e in await ann.outbox()] == [(kept.ref, "hello")]
        await log.wait(lambda log: "cancelled" in log.outbox(dropped.ref))
        bodies = [e.entry.body for e in log.events if isinstance(e, OutboxChanged)]
        assert bodies == ["helo", "never mind", "hello", "never mind"]
        with pytest.raises(OutboxError):
            await ann.cancel(dropped.ref)  # gone

    async with engine_client(server, folder) as (ann, log):
        await synced(ann)
        assert [m["body"] for m in await bob.history(room_id)] == ["hello"]


async def transmitted(client: Client, ref: str) -> None:
    """Wait until the entry went on the wire: the device store says so (no event does)."""
    async with asyncio.timeout(WAIT):
        while True:
            entry = await client.store.outbox_get(ref)
            if entry is not None and entry.transmitted:
                return
            await asyncio.sleep(0.01)  # the store has no event to wait on: it is read again


@contextlib.contextmanager
def paused(server: ServerProcess) -> Iterator[None]:
    """The server process stopped (SIGSTOP): connections stay open, nothing is answered."""
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.process.pid, signal.SIGCONT)


async def test_an_entry_on_its_way_can_no_longer_be_edited_or_cancelled(
    tmp_path: Path,
) -> None:
    """Once on the wire the server may have stored it: edit and cancel say it is on its way;
    it is sent once when the server answers."""
    with start_server(tmp_path / "server", {"websocket": NO_FLOOD_CONTROL}) as server:
        bob = await Rest.new(server)
        async with engine_client(server, tmp_path / "ann") as (ann, log):
            ann_id = await signed_up(ann)
            room_id = await bob.group("on its way", [ann_id])
            await ready(ann)
            await log.wait(lambda log: any(isinstance(e, RoomChanged) for e in log.events))
            with paused(server):
                entry = await ann.send(room_id, "on its way")
                await transmitted(ann, entry.ref)
                for attempt in (ann.edit_pending(entry.ref, "changed"), ann.cancel(entry.ref)):
                    with pytest.raises(OutboxError, match="already on its way"):
                        await attempt
            async with asyncio.timeout(WAIT):
                message = await ann.wait_sent(entry.ref)
            assert message.body == "on its way"
            assert [m["ref"] for m in await bob.history(room_id)] == [entry.ref]


async def test_sends_are_paced_below_the_servers_flood_control(tmp_path: Path) -> None:
    """30 sends queued offline, to a server whose flood control (burst 20, 10 a second) the
    server states: the client paces them below it, so none is refused, all in order."""
    with start_server(tmp_path / "server", {"websocket": TIGHT}) as server:
        bob = await Rest.new(server)
        folder = tmp_path / "ann"
        async with engine_client(server, folder, connect=False) as (ann, _):
            ann_id = await signed_up(ann)
            room_id = await bob.group("paced", [ann_id])
            refs = [(await ann.send(room_id, f"paced {i:02}")).ref for i in range(FLOODED)]

        async with engine_client(server, folder) as (ann, log):
            await log.wait(lambda log: len(log.sent_refs()) == FLOODED, timeout=3 * WAIT)
            assert log.sent_refs() == refs
            assert _attempts(log.events) == [1] * FLOODED  # nothing was refused
            assert [m["ref"] for m in await bob.history(room_id)] == refs


async def test_a_send_refused_by_flood_control_waits_and_goes_in_order(tmp_path: Path) -> None:
    """Typing frames empty the session's flood-control bucket; the 30 sends queued next are
    refused with `rate_limited` at first: all end sent, each once, seqs in the order queued."""
    with start_server(tmp_path / "server", {"websocket": TIGHT}) as server:
        bob = await Rest.new(server)
        async with engine_client(server, tmp_path / "ann") as (ann, log):
            ann_id = await signed_up(ann)
            room_id = await bob.group("flood", [ann_id])
            await ready(ann)
            for _ in range(int(TIGHT["rate_burst"])):
                await ann.typing(room_id)  # typing is not paced: a UI's own frames
            refs = [(await ann.send(room_id, f"flood {i:02}")).ref for i in range(FLOODED)]
            await log.wait(lambda log: len(log.sent_refs()) == FLOODED, timeout=3 * WAIT)

            assert log.sent_refs() == refs
            assert max(_attempts(log.events)) > 1, "nothing was refused: the test tested nothing"
            history = await bob.history(room_id)
            assert [m["ref"] for m in history] == refs  # once each, seqs in queued order
            assert [m["seq"] for m in history] == list(range(1, FLOODED + 1))
            assert [m.ref for m in await stored(ann, room_id)] == refs
            assert await ann.outbox() == []


def _attempts(events: list[ClientEvent]) -> list[int]:
    """How many times each sent entry went on the wire, in the order they were sent."""
    return [
        e.entry.attempts for e in events if isinstance(e, OutboxChanged) and e.entry.state == "sent"
    ]


async def test_a_send_flood_control_might_refuse_is_never_overtaken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The interleaving that reordered a room: the server refuses the first send on an empty
    bucket, and reads the next one after a refill, which it accepts. Here a burst of pings
    empties the bucket as the connection opens, and every send frame after the first is held
    back (as a loaded machine holds a process) for longer than a token takes to refill: a
    client that wrote the next sends before the refusal was answered would have them stored
    first. The engine writes a send that might be refused alone: all are sent, each once,
    seqs in the order queued."""
    burst, refill = SLOW_REFILL["rate_burst"], 1 / SLOW_REFILL["rate_per_second"]
    write = Link.write
    sends = syncs = 0

    async def held_back_write(link: Link, frame: dict[str, Any]) -> int:
        nonlocal sends, syncs
        if frame["type"] == "send":
            sends += 1
            if sends > 1:
                await asyncio.sleep(1.5 * refill)  # the interleaving: the bucket refills
        position = await write(link, frame)
        if frame["type"] == "sync" and (syncs := syncs + 1) == 1:  # the catch-up begins
            for _ in range(int(burst)):
                await write(link, {"type": "ping", "ref": f"{PING_REF_PREFIX}{new_ref()}"})
        return position

    with start_server(tmp_path / "server", {"websocket": SLOW_REFILL}) as server:
        bob = await Rest.new(server)
        folder = tmp_path / "ann"
        async with engine_client(server, folder, connect=False) as (ann, _):
            ann_id = await signed_up(ann)
            room_id = await bob.group("held back", [ann_id])
            refs = [(await ann.send(room_id, f"held {i}")).ref for i in range(6)]

        monkeypatch.setattr(Link, "write", held_back_write)
        async with engine_client(server, folder) as (ann, log):
            await log.wait(lambda log: len(log.sent_refs()) == len(refs), timeout=3 * WAIT)
            assert log.sent_refs() == refs
            assert max(_attempts(log.events)) > 1, "nothing was refused: the test tested nothing"
            history = await bob.history(room_id)
            assert [m["ref"] for m in history] == refs
            assert [m["seq"] for m in history] == list(range(1, len(refs) + 1))
