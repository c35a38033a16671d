"""The catch-up loop of `chatcore.server.realtime.live.sync` on the real SQL storage (a SQLite
file): batches,
the per-sync bound and has_more at its edges (the e2e suites see it through a server; here
every boundary is cheap to reach)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from chatcore.models import Draft, Message
from chatcore.protocol.frames import SyncFrame
from chatcore.server.realtime import live
from chatcore.state import State
from chatcore_sql.settings import SqlStorageSettings
from chatcore_sql.storage import SqlStorage, async_url

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"


class CountingStorage(SqlStorage):
    """The SQL storage on a SQLite file, counting the reads of messages."""

    def __init__(self, path: Path) -> None:
        settings = SqlStorageSettings(url=f"sqlite+aiosqlite:///{path}")
        url = async_url(settings.url)
        assert url is not None
        super().__init__(url, settings)
        self.reads: list[tuple[int, int]] = []

    async def messages_after(self, room_id: str, after_seq: int, limit: int) -> list[Message]:
        self.reads.append((after_seq, limit))
        return await super().messages_after(room_id, after_seq, limit)


class ListeningSession:
    """What `live.sync` uses of a session, keeping what it sends."""

    def __init__(self, storage: SqlStorage, user_id: str, limit: int) -> None:
        limits = SimpleNamespace(max_sync_messages=limit)
        # `state` holds the app's metrics, which the catch-up counts in.
        self.app = SimpleNamespace(
            storage=storage, settings=SimpleNamespace(limits=limits), state=State()
        )
        self.user_id = user_id
        self.conn = SimpleNamespace(drain=self._drained)
        self.sent: list[dict[str, Any]] = []
        self.synced: dict[str, int] | None = None

    async def _drained(self) -> None: ...

    def begin_sync(self) -> None: ...

    def end_sync(self, synced: dict[str, int]) -> None:
        self.synced = synced

    def send_encoded(self, data: bytes) -> None:
        self.sent.append(orjson.loads(data))

    def send(self, event: dict[str, Any]) -> None:
        self.sent.append(event)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def catch_up(
    folder: Path, count: int, limit: int, start: int = 0
) -> tuple[list[int], dict[str, Any], int]:
    """(seqs sent, the synced event, reads of messages) of one sync from `start`, for a room of
    `count` messages, in a database of its own (the room is called "room" in the result)."""
    storage = CountingStorage(folder / f"sync-{count}-{limit}-{start}.db")
    await storage.start()
    try:
        alice = await storage.create_user("alice", HASH, "Alice")
        bob = await storage.create_user("bob", HASH, "Bob")
        room = await storage.create_group_room(alice.id, "g", [alice.id, bob.id], 1)
        drafts = [
            Draft(room_id=room.id, sender_id=alice.id, ref=f"r{n}", body="hi", ts=n)
            for n in range(count)
        ]
        for first in range(0, count, 500):
            await storage.store_messages(drafts[first : first + 500])
        session = ListeningSession(storage, bob.id, limit)
        await live.sync(session, SyncFrame(type="sync", rooms={room.id: start}))  # type: ignore[arg-type]
    finally:
        await storage.close()
    *events, synced = session.sent
    assert synced["type"] == "synced" and session.synced == synced["rooms"]
    assert all(event["type"] == "message" for event in events)
    rooms = {"room" if key == room.id else key: value for key, value in synced["rooms"].items()}
    more = {"room" if key == room.id else key: value for key, value in synced["has_more"].items()}
    synced = {**synced, "rooms": rooms, "has_more": more}
    return [event["message"]["seq"] for event in events], synced, len(storage.reads)


@pytest.mark.parametrize(
    ("count", "limit", "start", "sent", "more"),
    [
        (0, 7, 0, [], False),
        (5, 7, 0, [1, 2, 3, 4, 5], False),
        (7, 7, 0, [1, 2, 3, 4, 5, 6, 7], False),  # exactly the bound: nothing left over
        (8, 7, 0, [1, 2, 3, 4, 5, 6, 7], True),  # one more than the bound
        (20, 7, 7, [8, 9, 10, 11, 12, 13, 14], True),
        (14, 7, 7, [8, 9, 10, 11, 12, 13, 14], False),
        (6, 3, 0, [1, 2, 3], True),
        (6, 6, 0, [1, 2, 3, 4, 5, 6], False),  # two batches of 3, the bound in the second
    ],
)
@pytest.mark.anyio
async def test_sync_sends_up_to_the_bound_and_tells_what_is_left(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    count: int,
    limit: int,
    start: int,
    sent: list[int],
    more: bool,
) -> None:
    monkeypatch.setattr(live, "SYNC_BATCH", 3)
    seqs, synced, _reads = await catch_up(tmp_path, count, limit, start)
    assert seqs == sent
    assert synced["rooms"] == {"room": sent[-1] if sent else min(start, count)}
    assert synced["has_more"] == ({"room": True} if more else {})


@pytest.mark.anyio
async def test_a_sync_within_one_batch_reads_once(tmp_path: Path) -> None:
    """With the default batch a default sync of a room is one read, has_more included."""
    assert live.SYNC_BATCH >= 1000  # the default max_sync_messages
    for count in (10, 1000, 1001, 2500):
        seqs, synced, reads = await catch_up(tmp_path, count, 1000)
        assert seqs == list(range(1, min(count, 1000) + 1))
        assert (synced["has_more"] == {"room": True}) is (count > 1000)
        assert reads == 1
