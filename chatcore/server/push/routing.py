"""Who gets a push for a new message, and what it says.

After a batch of messages is stored and delivered, the node that stored it (`publish_new`)
routes it in the background: for each message, the room's members other than the sender who
have no live session on any node (`Hub.is_online`, which knows the cluster), with at least one
device of a platform an adapter serves, get one push each; `chatcore_notify` (their settings
included, see `chatcore.push_rules`) may change or veto it; what is left goes into the durable
push queue, one entry per device, in one write per batch. A node that sends hands what fits
its dispatcher's free slots straight to it, queued as claimed (so the queue keeps them should
the node die, and no claim is needed); the rest is due at once, and the dispatcher (this
node's, or with `[push] send = false` the sending nodes') is woken to claim it. One storage
read per batch (`push_audience`) gives the rooms and their members with devices.

A push is made from the message, never from the client's words about it: the sender's display
name, the room's name, and a preview of at most `[push] preview_chars` characters. A user who
blocks the sender gets none (a blocked member's group messages reach them, but never their
lock screen).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Collection, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from chatcore.clock import now_ms
from chatcore.hooks import call_decision
from chatcore.models import ClaimedPush, Device, Message, PushTarget, QueuedPush, Room, User
from chatcore.server.push.rules import id_only

if TYPE_CHECKING:
    from chatcore.server.app import App
    from chatcore.server.push.dispatch import PushDispatcher

log = logging.getLogger(__name__)

#: What a preview says for messages without text.
_KIND_PREVIEWS = {"media": "Sent a file", "sticker": "Sent a sticker"}


def mentions(body: str, username: str) -> bool:
    """True when `body` names the user as `@username` (any case, not inside a longer name)."""
    pattern = rf"(?<![\w@])@{re.escape(username)}(?![\w.-]*\w)"
    return re.search(pattern, body, re.IGNORECASE) is not None


def preview_of(message: Message, chars: int) -> str:
    text = message.body if message.kind == "text" else _KIND_PREVIEWS.get(message.kind, "")
    text = " ".join(text.split())  # one line: notifications show one
    return text if len(text) <= chars else text[: max(0, chars - 1)].rstrip() + "…"


def make_push(
    message: Message, room: Room, sender: User | None, recipient: User, preview_chars: int
) -> dict[str, Any]:
    """The push of `message` for `recipient`, with everything it may say (see PushAdapter)."""
    direct = room.kind == "direct"
    push: dict[str, Any] = {
        "type": "message",
        "room_id": message.room_id,
        "message_id": message.id,
        "seq": message.seq,
        "ts": message.ts,
        "sender_id": message.sender_id,
    }
    if sender is not None:
        push["sender_name"] = sender.display_name or sender.username
    if room.name:
        push["room_name"] = room.name
    push["preview"] = preview_of(message, preview_chars)
    push["direct"] = direct
    push["mention"] = message.kind == "text" and mentions(message.body, recipient.username)
    return push


async def route(app: App, dispatcher: PushDispatcher, messages: Sequence[Message]) -> None:
    """Queue the pushes of these new messages (see the module docstring); never raises.

    One routing at a time: batches stored while one is routed wait and are then routed
    together, with one read and one write for all of them. Under load that makes the push
    work per message smaller, not larger; idle, a batch is routed at once."""
    dispatcher.unrouted.extend(messages)
    if dispatcher.routing:
        return  # the routing under way takes them next
    dispatcher.routing = True
    try:
        while dispatcher.unrouted:
            batch, dispatcher.unrouted = dispatcher.unrouted, []
            try:
                pushes = await _pushes_for(app, dispatcher, batch)
                if pushes:
                    await _queue(app, dispatcher, pushes)
            except Exception:
                log.exception("routing the pushes of %d messages failed", len(batch))
    finally:
        dispatcher.routing = False


#: A push decided: its device, what it says, and when its message was made.
Decided = tuple[Device, dict[str, Any], int]


async def _queue(app: App, dispatcher: PushDispatcher, pushes: list[Decided]) -> None:
    """Queue `pushes` in one write: those the dispatcher has free slots for as claimed by
    this node (due when their lease ends, one try counted), then sent at once; the others
    due now, for a claim."""
    now = now_ms()
    at_once = dispatcher.reserve(len(pushes))
    leased_until = now + dispatcher.lease_ms
    queued = [
        QueuedPush(
            id=uuid.uuid4().hex,
            device_id=device.id,
            push=push,
            due_ts=leased_until if index < at_once else now,
            created_ts=created_ts,
            attempts=1 if index < at_once else 0,
        )
        for index, (device, push, created_ts) in enumerate(pushes)
    ]
    try:
        await app.storage.enqueue_pushes(queued)
    except BaseException:
        dispatcher.release(at_once)
        raise
    if at_once:
        dispatcher.send_now(
            [
                ClaimedPush(
                    id=entry.id,
                    device=device,
                    push=entry.push,
                    attempts=1,
                    created_ts=entry.created_ts,
                )
                for entry, (device, _, _) in zip(queued[:at_once], pushes, strict=False)
            ]
        )
    if at_once < len(queued):
        await dispatcher.queued()


async def _pushes_for(
    app: App, dispatcher: PushDispatcher, messages: Sequence[Message]
) -> list[Decided]:
    storage, settings = app.storage, app.settings.push
    messages = [m for m in messages if m.kind != "system"]
    if not messages:
        return []
    audience = await storage.push_audience(sorted({m.room_id for m in messages}))
    rooms = audience.rooms
    # Who is offline, read once per message: the pushes are decided on that one view.
    offline = {
        m.id: list(_offline_members(app, rooms[m.room_id], m.sender_id))
        for m in messages
        if m.room_id in rooms
    }
    targets: dict[str, PushTarget] = {}
    for user_id in {user_id for users in offline.values() for user_id in users}:
        target = audience.targets.get(user_id)
        served = [d for d in target.devices if dispatcher.serves(d.platform)] if target else []
        if target is not None and served:
            targets[user_id] = target.model_copy(update={"devices": served})
    if not targets:
        return []
    sender_ids = {m.sender_id for m in messages}
    senders = await _users(app, sender_ids)
    blockers = await _blockers(app, sender_ids, targets)
    queued: list[Decided] = []
    for message in messages:
        room = rooms.get(message.room_id)
        if room is None:
            continue
        spared = blockers.get(message.sender_id, ())
        for user_id in offline[message.id]:
            recipient = targets.get(user_id)
            if recipient is None or user_id in spared:
                continue
            push = make_push(
                message,
                room,
                senders.get(message.sender_id),
                recipient.user,
                settings.preview_chars,
            )
            decided = await call_decision(
                app.hook.chatcore_notify,
                "push",
                push,
                app=app,
                user_id=user_id,
                settings=recipient.settings,
                message=message,
            )
            if not isinstance(decided, dict):
                dispatcher.count_vetoed()
                continue
            if settings.privacy == "id_only":
                decided = id_only(decided)
            queued.extend((device, decided, message.ts) for device in recipient.devices)
    return queued


def _offline_members(app: App, room: Room, sender_id: str) -> Iterable[str]:
    return (
        user_id
        for user_id in room.member_ids
        if user_id != sender_id and not app.hub.is_online(user_id)
    )


async def _blockers(
    app: App, sender_ids: Iterable[str], targets: Collection[str]
) -> dict[str, set[str]]:
    """Per sender, the targets who block them: no push of the sender's messages reaches a
    blocker's devices (the blocked user still gets pushes of the blocker's group messages, so
    nothing tells them of the block). The senders' block sets are the hub's; storage is read
    only for a target with a block between them and the sender, for its direction."""
    found: dict[str, set[str]] = {}
    for sender_id in sender_ids:
        for user_id in (await app.hub.blocks.of(sender_id)).intersection(targets):
            blocks_sender, _ = await app.storage.block_state(user_id, sender_id)
            if blocks_sender:
                found.setdefault(sender_id, set()).add(user_id)
    return found


async def _users(app: App, user_ids: Iterable[str]) -> dict[str, User]:
    found: dict[str, User] = {}
    for user_id in user_ids:
        user = await app.storage.get_user(user_id)
        if user is not None:
            found[user_id] = user
    return found
