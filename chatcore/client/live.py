"""What each frame from the server does on the device, once the connection is authenticated.

Frames are handled in arrival order, all those read and not handled yet at once: each change
is written to the device store first, then announced on the event stream, and consecutive
messages and acks are stored in one transaction. Frame types this client does not know are
ignored (a newer server may send more), and so is a frame it cannot read (logged): one odd
frame never ends the connection.

- `message`: while a catch-up round runs, held for its commit (catch-up between a `sync` and
  its `synced`, live otherwise); else stored at once (`MessageReceived(live=True)`). The
  user's own message also settles its outbox entry.
- `ack`: its message stored the same way (the local echo becomes the message, whichever of the
  ack and the message arrives first), and its slot in the send window freed.
- `message_updated`: the stored message replaced (`MessageUpdated`).
- `synced`: the catch-up batch committed; the connection is ready once no room has more.
- `room`: saved, or forgotten when the user is no longer a member (`RoomChanged`).
- `contact`: contacts and invitations read again over REST (`ContactChanged`).
- `presence`, `typing`, `receipt`: recorded where the device keeps them, then announced.
- `error` with the ref of a send or of the catch-up's `sync`: handled by those; others are a
  `ServerError` event.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pydantic import ValidationError

from chatcore.client.api import Api
from chatcore.client.errors import ApiError, ApiUnavailable
from chatcore.client.events import (
    ContactChanged,
    PresenceChanged,
    ReceiptChanged,
    RoomChanged,
    ServerError,
    TypingChanged,
)
from chatcore.client.inbox import Inbox
from chatcore.client.interfaces import DeviceStore
from chatcore.client.models import Contact, Invitation, Message, Room, User
from chatcore.client.outbox import Outbox
from chatcore.client.sender import Sender
from chatcore.client.stream import EventStream
from chatcore.client.sync import CatchUp

__all__ = ["PING_REF_PREFIX", "LiveFrames", "contact_changed", "forget_room", "refresh_contacts"]

#: The refs of the connection's pings start with this: an error answering one (flood control)
#: concerns nobody.
PING_REF_PREFIX = "ping-"

log = logging.getLogger(__name__)

Frame = dict[str, Any]


async def refresh_contacts(store: DeviceStore, api: Api) -> list[Contact]:
    """Contacts and pending invitations, read again from the server into the device store."""
    contacts = await api.contacts()
    await store.save_contacts(contacts)
    incoming, outgoing = await api.invitations()
    await store.save_invitations(incoming, outgoing)
    # Their names, for rooms and messages: kept with the other users the device has seen.
    people = {c.user.id: c.user for c in contacts}
    for invitation in (*incoming, *outgoing):
        people.update({u.id: u for u in (invitation.from_user, invitation.to_user)})
    await store.save_users(list(people.values()))
    return contacts


def contact_changed(
    event: str,
    invitation: Invitation | None,
    user: User | None,
    contacts: Sequence[Contact],
    me: str,
) -> ContactChanged:
    """The `ContactChanged` for a contact event or action, with the other party's contact
    from `contacts` (the lists just read) when they are one."""
    other = user.id if user is not None else None
    if other is None and invitation is not None:
        parties = (invitation.from_user, invitation.to_user)
        other = next((u.id for u in parties if u.id != me), None)
    contact = next((c for c in contacts if c.user.id == other), None)
    return ContactChanged(event, invitation, user, contact)


async def forget_room(store: DeviceStore, outbox: Outbox, room_id: str) -> None:
    """Forget a room the user left; its queued sends become *failed*, and are announced so."""
    queued = await store.outbox(room_id=room_id)
    await store.forget_room(room_id)
    await announce_failed(store, outbox, [e.ref for e in queued if e.state != "failed"])


async def announce_failed(store: DeviceStore, outbox: Outbox, refs: list[str]) -> None:
    """Announce the entries among `refs` that the store has made *failed*."""
    for ref in refs:
        entry = await store.outbox_get(ref)
        if entry is not None and entry.state == "failed":
            outbox.failed(entry)


class LiveFrames:
    """Handles the frames of one connection after `ready`."""

    def __init__(
        self,
        *,
        store: DeviceStore,
        api: Api,
        stream: EventStream,
        inbox: Inbox,
        outbox: Outbox,
        catchup: CatchUp,
        sender: Sender,
        me: str,
        caught_up: Callable[[], None],
    ) -> None:
        self.store = store
        self.api = api
        self.stream = stream
        self.inbox = inbox
        self.outbox = outbox
        self.catchup = catchup
        self.sender = sender
        self.me = me
        self._caught_up = caught_up
        self._handlers: dict[str, Callable[[Frame], Awaitable[None]]] = {
            "message": self._message,
            "ack": self._ack,
            "message_updated": self._message_updated,
            "synced": self._synced,
            "room": self._room,
            "contact": self._contact,
            "presence": self._presence,
            "typing": self._typing,
            "receipt": self._receipt,
            "error": self._error,
        }

        #: Live messages (and acks) read but not stored yet: stored together by `_flush`.
        self._arrived: list[Message] = []

    async def handle(self, frames: list[Frame]) -> None:
        """Handle frames in order. Consecutive live messages and acks are stored in one
        transaction: under load (a burst of acks, a busy room) the device keeps up."""
        for frame in frames:
            kind = str(frame.get("type"))
            handler = self._handlers.get(kind)
            if handler is None:
                continue  # `pong`, or a type this client does not know
            if kind not in ("message", "ack"):
                await self._flush()
            try:
                await handler(frame)
            except (ValidationError, KeyError, TypeError) as exc:
                log.warning("ignored a %r frame this client cannot read: %s", kind, exc)
        await self._flush()

    async def _flush(self) -> None:
        arrived, self._arrived = self._arrived, []
        if arrived:
            await self.inbox.add(arrived, live=True)

    async def _message(self, frame: Frame) -> None:
        message = Message.model_validate(frame["message"])
        if self.catchup.holding:
            self.catchup.hold(message, live=not self.catchup.collecting)
        else:
            self._arrived.append(message)
        if message.sender_id == self.me:
            self.sender.done(message.ref)

    async def _ack(self, frame: Frame) -> None:
        message = Message.model_validate(frame["message"])
        if self.catchup.holding:
            self.catchup.hold(message, live=True)
        else:
            self._arrived.append(message)
        self.sender.done(str(frame.get("ref", message.ref)))

    async def _message_updated(self, frame: Frame) -> None:
        await self.catchup.updated(Message.model_validate(frame["message"]))

    async def _synced(self, frame: Frame) -> None:
        if await self.catchup.synced(frame):
            self._caught_up()

    async def _room(self, frame: Frame) -> None:
        room = Room.model_validate(frame["room"])
        if self.me in room.member_ids:
            await self.store.save_rooms([room])
            self.stream.publish(RoomChanged(room))
        else:
            await forget_room(self.store, self.outbox, room.id)
            self.inbox.forget()
            self.stream.publish(RoomChanged(room, left=True))

    async def _contact(self, frame: Frame) -> None:
        invitation = _optional(Invitation, frame.get("invitation"))
        user = _optional(User, frame.get("user"))
        contacts: list[Contact] = []
        try:
            contacts = await refresh_contacts(self.store, self.api)
        except (ApiError, ApiUnavailable) as exc:
            log.info("contacts not read again after a contact event: %s", exc)
        event = str(frame["event"])
        self.stream.publish(contact_changed(event, invitation, user, contacts, self.me))

    async def _presence(self, frame: Frame) -> None:
        user_id, status = str(frame["user_id"]), frame["status"]
        if status not in ("online", "offline"):
            raise TypeError(f"unknown presence status {status!r}")
        await self.store.set_presence(user_id, status)
        self.stream.publish(PresenceChanged(user_id, status))

    async def _typing(self, frame: Frame) -> None:
        active = frame["active"]
        if not isinstance(active, bool):
            raise TypeError("typing.active is not a boolean")
        self.stream.publish(TypingChanged(str(frame["room_id"]), str(frame["user_id"]), active))

    async def _receipt(self, frame: Frame) -> None:
        room_id, user_id, seq = str(frame["room_id"]), str(frame["user_id"]), frame["seq"]
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise TypeError("receipt.seq is not an integer")
        if user_id == self.me:  # read on another device (or this one): the device follows
            await self.store.set_read(room_id, seq)
        self.stream.publish(ReceiptChanged(room_id, user_id, seq))

    async def _error(self, frame: Frame) -> None:
        ref = frame.get("ref")
        ref = ref if isinstance(ref, str) else None
        code = str(frame.get("code", "internal"))
        message = str(frame.get("message", ""))
        retry_after_ms = frame.get("retry_after_ms")
        if ref is not None:
            if ref.startswith(PING_REF_PREFIX):
                return
            if await self.sender.refused(ref, code, message, retry_after_ms):
                return
            if self.catchup.refused(ref, code, retry_after_ms):
                return
        self.stream.publish(ServerError(code, message, ref))


def _optional(model: type[Any], value: Any) -> Any:
    return None if value is None else model.model_validate(value)
