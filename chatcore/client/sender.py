"""The sender: the outbox written to one connection, in order, a window at a time.

It runs while a connection is up (catching up or ready). It takes the pending entries in
position order, at most `send_window` in flight, marks each window transmitted in the device
store (`outbox_transmitted`) before writing its `send` frames, and frees a slot when the entry's
`ack` (or its own `message` event) arrives. A file queued with `send_file` is uploaded first,
then sent as a media message; the entries after it wait, so the room's order holds.

When the server states its flood control (`ws_rate_per_second`, `ws_rate_burst` in
`/api/v1/info`), sends are paced below it (`paced_below`), keeping room for the connection's
other frames (pings, catch-up, receipts), so the server seldom refuses one. Pacing alone cannot
keep the order, though: the server's bucket refills by its own clock, so a frame it refuses and
a later one it reads a little later may meet a different bucket. So a send is written behind
another only while the flood control surely lets it through (`chatcore.client.flood`: a floor
under the server's bucket, from the frames written and the answers read); a send it might
refuse goes alone, and nothing is written after it until its answer arrives. A refused send is
then never overtaken: every send written before it was sure to be accepted, and none after it.

Errors the server answers with an entry's ref:

- `rate_limited`: nothing more is written for `retry_after_ms`; then that entry and every
  later one written on this connection are written again, in order, with the same refs; the
  window is 1 until the next ack (a burst at once would meet the flood control again), then
  doubles with each ack back to `send_window`;
- `internal`, `unavailable`: the same, after a backoff that grows while they repeat (these
  refusals are per frame too, and the server gives no floor for them: a later send written
  before such an answer came may have been stored before the refused one);
- any other code (`forbidden`, `not_found`, `too_large`, ...): the entry becomes *failed* with
  the server's reason, and the others go on.

When the connection ends, whatever is in flight goes back to *pending* (the connection does
that) and the next connection sends it again with the same refs: the server stores a ref once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from chatcore.client.errors import ApiError, ApiUnavailable
from chatcore.client.flood import FloodFloor
from chatcore.client.media import MediaClient
from chatcore.client.models import OutboxEntry
from chatcore.client.outbox import Outbox, Signal, send_frame
from chatcore.failures import reason
from chatcore.ratelimit import TokenBucket

__all__ = ["RETRIED_CODES", "Sender", "paced_below"]

log = logging.getLogger(__name__)

#: Error codes after which an entry is sent again later (the others fail it).
RETRIED_CODES = frozenset({"rate_limited", "internal", "unavailable"})
#: With sends in flight, the window is refilled at most this often (see `_send_some`).
COALESCE_SECONDS = 0.005
#: The outbox is read again at least this often: another process of the device (the push
#: handler) may have queued a send.
POLL_SECONDS = 5.0

#: Writes a frame on the connection; the frame's position there (counted by its `FloodFloor`).
Write = Callable[[dict[str, Any]], Awaitable[int]]


class Sender:
    """Sends the outbox on one connection (see the module's doc)."""

    def __init__(
        self,
        outbox: Outbox,
        media: MediaClient,
        write: Write,
        *,
        window: int,
        retry_min: float,
        retry_max: float,
        pace: TokenBucket | None = None,
        flood: FloodFloor | None = None,
    ) -> None:
        self.outbox = outbox
        #: Sends paced below the server's flood control, when it says what that is.
        self._pace = pace
        #: What the server's flood control surely lets through (the connection counts frames).
        self._flood = flood or FloodFloor()
        self.store = outbox.store
        self.media = media
        self._write = write
        self._window = window
        self._retry_min = retry_min
        self._retry_max = retry_max
        #: Refs written and not answered yet, in the order written.
        self._in_flight: dict[str, None] = {}
        #: Every ref written on this connection (a late error for one sent again is stale).
        self._written: set[str] = set()
        #: Transmitted entries to write again (after `rate_limited`, `internal`, ...).
        self._again: set[str] = set()
        #: Where each ref was first written on this connection (see `FloodFloor.answered`).
        self._positions: dict[str, int] = {}
        #: A send the flood control might refuse: nothing is written after it until answered.
        self._alone: str | None = None
        self._answered = Signal()
        self._limit = window
        self._resume_at = 0.0
        self._refilled_at = 0.0
        self._failures = 0

    async def run(self) -> None:
        """Send until cancelled (the connection's end)."""
        loop = asyncio.get_running_loop()
        while True:
            wake = self.outbox.changed.current()
            if await self._send_some():
                continue
            timeout = POLL_SECONDS
            if self._resume_at > loop.time():
                timeout = min(timeout, self._resume_at - loop.time())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await wake.wait()

    # --- answers -----------------------------------------------------------------------------

    def done(self, ref: str) -> None:
        """`ref` is acked (or its message arrived): its slot is free, and a window shrunk by a
        refusal grows back, doubling with each ack (a burst at once would meet the flood
        control again, and the more frames one burst holds, the likelier that one refused
        frame is overtaken by a later one the server accepts after a refill)."""
        if ref in self._in_flight:
            self._settled(ref)
            del self._in_flight[ref]
            self._limit = min(self._limit * 2, self._window)
            self._failures = 0
            self.outbox.changed.notify()

    async def refused(self, ref: str, code: str, message: str, retry_after_ms: Any) -> bool:
        """An `error` frame with `ref`: True when it answers one of this sender's frames."""
        if ref not in self._in_flight:
            if ref not in self._written:
                return False
            self._settled(ref)  # a late answer to a frame written again since
            return True
        self._settled(ref)
        if code == "rate_limited":
            wait = retry_after_ms if isinstance(retry_after_ms, int | float) else 1000
            self._again_from(ref, max(float(wait), 1.0) / 1000)
        elif code in RETRIED_CODES:
            self._failures += 1
            delay = min(self._retry_min * 2 ** (self._failures - 1), self._retry_max)
            log.info("outbox: %s refused with %s; sent again in %.2fs", ref, code, delay)
            self._again_from(ref, delay)
        else:
            del self._in_flight[ref]
            await self.outbox.fail(ref, code, message)
        return True

    def _settled(self, ref: str) -> None:
        """The server answered a frame of `ref`: it read it, which raises the flood floor."""
        position = self._positions.get(ref)
        if position is not None:
            # The first position: a late answer to an earlier write of the same ref is exact,
            # and for a later write it is a floor too (the frame stood further back).
            self._flood.answered(position, asyncio.get_running_loop().time())
        if ref == self._alone:
            self._alone = None
        self._answered.notify()

    # --- sending -----------------------------------------------------------------------------

    def _again_from(self, ref: str, delay: float) -> None:
        """Write `ref` and every frame written after it again, in order, after `delay`."""
        refs = list(self._in_flight)
        for later in refs[refs.index(ref) :]:
            del self._in_flight[later]
            self._again.add(later)
        self._limit = 1
        loop = asyncio.get_running_loop()
        self._resume_at = max(self._resume_at, loop.time() + delay)
        self.outbox.changed.notify()

    async def _send_some(self) -> bool:
        """Write what the window allows; True when more can be done at once."""
        loop = asyncio.get_running_loop()
        if self._resume_at > loop.time() or self._alone is not None:
            return False
        free = self._limit - len(self._in_flight)
        if self._in_flight:
            # With frames in flight, the window is refilled by halves, and at most every
            # COALESCE_SECONDS: sends queued meanwhile go together, in one write to the store
            # (each refill reads the outbox, which may be long, and marks what it sends).
            if free < self._limit / 2:
                return False
            if loop.time() < self._refilled_at + COALESCE_SECONDS:
                self._resume_at = self._refilled_at + COALESCE_SECONDS
                return False
        if free <= 0:
            return False
        self._refilled_at = loop.time()
        window: list[OutboxEntry] = []
        upload: OutboxEntry | None = None
        file_next = False  # the window stops before a file to upload
        async with self.outbox.lock:  # no edit or cancel between choosing and marking
            # Only the head of the outbox: every entry this connection has on the wire or
            # must write again, the free slots, and one more (a file that ends the window).
            head = len(self._in_flight) + len(self._again) + free + 1
            for entry in await self.store.outbox(unsent_only=True, limit=head):
                if entry.ref in self._in_flight:
                    continue
                if entry.state != "pending" and entry.ref not in self._again:
                    continue
                if entry.file_path is not None:
                    if window:
                        file_next = True
                    else:
                        upload = entry
                    break
                unsure = not self._flood.sure(loop.time(), ahead=len(window))
                if unsure and window:
                    break  # it goes alone, after these
                if self._pace is not None and (wait := self._pace.take()) > 0:
                    self._resume_at = loop.time() + wait
                    break
                window.append(entry)
                if unsure or len(window) >= free:
                    break
            if window:
                await self.store.outbox_transmitted([e.ref for e in window])
                for entry in window:
                    self._in_flight[entry.ref] = None
                    self._written.add(entry.ref)
                    self._again.discard(entry.ref)
        await self._write_window(window)
        if upload is not None:
            return await self._upload(upload)
        return file_next

    async def _write_window(self, window: list[OutboxEntry]) -> None:
        """Write the window's frames in order; one the flood control might refuse goes alone.

        Whether a frame is sure is decided as it is written (other frames, a ping, typing,
        may have gone since the window was chosen), with no await between deciding and the
        connection counting it.
        """
        loop = asyncio.get_running_loop()
        for entry in window:
            while True:  # one that might be refused is on the wire: nothing goes behind it
                answered = self._answered.current()
                if self._alone is None:
                    break
                await answered.wait()
            if entry.ref in self._again:
                return  # an earlier one was refused: this one and the rest go again later
            if entry.ref not in self._in_flight:
                continue  # settled meanwhile (its message arrived from another device)
            if not self._flood.sure(loop.time()):
                self._alone = entry.ref
            position = await self._write(send_frame(entry))
            self._positions.setdefault(entry.ref, position)

    async def _upload(self, entry: OutboxEntry) -> bool:
        """Upload the file of `entry`, then keep its media id; True when it may go on."""
        assert entry.file_path is not None
        path = Path(entry.file_path)
        try:
            media = await self.media.upload(path, filename=path.name)
        except ApiUnavailable as exc:
            return self._pause_upload(entry, str(exc))
        except ApiError as exc:
            if exc.code in RETRIED_CODES or exc.status == 401:
                wait = exc.retry_after if exc.retry_after is not None else None
                return self._pause_upload(entry, exc.message, wait)
            await self.outbox.fail(entry.ref, exc.code, exc.message)
            return True
        except OSError as exc:
            await self.outbox.fail(
                entry.ref, "not_found", f"The file {path.name} cannot be read: {reason(exc)}."
            )
            return True
        await self.store.outbox_update(entry.ref, media_id=media.id, file_path=None)
        return True

    def _pause_upload(self, entry: OutboxEntry, why: str, wait: float | None = None) -> bool:
        self._failures += 1
        delay = wait or min(self._retry_min * 2 ** (self._failures - 1), self._retry_max)
        log.info("outbox: upload of %s failed (%s); tried again in %.2fs", entry.ref, why, delay)
        self._resume_at = asyncio.get_running_loop().time() + delay
        return False


#: Of the server's flood control, the share of the rate and what the burst keeps back for the
#: connection's other frames (pings, `sync`, typing, receipts).
PACE_RATE_SHARE = 0.9
PACE_BURST_RESERVE = 10.0


def paced_below(limits: Mapping[str, float]) -> TokenBucket | None:
    """A token bucket just under the server's WebSocket flood control, None when unknown."""
    rate = limits.get("ws_rate_per_second")
    burst = limits.get("ws_rate_burst")
    if not rate or not burst:
        return None
    return TokenBucket(rate * PACE_RATE_SHARE, max(1.0, burst - PACE_BURST_RESERVE))
