"""Domain models shared by the core, the plugins and the wire.

These are plain pydantic models: the storage interface returns them, the transports serialize them
with `wire()`, which leaves out optional fields that are unset (the contract marks them `?`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    model_config = ConfigDict(frozen=True)

    def wire(self) -> dict[str, Any]:
        """The JSON object of this model as the wire contract shows it."""
        return self.model_dump(mode="json", exclude_none=True)


class User(Model):
    """A user as everyone may see them (never a password hash)."""

    id: str
    username: str
    display_name: str
    avatar_media_id: str | None = None


class Credentials(Model):
    """A user with the stored password hash: only the auth backend reads this."""

    user: User
    password_hash: str


class Identity(Model):
    """Who a request or a session acts for, read from a verified access token."""

    user_id: str
    login_id: str
    token_id: str
    expires_ts: int


class TokenPair(Model):
    """The answer to login and refresh (PROTOCOL.md, Auth)."""

    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int
    user: User


class RefreshOutcome(Model):
    """What storage found when a refresh token was presented.

    `status` is "ok" (the token was unused, is now marked used, and `new_hash` is stored for the
    same login), "unknown", "reused" (already used once: a sign of theft), "expired" or "ended"
    (its login was ended). `login_id` and `user_id` are set for every status but "unknown".
    """

    status: str
    login_id: str | None = None
    user_id: str | None = None


MessageKind = Literal["text", "media", "sticker", "system"]
RoomKind = Literal["direct", "group"]


class Draft(Model):
    """A message to store: what the sender asked for, after checks and plugins' rewrites."""

    room_id: str
    sender_id: str
    ref: str
    kind: MessageKind = "text"
    body: str = ""
    media_id: str | None = None
    sticker_id: str | None = None
    reply_to: str | None = None
    ts: int


class Message(Draft):
    """A stored message (PROTOCOL.md, Messages). A deleted one keeps its seq, with body ""."""

    id: str
    seq: int
    edited_ts: int | None = None
    deleted: bool = False


class Stored(Model):
    """The outcome of storing one draft: the message, and whether this call created it
    (False: the (sender, room, ref) key was already used, and `message` is the original)."""

    message: Message
    created: bool


class Room(Model):
    """A room as stored. `last_ts` (last message, else creation) orders room lists."""

    id: str
    kind: RoomKind
    name: str | None = None
    member_ids: tuple[str, ...]
    owner_id: str | None = None
    last_seq: int = 0
    created_ts: int
    last_ts: int

    def wire(self) -> dict[str, Any]:
        # name and owner_id are null for a direct room: the contract shows them, so keep them.
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "member_ids": list(self.member_ids),
            "owner_id": self.owner_id,
            "last_seq": self.last_seq,
            "created_ts": self.created_ts,
        }


class RoomView(Model):
    """A room as one member sees it in a list: with its last message and their unread count."""

    room: Room
    last_message: Message | None = None
    unread: int = 0
    read_seq: int = 0

    def wire(self) -> dict[str, Any]:
        data = self.room.wire()
        if self.last_message is not None:
            data["last_message"] = self.last_message.wire()
        data["unread"] = self.unread
        return data
