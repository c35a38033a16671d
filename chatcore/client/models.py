"""What a client program sees: the server's objects as the wire carries them, plus the device's own.

The wire objects (`User`, `Message`, `Contact`, `Invitation`) are the kernel's models; those whose
wire shape differs from the server's stored one (`Room`, `Media`, `StickerPack`, `PushDevice`)
are read here from what the REST API and the WebSocket send. Unknown fields are ignored, so a
newer server can add fields without breaking an older client.
"""

from __future__ import annotations

from typing import Any, Literal

from chatcore.models import Contact, Invitation, Message, MessageKind, Model, RoomKind, User

__all__ = [
    "Account",
    "CachedFile",
    "Contact",
    "Invitation",
    "Media",
    "Message",
    "MessagePage",
    "OutboxEntry",
    "OutboxState",
    "PushDevice",
    "PushNotice",
    "Room",
    "RoomSummary",
    "ServerInfo",
    "Sticker",
    "StickerPack",
    "Tokens",
    "User",
]


class ServerInfo(Model):
    """`GET /api/v1/info`: where the WebSocket is, the server's limits and features."""

    name: str
    version: str
    ws_url: str
    limits: dict[str, int | float]
    features: tuple[str, ...] = ()


class Tokens(Model):
    """One login's tokens. `access_expires_ts` is when the access token expires (ms, UTC)."""

    access_token: str
    refresh_token: str
    access_expires_ts: int
    user: User


class Account(Model):
    """Who is logged in on this device, on which server: the device store keeps one."""

    server_url: str
    user: User
    tokens: Tokens | None = None  # None once logged out (history stays readable)


class Room(Model):
    """A room as the server describes it (`GET /rooms`, `room` events)."""

    id: str
    kind: RoomKind
    name: str | None = None
    member_ids: tuple[str, ...]
    owner_id: str | None = None
    last_seq: int = 0
    last_message: Message | None = None
    unread: int | None = None


class RoomSummary(Model):
    """A room as the device store knows it: for a room list that works offline.

    `unread` counts the stored non-deleted messages of others above `read_seq`; `last_message`
    is the newest stored message; `synced_seq` is the highest seq up to which every message is
    stored (the catch-up cursor); `last_ts` orders the list by activity.
    """

    room: Room
    last_message: Message | None = None
    unread: int = 0
    read_seq: int = 0
    synced_seq: int = 0
    last_ts: int = 0


class MessagePage(Model):
    """`GET /rooms/{id}/messages`: a page of messages and whether more lie beyond it."""

    messages: tuple[Message, ...]
    has_more: bool


class SearchPage(Model):
    """`GET /search/messages`: matching messages, newest first; `next` (when `has_more`) is
    the `before` of the next page."""

    messages: tuple[Message, ...]
    has_more: bool
    next: str | None = None


class Media(Model):
    """An uploaded file (`POST /media`); `url` is signed and short-lived."""

    id: str
    content_type: str
    size: int
    sha256: str
    url: str
    width: int | None = None
    height: int | None = None
    filename: str | None = None


class Sticker(Model):
    id: str
    media_id: str
    url: str
    emoji: str | None = None


class StickerPack(Model):
    id: str
    name: str
    stickers: tuple[Sticker, ...] = ()


class PushDevice(Model):
    """A push device registered with the server (`/push/devices`)."""

    id: str
    platform: Literal["webpush", "fcm", "apns", "webhook"]
    token: str | None = None
    endpoint: str | None = None
    keys: dict[str, str] | None = None


OutboxState = Literal["pending", "sending", "sent", "failed", "cancelled"]


class OutboxEntry(Model):
    """A message the user sent, until the server acknowledged it: its local echo.

    `state`: *pending* (waiting for a connection), *sending* (on the wire, no ack yet),
    *failed* (refused by the server: `error_code` and `error_message` say why; resend or cancel
    it), and in events only *sent* (acked: the entry is gone from the outbox, the stored
    message replaces it) and *cancelled*. `position` orders the outbox (per room it is the send
    order). `transmitted` is true once the message went out on some connection: the server may
    have stored it, so it can no longer be edited or cancelled, only waited for.
    `file_path` is a local file still to upload (a media message queued offline).
    """

    ref: str
    room_id: str
    position: int
    kind: MessageKind = "text"
    body: str = ""
    media_id: str | None = None
    sticker_id: str | None = None
    reply_to: str | None = None
    file_path: str | None = None
    created_ts: int
    state: OutboxState = "pending"
    transmitted: bool = False
    attempts: int = 0
    error_code: str | None = None
    error_message: str | None = None

    def frame_fields(self) -> dict[str, Any]:
        """The fields of this entry's `send` frame (and of its REST send), without `type`."""
        fields: dict[str, Any] = {"ref": self.ref, "room_id": self.room_id, "kind": self.kind}
        if self.body:
            fields["body"] = self.body
        for name in ("media_id", "sticker_id", "reply_to"):
            value = getattr(self, name)
            if value is not None:
                fields[name] = value
        return fields


class CachedFile(Model):
    """A file in the media cache: `path` is readable as long as the cache keeps it."""

    key: str
    path: str
    size: int
    content_type: str
    etag: str | None = None
    fetched_ts: int
    accessed_ts: int


class PushNotice(Model):
    """A push as the push handler understood it, whatever carried it (webhook, Web Push, FCM, APNs).

    `message` is the full message when the handler could fetch or read it; an id-only push
    carries only the room, the message id and its seq.
    """

    room_id: str
    message_id: str
    seq: int
    ts: int | None = None
    sender_id: str | None = None
    sender_name: str | None = None
    room_name: str | None = None
    preview: str | None = None
    direct: bool = False
    message: Message | None = None
