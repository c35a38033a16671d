"""The outbox as the program sees it: queueing sends, managing them, waiting for their ack.

Every send is written to the device store (its local echo) before any network call, and
announced as `OutboxChanged(pending)`. What happens to it next is announced the same way:
*sent* (with the stored message), *failed* (with the server's reason), *cancelled*, and
*pending* again after an edit or a `resend`. The *sending* state (on the wire, no ack yet) is
kept in the store but not announced: it is a detail of the transport, and it goes back to
*pending* at every disconnect.

The sender (`chatcore.client.sender`) takes entries from the store; `lock` keeps it from taking
an entry while the program edits or cancels it (both need an entry never transmitted), and
`changed` wakes it (and `Client.sync`) whenever the outbox changes.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chatcore.client.errors import OutboxError
from chatcore.client.events import OutboxChanged
from chatcore.client.interfaces import DeviceStore
from chatcore.client.models import Message, OutboxEntry
from chatcore.client.stream import EventStream
from chatcore.clock import now_ms
from chatcore.models import MessageKind

__all__ = ["Outbox", "Signal", "new_entry", "send_frame"]

#: Acked refs remembered for `wait_sent` callers that come after the ack.
RECENT_ACKS = 1000

ON_ITS_WAY = "This message is already on its way; it can be edited or deleted once it is sent."


class Signal:
    """Wakes whoever waits for "something changed". A waiter takes `current()` before it
    looks at the state, then awaits it: a change in between is never missed."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def current(self) -> asyncio.Event:
        return self._event

    def notify(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()


def new_entry(
    room_id: str,
    *,
    kind: MessageKind = "text",
    body: str = "",
    media_id: str | None = None,
    sticker_id: str | None = None,
    reply_to: str | None = None,
    file_path: str | Path | None = None,
) -> OutboxEntry:
    """A fresh entry: a new ref, created now; its position is set by the store."""
    return OutboxEntry(
        ref=uuid.uuid4().hex,
        room_id=room_id,
        position=0,
        kind=kind,
        body=body,
        media_id=media_id,
        sticker_id=sticker_id,
        reply_to=reply_to,
        file_path=None if file_path is None else str(file_path),
        created_ts=now_ms(),
    )


class Outbox:
    """The outbox's operations and the waiters of `wait_sent`."""

    def __init__(self, store: DeviceStore, stream: EventStream) -> None:
        self.store = store
        self.stream = stream
        #: Held while choosing entries to transmit, and while editing or cancelling one.
        self.lock = asyncio.Lock()
        #: Notified whenever the outbox changes (queued, acked, failed, cancelled, resent).
        self.changed = Signal()
        self._waiters: dict[str, list[asyncio.Future[Message]]] = {}
        self._recent: OrderedDict[str, Message] = OrderedDict()

    # --- the program's operations ------------------------------------------------------------

    async def add(self, entry: OutboxEntry) -> OutboxEntry:
        stored = await self.store.outbox_add(entry)
        self.stream.publish(OutboxChanged(stored))
        self.changed.notify()
        return stored

    async def resend(self, ref: str) -> OutboxEntry:
        async with self.lock:
            entry = await self._get(ref)
            if entry.state != "failed":
                return entry  # queued already: nothing to do
            changed = await self.store.outbox_update(
                ref, state="pending", error_code=None, error_message=None
            )
        return self._changed(ref, changed)

    async def edit(self, ref: str, body: str) -> OutboxEntry:
        async with self.lock:
            entry = self._editable(await self._get(ref))
            if entry.kind != "text":
                raise OutboxError("Only a text message can be edited.", entry)
            # Editing a failed message is meant to fix it (a shorter text after too_large):
            # it is queued again, like a `resend`.
            changed = await self.store.outbox_update(
                ref, body=body, state="pending", error_code=None, error_message=None
            )
        return self._changed(ref, changed)

    async def cancel(self, ref: str) -> OutboxEntry:
        async with self.lock:
            self._editable(await self._get(ref))
            removed = await self.store.outbox_remove(ref)
        if removed is None:
            raise OutboxError(f"No message {ref} in the outbox.")
        cancelled = removed.model_copy(update={"state": "cancelled"})
        self.stream.publish(OutboxChanged(cancelled))
        self._fail_waiters(ref, OutboxError("The message was cancelled.", cancelled))
        self.changed.notify()
        return cancelled

    async def wait_sent(self, ref: str) -> Message:
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        # Registered before looking: an ack that lands meanwhile resolves it.
        self._waiters.setdefault(ref, []).append(future)
        try:
            if ref in self._recent:
                return self._recent[ref]
            entry = await self.store.outbox_get(ref)
            if future.done():
                return future.result()
            if entry is None:
                raise OutboxError(f"No message {ref} in the outbox.")
            if entry.state == "failed":
                raise OutboxError(_failure(entry), entry)
            return await future
        finally:
            waiters = self._waiters.get(ref, [])
            if future in waiters:
                waiters.remove(future)
            if not waiters:
                self._waiters.pop(ref, None)

    # --- what the engine reports -------------------------------------------------------------

    def acked(self, acked: Sequence[tuple[OutboxEntry, Message]]) -> None:
        """Entries the store removed because their message is stored: announce them *sent*."""
        for entry, message in acked:
            sent = entry.model_copy(update={"state": "sent"})
            self.stream.publish(OutboxChanged(sent, message))
            self.resolve(message)
        if acked:
            self.changed.notify()

    def resolve(self, message: Message) -> None:
        """The user's own `message` is stored: whoever waits for its ref gets it."""
        self._recent[message.ref] = message
        self._recent.move_to_end(message.ref)
        while len(self._recent) > RECENT_ACKS:
            self._recent.popitem(last=False)
        for future in self._waiters.pop(message.ref, []):
            if not future.done():
                future.set_result(message)

    async def fail(self, ref: str, code: str, message: str) -> OutboxEntry | None:
        """The server refused the entry for good: *failed*, with its reason."""
        entry = await self.store.outbox_update(
            ref, state="failed", error_code=code, error_message=message
        )
        if entry is not None:
            self.failed(entry)
        return entry

    def failed(self, entry: OutboxEntry) -> None:
        """Announce an entry that is *failed* in the store."""
        self.stream.publish(OutboxChanged(entry))
        self._fail_waiters(entry.ref, OutboxError(_failure(entry), entry))
        self.changed.notify()

    # --- inside ------------------------------------------------------------------------------

    async def _get(self, ref: str) -> OutboxEntry:
        entry = await self.store.outbox_get(ref)
        if entry is None:
            raise OutboxError(f"No message {ref} in the outbox.")
        return entry

    @staticmethod
    def _editable(entry: OutboxEntry) -> OutboxEntry:
        # Once transmitted, the server may have stored it: only the stored message can change.
        if entry.state == "failed" or (entry.state == "pending" and not entry.transmitted):
            return entry
        raise OutboxError(ON_ITS_WAY, entry)

    def _changed(self, ref: str, entry: OutboxEntry | None) -> OutboxEntry:
        if entry is None:  # acked or cancelled meanwhile (by another process of the device)
            raise OutboxError(f"No message {ref} in the outbox.")
        self.stream.publish(OutboxChanged(entry))
        self.changed.notify()
        return entry

    def _fail_waiters(self, ref: str, error: OutboxError) -> None:
        for future in self._waiters.pop(ref, []):
            if not future.done():
                future.set_exception(error)
                future.exception()  # retrieved here: a waiter that left never logs it


def _failure(entry: OutboxEntry) -> str:
    reason = entry.error_message or entry.error_code or "refused"
    return f"The message could not be sent: {reason}"


def send_frame(entry: OutboxEntry) -> dict[str, Any]:
    """The entry's `send` frame."""
    return {"type": "send", **entry.frame_fields()}
