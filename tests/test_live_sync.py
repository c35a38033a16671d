"""The catch-up loop of `chatcore.live.sync` on its own: batches, the per-sync bound and
has_more at its edges (the e2e suites see it through a server; here every boundary is cheap).
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from chatcore import live
from chatcore.models import Message
from chatcore.wire import SyncFrame


class FakeStorage:
    """One room of `count` messages; counts the reads of messages."""

    def __init__(self, count: int) -> None:
        self.messages = [
            Message(id=f"m{seq}", room_id="room", seq=seq, sender_id="a", ref=f"r{seq}", ts=seq)
            for seq in range(1, count + 1)
        ]
        self.reads: list[tuple[int, int]] = []

    async def room_seqs(self, user_id: str) -> dict[str, int]:
        return {"room": len(self.messages)}

    async def messages_after(self, room_id: str, after_seq: int, limit: int) -> list[Message]:
        self.reads.append((after_seq, limit))
        return [m for m in self.messages if m.seq > after_seq][:limit]

    async def updated_since(self, room_id: str, since_ts: int, max_seq: int) -> list[Message]:
        return []


class FakeSession:
    def __init__(self, storage: FakeStorage, limit: int) -> None:
        limits = SimpleNamespace(max_sync_messages=limit)
        self.app = SimpleNamespace(storage=storage, settings=SimpleNamespace(limits=limits))
        self.user_id = "b"
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


def catch_up(count: int, limit: int, start: int = 0) -> tuple[list[int], dict[str, Any], int]:
    """(seqs sent, the synced event, reads of messages) of one sync from `start`."""
    storage = FakeStorage(count)
    session = FakeSession(storage, limit)
    frame = SyncFrame(type="sync", rooms={"room": start})
    asyncio.run(live.sync(session, frame))  # type: ignore[arg-type]
    *events, synced = session.sent
    assert synced["type"] == "synced" and session.synced == synced["rooms"]
    assert all(event["type"] == "message" for event in events)
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
def test_sync_sends_up_to_the_bound_and_tells_what_is_left(
    monkeypatch: pytest.MonkeyPatch,
    count: int,
    limit: int,
    start: int,
    sent: list[int],
    more: bool,
) -> None:
    monkeypatch.setattr(live, "SYNC_BATCH", 3)
    seqs, synced, _reads = catch_up(count, limit, start)
    assert seqs == sent
    assert synced["rooms"] == {"room": sent[-1] if sent else min(start, count)}
    assert synced["has_more"] == ({"room": True} if more else {})


def test_a_sync_within_one_batch_reads_once() -> None:
    """With the default batch a default sync of a room is one read, has_more included."""
    assert live.SYNC_BATCH >= 1000  # the default max_sync_messages
    for count in (10, 1000, 1001, 2500):
        seqs, synced, reads = catch_up(count, 1000)
        assert seqs == list(range(1, min(count, 1000) + 1))
        assert (synced["has_more"] == {"room": True}) is (count > 1000)
        assert reads == 1
