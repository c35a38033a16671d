"""Group commit: concurrent sends are stored together, one transaction per batch.

A durable commit costs about the same for one message as for a hundred, so the writer takes
whatever sends are waiting, stores them in one `Storage.store_messages` call, and then — still
in one task, in seq order — hands every new message to the fan-out before it answers the
senders. A commit's cost is shared by everyone who was waiting for it.

A storage that can commit several transactions at once (PostgreSQL: row locks per room) says so
with `write_lanes`; the writer then runs that many batches at a time, each room always in the
same lane. One lane per room means a room's messages are stored and leave this node in seq
order, and one client's pipelined sends to a room keep their order; rooms in different lanes
no longer wait for each other's commits. SQLite has one writer, so it keeps one lane.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from chatcore.errors import ChatError, ErrorCode

if TYPE_CHECKING:
    from chatcore.interfaces import Storage
    from chatcore.metrics import CoreMetrics
    from chatcore.models import Draft, Stored

log = logging.getLogger(__name__)

#: Called with every batch's newly created messages, in commit order, before senders hear back.
#: It may return each message encoded (`chatcore.protocol.frames.message_json`), in the same
#: order, for the replies: an ack then reuses those bytes instead of encoding the message again.
Publish = Callable[[Sequence["Stored"]], Awaitable[Sequence[bytes] | None]]

#: How a sender hears back: called once, in queue order, with the stored message (and its
#: encoding when the batch created it and `Publish` returned one) or the ChatError.
Reply = Callable[["Stored | ChatError", bytes | None], None]


class MessageWriter:
    """Stores sends in batches; `lanes` batches may be in flight at once (see the module)."""

    def __init__(
        self,
        storage: Storage,
        publish: Publish,
        max_batch: int = 512,
        lanes: int = 1,
        metrics: CoreMetrics | None = None,
    ) -> None:
        self._lanes = [_Lane(storage, publish, max_batch, n, metrics) for n in range(max(1, lanes))]
        self._closing = False
        self._started = False

    async def start(self) -> None:
        for lane in self._lanes:
            lane.start()
        self._started = True

    async def close(self) -> None:
        """Store what is already waiting, then stop."""
        self._closing = True
        for lane in self._lanes:
            await lane.close()

    def enqueue(self, draft: Draft) -> asyncio.Future[Stored]:
        """Queue one message for the next batch of its room's lane; the future resolves once it
        is durable and published (or fails with a ChatError). A lane stores drafts in the order
        they are queued, so one client's pipelined sends to a room keep their order."""
        future: asyncio.Future[Stored] = asyncio.get_running_loop().create_future()

        def resolve(result: Stored | ChatError, _: bytes | None) -> None:
            if future.done():  # the sender went away
                return
            if isinstance(result, ChatError):
                future.set_exception(result)
            else:
                future.set_result(result)

        self.enqueue_reply(draft, resolve)
        return future

    def enqueue_reply(self, draft: Draft, reply: Reply) -> None:
        """`enqueue` without a future: `reply` is called once the message is durable and
        published, or failed, in the order drafts were queued (a session's acks keep the order
        of its sends). A reply must not raise; one that does is logged."""
        if self._closing or not self._started:
            raise ChatError(ErrorCode.UNAVAILABLE, "The server is shutting down; send again.")
        lanes = self._lanes
        lane = lanes[0] if len(lanes) == 1 else lanes[hash(draft.room_id) % len(lanes)]
        lane.enqueue(draft, reply)

    async def submit(self, draft: Draft) -> Stored:
        """Store one message and return it once durable and published."""
        return await self.enqueue(draft)


class _Lane:
    """One writer task and its queue: one batch in flight at a time."""

    def __init__(
        self,
        storage: Storage,
        publish: Publish,
        max_batch: int,
        number: int,
        metrics: CoreMetrics | None,
    ) -> None:
        self._storage = storage
        self._publish = publish
        self._max_batch = max_batch
        self._number = number
        self._metrics = metrics
        # Each draft with its reply and when it was queued (the ack latency starts there).
        self._pending: list[tuple[Draft, Reply, float]] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        name = f"chatcore-message-writer-{self._number}"
        self._task = asyncio.create_task(self._run(), name=name)

    async def close(self) -> None:
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
            self._task = None

    def enqueue(self, draft: Draft, reply: Reply) -> None:
        self._pending.append((draft, reply, time.perf_counter()))
        if not self._wakeup.is_set():
            self._wakeup.set()

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: len(batch)]
                await self._write(batch)
            if self._closing:
                return

    async def _write(self, batch: list[tuple[Draft, Reply, float]]) -> None:
        metrics = self._metrics
        started = time.perf_counter()
        try:
            results = await self._storage.store_messages([draft for draft, _, _ in batch])
        except Exception:
            log.exception("storing a batch of %d messages failed", len(batch))
            error = ChatError(ErrorCode.UNAVAILABLE, "The message could not be stored; send again.")
            _answer([reply for _, reply, _ in batch], [error] * len(batch), {})
            if metrics is not None:
                metrics.storage_errors.labels("store_messages").value += 1
                _observe_acks(metrics, batch)
            return
        created = [r for r in results if not isinstance(r, ChatError) and r.created]
        if metrics is not None:  # counted per batch: the send path stays as cheap as it was
            metrics.commit_latency.observe(time.perf_counter() - started)
            metrics.batch_size.observe(len(batch))
            metrics.messages_stored.inc(len(created))
        encoded: dict[int, bytes] = {}
        if created:
            try:
                published = await self._publish(created)
            except Exception:
                # Stored is stored: the ack still goes out; receivers repair with `sync`.
                log.exception("publishing %d new messages failed", len(created))
            else:
                if published is not None:
                    encoded = {id(r): data for r, data in zip(created, published, strict=True)}
        _answer([reply for _, reply, _ in batch], results, encoded)
        if metrics is not None:
            _observe_acks(metrics, batch)


def _observe_acks(metrics: CoreMetrics, batch: list[tuple[Draft, Reply, float]]) -> None:
    """The ack latency of every send of an answered batch, from one reading of the clock."""
    now = time.perf_counter()
    metrics.ack_latency.observe_many([now - queued for _, _, queued in batch])


def _answer(
    replies: list[Reply], results: Sequence[Stored | ChatError], encoded: dict[int, bytes]
) -> None:
    """Give every sender its outcome, in queue order; one failing reply spoils no other."""
    for reply, result in zip(replies, results, strict=True):
        try:
            reply(result, encoded.get(id(result)))
        except Exception:
            log.exception("answering a send failed")
