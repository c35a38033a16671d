"""The client's events: one ordered stream of typed values that every program and UI consumes.

A program reads them with `async for event in client.events()`; plugins get each one through
the `chatcore_client_event` hook, in the same order. Events say what changed *after* the device
store has it: a `MessageReceived` is read back from `client.history()` at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
