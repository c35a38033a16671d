"""The message writer (group commit, `chatcore.server.writer`) on the real SQL storage.

Sends to many rooms are queued at once; each room's messages must get seqs in the order they
were queued and be published in that order, whatever the number of lanes. On PostgreSQL the
storage offers several write lanes, and batches of different rooms must then overlap.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import text

from chatcore.models import Draft, Stored
from chatcore.server.writer import MessageWriter
from chatcore.testing.services import postgres_url, require_url, unique_name
from chatcore.testing.storage_contract import make_user
from chatcore_sql.settings import SqlStorageSettings
from chatcore_sql.storage import SqlStorage, build_storage

ROOMS = 16
PER_ROOM = 25


class CountingStorage(SqlStorage):
    """The real SqlStorage, also counting how many `store_messages` calls overlap."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.running = 0
        self.most_at_once = 0

    async def store_messages(self, drafts: Sequence[Draft]) -> list[Stored | object]:  # type: ignore[override]
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            return await super().store_messages(drafts)  # type: ignore[return-value]
        finally:
            self.running -= 1


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", "postgres"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[CountingStorage]:
    schema = None
    if request.param == "postgres":
        require_url("PostgreSQL", postgres_url())
        schema = unique_name("chatcore_writer")
        settings = SqlStorageSettings(url=postgres_url(), schema=schema)
    else:
        settings = SqlStorageSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}")
    plain = build_storage(settings)
    assert plain is not None
    storage = CountingStorage(plain.url, settings)
    await storage.start()
    try:
        yield storage
    finally:
        if schema is not None:
            async with storage.engine.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await storage.close()


@pytest.mark.anyio
async def test_each_room_keeps_the_order_sends_were_queued_in(storage: CountingStorage) -> None:
    users = [await make_user(storage, f"writer{i}") for i in range(ROOMS)]
    rooms = [
        await storage.create_group_room(u.id, f"room {i}", [u.id], 0) for i, u in enumerate(users)
    ]
    published: dict[str, list[int]] = {room.id: [] for room in rooms}

    async def publish(stored: Sequence[Stored]) -> None:
        for item in stored:
            published[item.message.room_id].append(item.message.seq)

    lanes = storage.write_lanes
    writer = MessageWriter(storage, publish, max_batch=8, lanes=lanes)
    await writer.start()
    try:
        # Round robin over the rooms, as many clients sending at once would.
        futures = [
            (
                room.id,
                n,
                writer.enqueue(
                    Draft(
                        room_id=room.id, sender_id=user.id, ref=f"r{n}", body=f"message {n}", ts=n
                    )
                ),
            )
            for n in range(PER_ROOM)
            for room, user in zip(rooms, users, strict=True)
        ]
        done = await asyncio.wait_for(asyncio.gather(*(f for _, _, f in futures)), 60)
    finally:
        await writer.close()

    for (room_id, n, _), stored in zip(futures, done, strict=True):
        assert stored.created and stored.message.room_id == room_id
        assert stored.message.seq == n + 1, "a room's seqs follow the order of its sends"
        assert stored.message.ref == f"r{n}"
    for room in rooms:
        assert published[room.id] == list(range(1, PER_ROOM + 1)), "published in seq order"
    if lanes > 1:
        assert storage.most_at_once > 1, "batches of different rooms overlap"
    else:
        assert storage.most_at_once == 1
