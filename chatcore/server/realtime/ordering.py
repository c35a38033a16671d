"""Per-room delivery order at one node, whatever order the broker brings events in.

Within one node, messages are published in seq order by one writer. Across nodes they are not:
node B may publish seq 101 before node A's batch 59..100 reaches the broker. Each node
therefore releases a room's message events to its sessions strictly in seq order: an event
ahead of a gap waits; a gap that does not fill by itself within `REPAIR_DELAY_SECONDS` (an
event lost by the at-most-once broker) is filled from storage, the system of record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

#: How long an event ahead of a gap waits for the missing ones before storage is asked.
REPAIR_DELAY_SECONDS = 0.2
#: Events a room may hold back; past this the gap is repaired at once.
HELD_MAX = 10_000

Release = Callable[[int, bytes], None]
Fetch = Callable[[int, int], Awaitable[list[tuple[int, bytes]]]]


class RoomOrder:
    """Releases message events of one room in seq order (see the module docstring).

    `release(seq, event)` hands an event to the room's sessions; `fetch(after_seq, limit)`
    reads `(seq, encoded event)` pairs from storage.
    """

    def __init__(self, release: Release, fetch: Fetch) -> None:
        self._release = release
        self._fetch = fetch
        self.last: int | None = None  # the highest seq released; None until the first event
        self._held: dict[int, bytes] = {}
        self._repair: asyncio.Task[None] | None = None
        # Set when too many events are held: the waiting repair starts at once.
        self._hurry = asyncio.Event()

    def receive(self, seq: int, event: bytes) -> None:
        if self.last is None or seq == self.last + 1:
            self._emit(seq, event)
            self._drain()
        elif seq > self.last + 1:
            self._held[seq] = event
            if len(self._held) > HELD_MAX:
                self._hurry.set()
            if self._repair is None:
                self._repair = asyncio.create_task(self._fill_gap())
        # seq <= last: already released (a repair read it from storage first)

    def close(self) -> None:
        if self._repair is not None:
            self._repair.cancel()
            self._repair = None

    def _emit(self, seq: int, event: bytes) -> None:
        self.last = seq
        self._release(seq, event)

    def _drain(self) -> None:
        if not self._held:  # the usual case: events arrive in order
            return
        assert self.last is not None
        while (event := self._held.pop(self.last + 1, None)) is not None:
            self._emit(self.last + 1, event)
        # Anything left behind the released seq is stale.
        for seq in [s for s in self._held if s <= self.last]:
            del self._held[seq]

    async def _fill_gap(self) -> None:
        try:
            # Most gaps fill by themselves within milliseconds; a room holding too many events
            # (the broker lost one in a flood) cuts the wait short.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._hurry.wait(), REPAIR_DELAY_SECONDS)
            while self._held and self.last is not None:
                first_held = min(self._held)
                if first_held > self.last + 1:
                    missing = first_held - self.last - 1
                    try:
                        fetched = await self._fetch(self.last, missing)
                    except Exception:
                        log.exception("reading missed messages from storage failed")
                        fetched = []
                    for seq, event in fetched:
                        if self.last is not None and seq == self.last + 1:
                            self._emit(seq, event)
                    if self.last is not None and self.last < first_held - 1:
                        # Storage did not have them: never stall; clients `sync` on the jump.
                        log.warning("seq gap %d..%d not in storage", self.last + 1, first_held - 1)
                        self.last = first_held - 1
                self._drain()
        finally:
            self._hurry.clear()
            self._repair = None
