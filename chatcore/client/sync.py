"""Catch-up: after every (re)connect, every message the device missed, stored exactly once.

A round sends `{"type": "sync", "ref", "rooms": <cursors>, "since_ts"?}`, where each room's
cursor is the highest seq up to which the device store holds every message (rooms the store
lacks are caught up from 0 by the server). Every `message` frame between the `sync` and its
`synced` belongs to the catch-up: they are collected and committed in ONE `add_messages` when
`synced` arrives, and the store advances the cursors in that same transaction, so a crash in
between loses nothing (the cursors did not move) and stores nothing twice (messages are keyed
by room and seq). `message_updated` frames before `synced` (edits and deletions made since
`since_ts`) update the stored messages at once. Rooms in `has_more` get another `sync` from
their new cursors, until none is left. A room whose oldest messages the server deleted
(retention) is named in `synced`'s `first_seq`: its cursor first jumps the deleted seqs.

Until the round is complete, live messages and acks wait too, and are committed with the batch
that reaches them: an ack may come long before the catch-up of the seqs below it, and each
room's messages are announced in seq order (the live ones as `live`).

`since_ts` is when the previous round started, minus `SINCE_MARGIN_MS` for the difference
between this device's clock and the server's; it is kept in the device store's settings under
the engine's reserved key (`"engine": {"sync_since_ts": ...}`), saved once a round completed.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from chatcore.client.events import MessageUpdated
from chatcore.client.inbox import Inbox
from chatcore.client.interfaces import DeviceStore
from chatcore.client.models import Message
from chatcore.client.stream import EventStream
from chatcore.clock import now_ms

__all__ = ["ENGINE_SETTINGS_KEY", "SINCE_MARGIN_MS", "CatchUp", "store_update"]

log = logging.getLogger(__name__)

#: The device settings key the engine keeps its own state under.
ENGINE_SETTINGS_KEY = "engine"
#: `since_ts` is moved back by this much: edits stamped by a server whose clock is behind
#: this device's still count as "since".
SINCE_MARGIN_MS = 5 * 60_000
#: A `sync` the server refused for another reason than flood control is sent again after
#: this many seconds, doubled each time up to `SYNC_RETRY_MAX_SECONDS`.
SYNC_RETRY_SECONDS = 0.5
SYNC_RETRY_MAX_SECONDS = 30.0

Write = Callable[[dict[str, Any]], Awaitable[object]]


async def store_update(store: DeviceStore, stream: EventStream, message: Message) -> None:
    """An edit or deletion: replace the stored message, announce it when the device had it
    (one it lacks comes with the next catch-up, already edited)."""
    if await store.update_message(message):
        stream.publish(MessageUpdated(message))


class CatchUp:
    """The catch-up rounds of one connection."""

    def __init__(self, store: DeviceStore, inbox: Inbox, stream: EventStream, write: Write):
        self.store = store
        self.inbox = inbox
        self.stream = stream
        self._write = write
        #: The ref of the `sync` awaiting its `synced`, None between syncs.
        self._ref: str | None = None
        self._sent_cursors: dict[str, int] = {}
        #: Messages waiting for a `synced`, by (room, seq); `_live` holds the ids of those
        #: that came as live events or acks rather than as catch-up.
        self._batch: dict[tuple[str, int], Message] = {}
        self._live: set[str] = set()
        self._round_started_ts: int | None = None
        self._holding = False
        self._since: int | None = None
        self._refusals = 0
        self._retry: asyncio.Task[None] | None = None

    @property
    def collecting(self) -> bool:
        """Whether a `sync` awaits its `synced` (its messages are catch-up, not live)."""
        return self._ref is not None

    @property
    def holding(self) -> bool:
        """Whether a round runs: every arriving message waits for its commit, so that each
        room's messages are stored and announced in seq order (an ack may come long before
        the catch-up below it)."""
        return self._holding

    async def begin(self) -> None:
        """Start a round: the first `sync`, with `since_ts` of the last completed round."""
        self._round_started_ts = now_ms()
        self._holding = True
        settings = await self.store.get_settings()
        engine = settings.get(ENGINE_SETTINGS_KEY)
        since = engine.get("sync_since_ts") if isinstance(engine, dict) else None
        await self._send(since if isinstance(since, int) else None)

    def hold(self, message: Message, *, live: bool) -> None:
        """Keep `message` for the next commit (once per room and seq)."""
        key = (message.room_id, message.seq)
        if key not in self._batch:
            self._batch[key] = message
            if live:
                self._live.add(message.id)

    async def updated(self, message: Message) -> None:
        """An edit or deletion: of a stored message, or of one held but not committed yet
        (it is committed as edited)."""
        key = (message.room_id, message.seq)
        if key in self._batch:
            self._batch[key] = message
        else:
            await store_update(self.store, self.stream, message)

    async def synced(self, frame: dict[str, Any]) -> bool:
        """Commit what the `sync` this answers brought; True once the round is complete."""
        if frame.get("ref") != self._ref:
            return False  # not the answer to this connection's sync
        self._ref = None
        self._refusals = 0
        await self._skip_deleted(frame.get("first_seq"))
        has_more = frame.get("has_more")
        more = {r for r, v in has_more.items() if v} if isinstance(has_more, dict) else set()
        if more:
            # Live messages of a room with more to catch up lie above what is still missing:
            # they wait for the batch that fills the gap.
            await self._commit(lambda message: message.id in self._live and message.room_id in more)
            cursors = await self.store.cursors()
            moved = [r for r in more if cursors.get(r, 0) > self._sent_cursors.get(r, 0)]
            if moved:
                await self._send(None, cursors)
                return False
            # The server says there is more but nothing it sent moved a cursor: asking again
            # would get the same answer forever.
            log.warning("catch-up: rooms %s have more, but their cursors do not move", more)
        await self._commit(lambda message: False)
        self._holding = False
        if self._round_started_ts is not None:
            since = self._round_started_ts - SINCE_MARGIN_MS
            await self.store.patch_settings({ENGINE_SETTINGS_KEY: {"sync_since_ts": since}})
        return True

    async def _skip_deleted(self, first_seq: object) -> None:
        """Rooms whose catch-up started above deleted seqs (retention): their cursors jump
        those, or they would wait forever for messages that are gone."""
        if not isinstance(first_seq, dict):
            return
        for room_id, seq in first_seq.items():
            if isinstance(room_id, str) and isinstance(seq, int) and not isinstance(seq, bool):
                await self.store.skip_deleted(room_id, seq)

    async def _commit(self, keep: Callable[[Message], bool]) -> None:
        """Store the held messages but those `keep` says wait, each room's in seq order."""
        now = sorted((k for k, m in self._batch.items() if not keep(m)))
        if not now:
            return
        messages = [self._batch.pop(key) for key in now]
        live = {m.id for m in messages if m.id in self._live}
        self._live -= live
        await self.inbox.add(messages, live=False, live_ids=live)

    def refused(self, ref: str | None, code: str, retry_after_ms: Any) -> bool:
        """An `error` frame: True when it refused this connection's `sync`, which is then sent
        again after the wait the server asked for (or a growing one)."""
        if ref is None or ref != self._ref:
            return False
        # What was collected stays: live messages that came before the server read the sync,
        # committed with the batch of the sync sent again.
        self._refusals += 1
        if code == "rate_limited" and isinstance(retry_after_ms, int | float):
            delay = max(float(retry_after_ms), 1.0) / 1000
        else:
            delay = min(SYNC_RETRY_SECONDS * 2 ** (self._refusals - 1), SYNC_RETRY_MAX_SECONDS)
        log.info("catch-up: sync refused (%s); again in %.2fs", code, delay)
        self._retry = asyncio.create_task(self._send_later(delay, ref))
        return True

    def close(self) -> None:
        """The connection ended: stop a planned retry."""
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None

    async def _send_later(self, delay: float, ref: str) -> None:
        await asyncio.sleep(delay)
        if self._ref != ref:
            return
        try:
            await self._send_frame(ref, self._sent_cursors, self._since)
        except Exception as exc:  # the connection is going: the next one starts a new round
            log.debug("catch-up: sync not sent again: %r", exc)

    async def _send(self, since_ts: int | None, cursors: dict[str, int] | None = None) -> None:
        if cursors is None:
            cursors = await self.store.cursors()
        ref = uuid.uuid4().hex
        self._ref = ref
        self._sent_cursors = cursors
        self._since = since_ts
        await self._send_frame(ref, cursors, since_ts)

    async def _send_frame(self, ref: str, cursors: dict[str, int], since_ts: int | None) -> None:
        frame: dict[str, Any] = {"type": "sync", "ref": ref, "rooms": cursors}
        if since_ts is not None:
            frame["since_ts"] = since_ts
        await self._write(frame)
