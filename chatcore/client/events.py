"""The client's events: one ordered stream of typed values that every program and UI consumes.

A program reads them with `async for event in client.events()`; plugins get each one through
the `chatcore_client_event` hook, in the same order. Events say what changed *after* the device
store has it: a `MessageReceived` is read back from `client.history()` at once.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal

from pydantic import BaseModel

from chatcore.client.models import (
    Contact,
    Invitation,
    Message,
    OutboxEntry,
    PushNotice,
    Room,
    User,
)

#: The connection's states, in the order a healthy start goes through them:
#: *offline* (no connection; waiting `retry_in` seconds before the next attempt, or logged out),
#: *connecting* (opening the WebSocket and authenticating), *catching_up* (syncing every room
#: and flushing the outbox), *ready* (live). *logged_out*: the login ended; nothing reconnects.
ConnectionState = Literal["offline", "connecting", "catching_up", "ready", "logged_out"]


@dataclass(frozen=True, slots=True)
class ConnectionChanged:
    state: ConnectionState
    #: Why, for a person: the last error when offline, empty otherwise.
    detail: str = ""
    #: Seconds until the next attempt, when offline and one is planned.
    retry_in: float | None = None


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A message newly stored on the device. `live` is false for catch-up after a reconnect."""

    message: Message
    live: bool = True


@dataclass(frozen=True, slots=True)
class MessageUpdated:
    """A stored message was edited or deleted (`message.deleted`)."""

    message: Message


@dataclass(frozen=True, slots=True)
class OutboxChanged:
    """An outbox entry changed state; `message` is the stored message once it is *sent*."""

    entry: OutboxEntry
    message: Message | None = None


@dataclass(frozen=True, slots=True)
class RoomChanged:
    """A room was created, renamed or its members changed; `left`: the user is no longer in it."""

    room: Room
    left: bool = False


@dataclass(frozen=True, slots=True)
class ContactChanged:
    """A contact event: *invited*, *accepted*, *declined* or *removed* (see the protocol)."""

    event: str
    invitation: Invitation | None = None
    user: User | None = None
    contact: Contact | None = None


@dataclass(frozen=True, slots=True)
class TypingChanged:
    room_id: str
    user_id: str
    active: bool


@dataclass(frozen=True, slots=True)
class ReceiptChanged:
    """`user_id` has read `room_id` up to `seq` (the user's own receipts from other devices too)."""

    room_id: str
    user_id: str
    seq: int


@dataclass(frozen=True, slots=True)
class PresenceChanged:
    user_id: str
    status: Literal["online", "offline"]


@dataclass(frozen=True, slots=True)
class PushReceived:
    """A push reached the push handler (the app may have been closed when it came)."""

    notice: PushNotice


@dataclass(frozen=True, slots=True)
class ServerError:
    """An error the server sent that no request waits for (a program may log it)."""

    code: str
    message: str
    ref: str | None = None


ClientEvent = (
    ConnectionChanged
    | MessageReceived
    | MessageUpdated
    | OutboxChanged
    | RoomChanged
    | ContactChanged
    | TypingChanged
    | ReceiptChanged
    | PresenceChanged
    | PushReceived
    | ServerError
)

#: Each event class's `type` in JSON (`as_json`), as `chatcore client tail --json` prints it.
EVENT_TYPES: dict[type, str] = {
    ConnectionChanged: "connection",
    MessageReceived: "message",
    MessageUpdated: "message_updated",
    OutboxChanged: "outbox",
    RoomChanged: "room",
    ContactChanged: "contact",
    TypingChanged: "typing",
    ReceiptChanged: "receipt",
    PresenceChanged: "presence",
    PushReceived: "push",
    ServerError: "error",
}


def as_json(event: ClientEvent) -> dict[str, Any]:
    """The event as a JSON object: `{"type": ..., field: value, ...}`, models as their wire."""
    data: dict[str, Any] = {"type": EVENT_TYPES[type(event)]}
    for f in fields(event):
        value = getattr(event, f.name)
        if value is None:
            continue
        data[f.name] = (
            value.model_dump(mode="json", exclude_none=True)
            if isinstance(value, BaseModel)
            else value
        )
    return data


def event_line(event: ClientEvent) -> str:
    """The event as one line for a person (`chatcore client tail`)."""
    match event:
        case ConnectionChanged(state=state, detail=detail, retry_in=retry_in):
            extra = f" ({detail})" if detail else ""
            retry = f", retry in {retry_in:.1f}s" if retry_in is not None else ""
            return f"connection {state}{extra}{retry}"
        case MessageReceived(message=m, live=live):
            origin = "" if live else " (catch-up)"
            return f"message {m.room_id} #{m.seq} {m.sender_id}: {m.body}{origin}"
        case MessageUpdated(message=m):
            return f"updated {m.room_id} #{m.seq}: {'(deleted)' if m.deleted else m.body}"
        case OutboxChanged(entry=e):
            reason = f" ({e.error_message})" if e.error_message else ""
            return f"outbox {e.ref} {e.state}{reason}"
        case RoomChanged(room=room, left=left):
            return f"room {room.id} {'left' if left else room.name or room.kind}"
        case ContactChanged(event=what, user=user, invitation=inv):
            who = user.username if user else inv.from_user.username if inv else ""
            return f"contact {what} {who}".rstrip()
        case TypingChanged(room_id=room_id, user_id=user_id, active=active):
            return f"typing {room_id} {user_id} {'on' if active else 'off'}"
        case ReceiptChanged(room_id=room_id, user_id=user_id, seq=seq):
            return f"read {room_id} {user_id} #{seq}"
        case PresenceChanged(user_id=user_id, status=status):
            return f"presence {user_id} {status}"
        case PushReceived(notice=n):
            text = n.message.body if n.message else n.preview or ""
            return f"push {n.room_id} #{n.seq} {n.sender_name or n.sender_id or ''}: {text}"
        case ServerError(code=code, message=message):
            return f"error {code}: {message}"
    raise TypeError(f"not a client event: {event!r}")
