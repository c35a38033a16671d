"""The client engine talking: live delivery between two clients, the event stream and its hook,
quick replies over REST, and two processes of one device sharing its store.

Real `chatcore serve` processes and device stores on files; no part is mocked.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from engine_support import (
    NO_FLOOD_CONTROL,
    WAIT,
    EventLog,
    Rest,
    engine_client,
    make_client,
    ready,
    signed_up,
    stored,
)
from PIL import Image

from chatcore.client.app import ANOTHER_PROCESS, Client
from chatcore.client.errors import OutboxError
from chatcore.client.events import (
    ClientEvent,
    ConnectionChanged,
    MessageReceived,
    OutboxChanged,
    RoomChanged,
)
from chatcore.hookspecs import hookimpl
from chatcore.testing.server import ServerProcess, start_server

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with start_server(tmp_path_factory.mktemp("server"), {"websocket": NO_FLOOD_CONTROL}) as s:
        yield s


async def test_a_message_goes_live_to_the_other_client_and_is_stored_once(
    server: ServerProcess, tmp_path: Path
) -> None:
    """Ann sends while Bob is connected: Bob gets `MessageReceived(live=True)`; Ann sees her
    entry pending, then sent with the stored message; both device stores hold it once."""
    async with (
        engine_client(server, tmp_path / "ann") as (ann, ann_log),
        engine_client(server, tmp_path / "bob") as (bob, bob_log),
    ):
        await signed_up(ann)
        bob_id = await signed_up(bob)
        room = await ann.api.create_direct(bob_id)
        await ready(ann)
        await ready(bob)
        await bob_log.wait(lambda log: any(isinstance(e, RoomChanged) for e in log.events))

        ann_mark, bob_mark = ann_log.mark(), bob_log.mark()
        entry = await ann.send(room.id, "hello bob")
        assert entry.state == "pending" and entry.position > 0
        await bob_log.wait(lambda log: len(log.received(room.id, bob_mark)) == 1)
        await ann_log.wait(lambda log: "sent" in log.outbox(entry.ref, ann_mark))

        assert ann_log.outbox(entry.ref, ann_mark) == ["pending", "sent"]
        [sent] = [
            e
            for e in ann_log.since(ann_mark)
            if isinstance(e, OutboxChanged) and e.entry.state == "sent"
        ]
        assert sent.message is not None and sent.message.ref == entry.ref
        [got] = bob_log.received(room.id, bob_mark)
        assert got.live and got.message == sent.message and got.message.body == "hello bob"
        assert await stored(ann, room.id) == [sent.message]
        assert await stored(bob, room.id) == [sent.message]
        assert await ann.history(room.id) == [sent.message]
        assert await ann.outbox() == []
        async with asyncio.timeout(WAIT):  # acked before: answered at once
            assert await ann.wait_sent(entry.ref) == sent.message
        summary = await bob.room(room.id)
        assert summary is not None and summary.unread == 1

        await bob.mark_read(room.id, sent.message.seq)
        summary = await bob.room(room.id)
        assert summary is not None and summary.unread == 0 and summary.read_seq == 1


class Recorder:
    """A client plugin that keeps every event its hook is given."""

    chatcore_role = "client"

    def __init__(self) -> None:
        self.seen: list[ClientEvent] = []

    @hookimpl
    async def chatcore_client_event(self, app: Client, event: ClientEvent) -> None:
        await asyncio.sleep(0)  # awaited: the next event waits for this one
        assert isinstance(app, Client)
        self.seen.append(event)


class Broken:
    """A plugin whose hook fails on every event: logged, and the stream goes on."""

    chatcore_role = "client"

    @hookimpl
    def chatcore_client_event(self, app: Client, event: ClientEvent) -> None:
        raise RuntimeError("this plugin is broken")


async def test_every_subscriber_and_the_hook_get_the_same_events_in_order(
    server: ServerProcess, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two `events()` iterators and a plugin's `chatcore_client_event` (given through
    `extra_plugins`, beside a broken one) see the same typed events in the same order; the
    iterators end when the client closes."""
    recorder = Recorder()
    client = Client.from_config(
        None,
        overrides={
            "role": "client",
            "client": {"server_url": server.base_url, "reconnect_min_seconds": 0.05},
            "device_store": {"path": str(tmp_path / "ann" / "client.db")},
            "media_cache": {"path": str(tmp_path / "ann" / "media")},
        },
        extra_plugins=[Broken(), recorder],
    )
    bob = await Rest.new(server)
    async with EventLog(client) as first, EventLog(client) as second:
        await client.start()
        ann_id = await signed_up(client)
        room_id = await bob.group("events", [ann_id])
        await ready(client)
        refs = [(await client.send(room_id, f"m{i}")).ref for i in range(3)]
        await first.wait(lambda log: log.sent_refs() == refs)
        await second.wait(lambda log: log.sent_refs() == refs)
        ending = asyncio.create_task(drain(client))
        await client.close()
        async with asyncio.timeout(WAIT):  # the close's own event, then the iterator ends
            assert await ending == [ConnectionChanged("offline")]
        await first.ended()
        await second.ended()

    assert first.events == second.events
    assert recorder.seen == first.events
    kinds = {type(e) for e in first.events}
    assert {ConnectionChanged, RoomChanged, OutboxChanged, MessageReceived} <= kinds
    states = [e.state for e in first.events if isinstance(e, ConnectionChanged)]
    # A fresh device starts logged out; the login connects.
    assert states[:4] == ["logged_out", "connecting", "catching_up", "ready"]
    assert "this plugin is broken" in caplog.text


async def drain(client: Client) -> list[ClientEvent]:
    """The events an iterator made now gets, until it ends."""
    return [event async for event in client.events()]


async def test_reply_without_a_connection_goes_over_rest(
    server: ServerProcess, tmp_path: Path
) -> None:
    """A client started without a connection (a push handler) replies: the message is sent
    over REST at once, stored, announced sent, and the outbox is empty afterwards."""
    bob = await Rest.new(server)
    folder = tmp_path / "ann"
    async with engine_client(server, folder, connect=False) as (ann, log):
        ann_id = await signed_up(ann)
        room_id = await bob.group("quick reply", [ann_id])
        assert ann.connection_state == "offline"

        entry = await ann.reply(room_id, "on my way", reply_to=None)

        assert entry.state == "sent"
        assert await ann.outbox() == []
        await log.wait(lambda log: log.outbox(entry.ref) == ["pending", "sent"])
        [message] = await stored(ann, room_id)
        assert (message.ref, message.body, message.sender_id) == (entry.ref, "on my way", ann_id)
        assert [m["id"] for m in await bob.history(room_id)] == [message.id]
        assert ann.connection_state == "offline"  # it never connected


async def test_one_process_of_a_device_holds_the_connection(
    server: ServerProcess, tmp_path: Path
) -> None:
    """Two clients on one device store (the app and its push handler): the first holds the
    connection; the second stays offline saying why, reads the store, and replies over REST;
    the app announces the reply (it arrives there live) and the shared store holds it once."""
    bob = await Rest.new(server)
    folder = tmp_path / "device"
    async with engine_client(server, folder) as (app, app_log):
        ann_id = await signed_up(app)
        room_id = await bob.group("shared device", [ann_id])
        await ready(app)
        await app_log.wait(lambda log: any(isinstance(e, RoomChanged) for e in log.events))

        handler = make_client(server, folder)
        await handler.start()
        try:
            assert handler.account == app.account
            assert handler.connection_state == "offline"
            assert handler.connection_detail == ANOTHER_PROCESS
            assert [s.room.id for s in await handler.rooms()] == [room_id]
            entry = await handler.reply(room_id, "sent by the push handler")
            assert entry.state == "sent"
        finally:
            await handler.close()

        assert app.connection_state == "ready"
        await app_log.wait(
            lambda log: any(m.message.ref == entry.ref for m in log.received(room_id))
        )
        messages = await stored(app, room_id)
        assert [(m.ref, m.body) for m in messages] == [(entry.ref, "sent by the push handler")]
        assert [m["ref"] for m in await bob.history(room_id)] == [entry.ref]


def png(path: Path) -> bytes:
    """Write a small PNG image to `path`; its bytes."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


async def test_a_file_is_uploaded_then_sent_and_the_other_side_opens_it(
    server: ServerProcess, tmp_path: Path
) -> None:
    """`send_file`: uploaded when online, then sent as a media message; the other client opens
    it (downloaded into its media cache). A file the server does not take fails the entry with
    the server's reason, and the next one still goes."""
    async with (
        engine_client(server, tmp_path / "ann") as (ann, _),
        engine_client(server, tmp_path / "bob") as (bob, bob_log),
    ):
        await signed_up(ann)
        bob_id = await signed_up(bob)
        room = await ann.api.create_direct(bob_id)
        await ready(ann)
        await ready(bob)
        image = png(tmp_path / "red.png")
        (tmp_path / "notes.txt").write_text("plain text is not in the allow-list")

        refused = await ann.send_file(room.id, tmp_path / "notes.txt")
        entry = await ann.send_file(room.id, tmp_path / "red.png")
        assert (entry.kind, entry.media_id, entry.file_path) == (
            "media",
            None,
            str(tmp_path / "red.png"),
        )
        async with asyncio.timeout(WAIT):
            message = await ann.wait_sent(entry.ref)
        assert message.kind == "media" and message.media_id is not None
        [failed] = await ann.outbox()
        assert (failed.ref, failed.error_code) == (refused.ref, "unsupported_media_type")

        await bob_log.wait(lambda log: len(log.received(room.id)) == 1)
        opened = await bob.open_media(message.media_id)
        assert await asyncio.to_thread(Path(opened.path).read_bytes) == image
        assert opened.content_type == "image/png"
        assert (await bob.open_media(message.media_id)).path == opened.path  # from the cache
        with pytest.raises(OutboxError):
            await ann.send_file(room.id, tmp_path / "missing.png")


async def test_history_fetches_and_keeps_what_the_device_never_got(
    server: ServerProcess, tmp_path: Path
) -> None:
    """A device that never caught up (no connection) asks for history: the older pages come
    from the server, are kept in the device store, and are read from there after."""
    bob = await Rest.new(server)
    async with engine_client(server, tmp_path / "ann", connect=False) as (ann, _):
        ann_id = await signed_up(ann)
        room_id = await bob.group("history", [ann_id])
        sent = await bob.send_many(room_id, [f"old {i}" for i in range(5)])

        newest = await ann.history(room_id, limit=3)
        assert [m.seq for m in newest] == [5, 4, 3]
        older = await ann.history(room_id, before_seq=3, limit=10)
        assert [m.seq for m in older] == [2, 1]
        assert [m.id for m in await stored(ann, room_id)] == [m["id"] for m in sent]
        assert await ann.history(room_id, limit=10) == [*newest, *older]
