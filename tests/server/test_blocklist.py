"""The block sets a node keeps for its users (`chatcore.server.realtime.blocklist`), on real SQL
storage.

The fan-out trusts these sets for typing and receipts, so they must never end up older than
a note the node has heard: a note that arrives while a set is being read makes it read again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chatcore.server.realtime.blocklist import BlockSets
from chatcore.testing.storage_contract import make_users
from chatcore_sql.settings import SqlStorageSettings
from chatcore_sql.storage import SqlStorage, build_storage

pytestmark = pytest.mark.anyio

WAIT = 5.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[SqlStorage]:
    built = build_storage(SqlStorageSettings(url=f"sqlite+aiosqlite:///{tmp_path}/chat.db"))
    assert built is not None
    await built.start()
    try:
        yield built
    finally:
        await built.close()


class CountedReads:
    """`Storage.blocks_involving`, counted; with `hold()`, a read waits after querying until
    `release()` (so a test can change storage between a read's query and its answer)."""

    def __init__(self, storage: SqlStorage) -> None:
        self.storage = storage
        self.count = 0
        self.queried = asyncio.Event()
        self._gate = asyncio.Event()
        self._holding = False

    def hold(self) -> None:
        """The next read (only) waits for `release`."""
        self._holding = True

    def release(self) -> None:
        self._gate.set()

    async def __call__(self, user_id: str) -> list[str]:
        self.count += 1
        found = await self.storage.blocks_involving(user_id)
        self.queried.set()
        if self._holding:
            self._holding = False
            await asyncio.wait_for(self._gate.wait(), WAIT)
        return found


async def test_a_set_is_read_once_then_kept_up_to_date_by_notes(storage: SqlStorage) -> None:
    alice, bob, carol = await make_users(storage, "alice", "bob", "carol")
    await storage.block(bob.id, alice.id, now_ts=1)  # who blocks whom does not matter
    reads = CountedReads(storage)
    sets = BlockSets(reads, keep=lambda user_id: True)
    assert await sets.of(alice.id) == {bob.id}
    assert await sets.of(alice.id) == {bob.id}
    assert reads.count == 1
    sets.changed(alice.id, carol.id, True)
    sets.changed(alice.id, bob.id, False)
    assert await sets.of(alice.id) == {carol.id}
    assert reads.count == 1
    # Her last session here closed: the next one reads storage again.
    sets.forget(alice.id)
    assert await sets.of(alice.id) == {bob.id}
    assert reads.count == 2


async def test_a_note_heard_during_a_read_makes_it_read_again(storage: SqlStorage) -> None:
    alice, bob = await make_users(storage, "alice", "bob")
    reads = CountedReads(storage)
    sets = BlockSets(reads, keep=lambda user_id: True)
    reads.hold()
    reading = asyncio.create_task(sets.of(alice.id))
    await asyncio.wait_for(reads.queried.wait(), WAIT)  # it read "no blocks"...
    await storage.block(alice.id, bob.id, now_ts=1)
    sets.changed(alice.id, bob.id, True)  # ...and the note of the block came before its answer
    reads.release()
    assert await asyncio.wait_for(reading, WAIT) == {bob.id}
    assert reads.count == 2


async def test_users_without_a_session_here_are_read_every_time(storage: SqlStorage) -> None:
    alice, bob = await make_users(storage, "alice", "bob")
    reads = CountedReads(storage)
    sets = BlockSets(reads, keep=lambda user_id: False)
    assert await sets.of(alice.id) == frozenset()
    sets.changed(alice.id, bob.id, True)  # no note reaches this node about her: ignored
    await storage.block(alice.id, bob.id, now_ts=1)
    assert await sets.of(alice.id) == {bob.id}
    assert reads.count == 2
