"""Request and response models of the built-in endpoints (validation and the OpenAPI document).

Request bodies are lenient where the contract's rules live in `chatcore.accounts` (usernames,
passwords, display names): the models only demand an object with the right fields of the right
JSON types, and the account rules answer with their own messages. The constraints still appear
in the document, as `json_schema_extra`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, RootModel

from chatcore.accounts import DISPLAY_NAME_MAX, PASSWORD_MAX, PASSWORD_MIN, SEARCH_LIMIT_MAX
from chatcore.errors import ErrorCode
from chatcore.messages import HISTORY_LIMIT_DEFAULT, HISTORY_LIMIT_MAX, REF_MAX, SENDABLE_KINDS
from chatcore.models import MessageKind, RoomKind, TokenPair, User
from chatcore.rooms import GROUP_MEMBERS_MAX, ROOM_NAME_MAX

#: What pydantic accepts as `json_schema_extra`.
JsonDict = dict[str, JsonValue]

__all__ = [
    "AddMemberRequest",
    "CreateRoomRequest",
    "DirectRoomRequest",
    "EditMessageRequest",
    "ErrorBody",
    "GroupRoomRequest",
    "Health",
    "HistoryQuery",
    "Info",
    "LoginRequest",
    "Message",
    "MessagePage",
    "ReadRequest",
    "RefreshRequest",
    "RegisterRequest",
    "Registered",
    "Room",
    "RoomList",
    "SendMessageRequest",
    "TokenPair",
    "User",
    "UserSearch",
    "UserSettings",
    "Users",
]

_USERNAME_DOC: JsonDict = {"pattern": "^[A-Za-z0-9_.-]{3,32}$"}
_PASSWORD_DOC: JsonDict = {"minLength": PASSWORD_MIN, "maxLength": PASSWORD_MAX}


# --- requests ---------------------------------------------------------------------------------


class RegisterRequest(BaseModel):
    """A new account."""

    username: str = Field(
        json_schema_extra=_USERNAME_DOC,
        description="Unique, matched case-insensitively; keeps the case given here.",
    )
    password: str = Field(json_schema_extra=_PASSWORD_DOC)
    display_name: str | None = Field(
        None,
        json_schema_extra={"maxLength": DISPLAY_NAME_MAX},
        description="Shown instead of the username; defaults to it.",
    )


class LoginRequest(BaseModel):
    """A username and its password."""

    username: str
    password: str


class RefreshRequest(BaseModel):
    """A refresh token; each works once."""

    refresh_token: str


class UserSearch(BaseModel):
    """Query of `GET /users`."""

    q: str = Field(description="Prefix of a username or display name, case-insensitive.")
    limit: int | None = Field(
        None, description=f"At most this many users; clamped to 1..{SEARCH_LIMIT_MAX}."
    )


class DirectRoomRequest(BaseModel):
    """Open the direct room with another user (the existing one when there is one)."""

    kind: Literal["direct"]
    user_id: str = Field(description="The other user.")


class GroupRoomRequest(BaseModel):
    """Create a group room owned by the caller."""

    kind: Literal["group"]
    name: str = Field(json_schema_extra={"minLength": 1, "maxLength": ROOM_NAME_MAX})
    member_ids: list[str] = Field(
        json_schema_extra={"maxItems": GROUP_MEMBERS_MAX - 1},
        description="The other members; the caller is always one.",
    )


class CreateRoomRequest(
    RootModel[Annotated[DirectRoomRequest | GroupRoomRequest, Field(discriminator="kind")]]
):
    """A direct or a group room, told apart by `kind`."""


class AddMemberRequest(BaseModel):
    """A user to add to a group room."""

    user_id: str


class HistoryQuery(BaseModel):
    """Query of `GET /rooms/{room_id}/messages`: after_seq or before_seq (or neither)."""

    after_seq: int | None = Field(
        None, json_schema_extra={"minimum": 0}, description="Messages after this seq, oldest first."
    )
    before_seq: int | None = Field(
        None,
        json_schema_extra={"minimum": 0},
        description="Messages before this seq, newest first. Without either: the newest.",
    )
    limit: int | None = Field(
        None,
        description=f"At most this many (default {HISTORY_LIMIT_DEFAULT}); "
        f"clamped to 1..{HISTORY_LIMIT_MAX}.",
    )


class SendMessageRequest(BaseModel):
    """A message to send; `ref` is the idempotency key (per sender and room)."""

    ref: str = Field(
        json_schema_extra={"minLength": 1, "maxLength": REF_MAX},
        description="Chosen by the client (a UUID is usual); a repeat returns the stored message.",
    )
    kind: Annotated[str, Field(json_schema_extra={"enum": list(SENDABLE_KINDS)})] | None = Field(
        None, description="Default `text`."
    )
    body: str | None = Field(
        None, description="The text; at most `max_message_bytes` (see /info) of UTF-8."
    )
    media_id: str | None = None
    sticker_id: str | None = None
    reply_to: str | None = Field(None, description="The id of a message of the same room.")


class EditMessageRequest(BaseModel):
    """The new body of a text message."""

    body: str


class ReadRequest(BaseModel):
    """A read receipt: the highest seq the caller has read."""

    # Strict: "5", 5.0 and true are not seqs (the WebSocket `read` refuses them too).
    seq: int = Field(strict=True, json_schema_extra={"minimum": 0})


# --- responses --------------------------------------------------------------------------------


class Registered(BaseModel):
    """The new user."""

    user: User


class Users(BaseModel):
    """Users ordered by username."""

    users: list[User]


class Limits(BaseModel):
    max_message_bytes: int
    max_frame_bytes: int
    max_upload_bytes: int
    max_sync_messages: int


class Info(BaseModel):
    """What a client needs to know before it connects."""

    name: Literal["chatcore"]
    version: str
    ws_url: str | None = Field(description="The absolute URL of the WebSocket server.")
    limits: Limits
    features: list[str]


class Health(BaseModel):
    """The node can serve."""

    status: Literal["ok"]


class Message(BaseModel):
    """A message (PROTOCOL.md, Messages); a deleted one keeps its seq, with body ""."""

    id: str
    room_id: str
    seq: int
    sender_id: str
    ref: str
    kind: MessageKind
    body: str
    media_id: str | None = None
    sticker_id: str | None = None
    reply_to: str | None = None
    ts: int
    edited_ts: int | None = None
    deleted: bool


class Room(BaseModel):
    """A room as the caller sees it. A direct room has `name` and `owner_id` null."""

    id: str
    kind: RoomKind
    name: str | None
    member_ids: list[str]
    owner_id: str | None
    last_seq: int = Field(description="The seq of the room's newest message (0: none yet).")
    created_ts: int
    last_message: Message | None = None
    unread: int = Field(
        description="Non-deleted messages of others with a seq above the caller's read seq."
    )


class RoomList(BaseModel):
    """The caller's rooms, most recently active first."""

    rooms: list[Room]


class MessagePage(BaseModel):
    """A page of history and whether more messages exist in its direction."""

    messages: list[Message]
    has_more: bool


class UserSettings(RootModel[dict[str, Any]]):
    """The caller's settings: one JSON object, shaped by the clients."""


class ErrorDetail(BaseModel):
    code: ErrorCode
    message: str = Field(description="A sentence a person can act on.")


class ErrorBody(BaseModel):
    """An error."""

    model_config = ConfigDict(title="Error")

    error: ErrorDetail
