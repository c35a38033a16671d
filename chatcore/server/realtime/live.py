"""What each WebSocket frame does after `ready` (docs/protocol.md, "WebSocket protocol").

Handlers get the session and the validated frame; errors they raise become `error` events
with the frame's `ref`, and the session goes on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from chatcore.errors import not_found
from chatcore.metrics import core_metrics
from chatcore.models import Stored
from chatcore.protocol.frames import (
    PingFrame,
    ReadFrame,
    SendFrame,
    SyncFrame,
    TypingFrame,
    encode,
    message_event,
)
from chatcore.ratelimit import TokenBucket
from chatcore.server import contacts, messages

if TYPE_CHECKING:
    from chatcore.server.realtime.session import Session

FrameHandler = Callable[["Session", Any], Awaitable[None]]

#: Catch-up reads storage in batches of this many messages per room: as many as one sync
#: sends by default (`max_sync_messages`), so that a room costs one query per sync.
SYNC_BATCH = 1000
#: Catch-up waits for the client to read (`Connection.drain`) after every this many bytes.
SYNC_DRAIN_BYTES = 64 * 1024
#: Typing events a session may send: a burst, then this many a second; the rest are dropped
#: (typing is a hint, so an error for each would only add noise).
TYPING_BURST, TYPING_RATE = 4, 2.0


async def ping(session: Session, frame: PingFrame) -> None:
    event: dict[str, Any] = {"type": "pong"}
    if frame.ref is not None:
        event["ref"] = frame.ref
    session.send(event)


async def send(session: Session, frame: SendFrame) -> None:
    """Check the send now, then let the session read its next frame while the message waits
    for its group commit: a client may pipeline sends. They are queued in the order read, so
    they keep their order; each `ack` follows its commit."""
    fields = {
        "ref": frame.ref,
        "kind": frame.kind,
        "body": frame.body,
        "media_id": frame.media_id,
        "sticker_id": frame.sticker_id,
        "reply_to": frame.reply_to,
    }
    prepared = await messages.prepare(session.app, session.user_id, frame.room_id, fields)
    if isinstance(prepared, Stored):
        session.send(ack_event(frame.ref, prepared))
    else:
        session.commit(frame.ref, prepared)


def ack_event(ref: str, stored: Stored) -> dict[str, Any]:
    return {"type": "ack", "ref": ref, "message": stored.message.wire()}


async def sync(session: Session, frame: SyncFrame) -> None:
    """Catch-up: missed messages per room in seq order, then `synced`. Live message events that
    arrive meanwhile wait and follow `synced`, minus those the catch-up already sent."""
    app, storage = session.app, session.app.storage
    limit = app.settings.limits.max_sync_messages
    session.begin_sync()
    synced: dict[str, int] = {}
    has_more: dict[str, bool] = {}
    # Rooms whose catch-up begins above seqs retention deleted: the first seq still there.
    first_seq: dict[str, int] = {}
    sent = 0  # messages the catch-up sent, all rooms (`chatcore_sync_messages`)
    try:
        for room_id, last_seq in (await storage.room_seqs(session.user_id)).items():
            start = frame.rooms.get(room_id, 0)
            highest, count = min(start, last_seq), 0
            while True:
                want = min(SYNC_BATCH, limit - count)
                # The room's last batch of this sync reads one message more: whether any are
                # left over (has_more), without a query of its own.
                final = want == limit - count
                batch = await storage.messages_after(room_id, highest, want + 1 if final else want)
                if len(batch) > want:
                    batch = batch[:want]
                    has_more[room_id] = True
                queued = 0
                for message in batch:
                    data = message_event(message)
                    session.send_encoded(data)
                    queued += len(data)
                    if queued >= SYNC_DRAIN_BYTES:
                        # A catch-up may be megabytes: never queue much more than this ahead
                        # of what the client reads (the send buffer's bound would close it).
                        await session.conn.drain()
                        queued = 0
                if batch:
                    if not count and batch[0].seq > highest + 1:
                        first_seq[room_id] = batch[0].seq  # seqs are gapless: these were deleted
                    highest, count = batch[-1].seq, count + len(batch)
                    sent += len(batch)
                if final or len(batch) < want:
                    break
            if not count and highest < last_seq:
                first_seq[room_id] = last_seq + 1  # every message above the cursor was deleted
            synced[room_id] = highest
            if frame.since_ts is not None and start > 0:
                for message in await storage.updated_since(room_id, frame.since_ts, start):
                    session.send_encoded(messages.updated_event(message))
        event: dict[str, Any] = {"type": "synced", "rooms": synced, "has_more": has_more}
        if first_seq:
            event["first_seq"] = first_seq
        if frame.ref is not None:
            event["ref"] = frame.ref
        session.send(event)
        core_metrics(app).sync_messages.observe(sent)
    finally:
        session.end_sync(synced)


async def typing(session: Session, frame: TypingFrame) -> None:
    if frame.room_id not in session.rooms:
        raise not_found("This room")
    if session.typing_bucket.take():
        core_metrics(session.app).rate_limited.labels("typing").value += 1
        return
    hub = session.app.hub
    blocked_with = await hub.blocks.of(session.user_id)  # kept in memory: no storage read
    if blocked_with:
        # Typing into a direct room across a block is refused (one lookup in a direct room,
        # none in a group); a user with no block at all cannot be refused.
        await contacts.check_send(session.app, session.user_id, frame.room_id)
    event = encode(
        {
            "type": "typing",
            "room_id": frame.room_id,
            "user_id": session.user_id,
            "active": frame.active,
        }
    )
    # Nobody on the other side of a block sees it (in a group; a direct room refused it above).
    await hub.publish_room(frame.room_id, event, skip_user=session.user_id, hide_from=blocked_with)


async def read(session: Session, frame: ReadFrame) -> None:
    await messages.mark_read(session.app, session.user_id, frame.room_id, frame.seq)


FRAME_HANDLERS: dict[str, FrameHandler] = {
    "ping": ping,
    "send": send,
    "sync": sync,
    "typing": typing,
    "read": read,
}


def typing_bucket() -> TokenBucket:
    return TokenBucket(TYPING_RATE, TYPING_BURST)


__all__ = ["FRAME_HANDLERS", "FrameHandler", "ack_event", "typing_bucket"]
