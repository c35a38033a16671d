"""Request and response models of the built-in endpoints (validation and the OpenAPI document).

Request bodies are lenient where the contract's rules live in `chatcore.server.accounts` (usernames,
passwords, display names): the models only demand an object with the right fields of the right
JSON types, and the account rules answer with their own messages. The constraints still appear
in the document, as `json_schema_extra`.

A reply that shows a domain object (`chatcore.models.Room`, `Message`, ...) is documented by a
`<Name>Body` class (`RoomBody`, `MessageBody`, like `ErrorBody`), so the two never share a name.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, RootModel

from chatcore.errors import ErrorCode
from chatcore.models import (
    DevicePlatform,
    InvitationStatus,
    MessageKind,
    Presence,
    ReportStatus,
    RoomKind,
    TokenPair,
    User,
)
from chatcore.server.accounts import DISPLAY_NAME_MAX, PASSWORD_MAX, PASSWORD_MIN, SEARCH_LIMIT_MAX
from chatcore.server.admin import ADMIN_PAGE_DEFAULT, ADMIN_PAGE_MAX
from chatcore.server.audit import PAGE_MAX as AUDIT_PAGE_MAX
from chatcore.server.devices import AUTH_BYTES, ENDPOINT_MAX, P256DH_BYTES, PLATFORMS, TOKEN_MAX
from chatcore.server.messages import (
    HISTORY_LIMIT_DEFAULT,
    HISTORY_LIMIT_MAX,
    REF_MAX,
    SENDABLE_KINDS,
)
from chatcore.server.reports import (
    NOTE_MAX,
    REASON_MAX,
    REPORTS_LIMIT_DEFAULT,
    REPORTS_LIMIT_MAX,
)
from chatcore.server.rooms import GROUP_MEMBERS_MAX, ROOM_NAME_MAX
from chatcore.server.search import QUERY_MAX, RESULTS_LIMIT_DEFAULT, RESULTS_LIMIT_MAX

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
    "MessageBody",
    "MessagePage",
    "ReadRequest",
    "RefreshRequest",
    "RegisterRequest",
    "Registered",
    "RoomBody",
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
    ws_rate_per_second: float | None = Field(
        None, description="WebSocket frames a second a session may send (flood control)."
    )
    ws_rate_burst: float | None = Field(
        None, description="WebSocket frames a session may send at once (flood control)."
    )


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


class MessageBody(BaseModel):
    """A message (docs/protocol.md, Messages); a deleted one keeps its seq, with body ""."""

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


class RoomBody(BaseModel):
    """A room as the caller sees it. A direct room has `name` and `owner_id` null."""

    id: str
    kind: RoomKind
    name: str | None
    member_ids: list[str]
    owner_id: str | None
    admin_ids: list[str] | None = Field(
        None,
        description="A group's admins (members with the role admin); absent for a direct room.",
    )
    topic: str | None = Field(None, description="A group's topic; absent when it has none.")
    avatar_media_id: str | None = Field(
        None, description="A group's avatar (an image its members may read); absent: none."
    )
    last_seq: int = Field(description="The seq of the room's newest message (0: none yet).")
    created_ts: int
    last_message: MessageBody | None = None
    unread: int = Field(
        description="Non-deleted messages of others with a seq above the caller's read seq."
    )


class RoomList(BaseModel):
    """The caller's rooms, most recently active first."""

    rooms: list[RoomBody]


class MessagePage(BaseModel):
    """A page of history and whether more messages exist in its direction."""

    messages: list[MessageBody]
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


# --- contacts and blocks ---------------------------------------------------------------------


class InviteRequest(BaseModel):
    """Whom to invite: `user_id` or `username` (exactly one)."""

    user_id: str | None = Field(None, description="The user to invite.")
    username: str | None = Field(None, description="Or their username (case-insensitive).")


class BlockRequest(BaseModel):
    """The user to block."""

    user_id: str


class InvitationBody(BaseModel):
    """A friend invitation; `ts` is when it was sent."""

    id: str
    from_user: User
    to_user: User
    status: InvitationStatus
    ts: int


class Invitations(BaseModel):
    """The caller's pending invitations, newest first."""

    incoming: list[InvitationBody]
    outgoing: list[InvitationBody]


class ContactBody(BaseModel):
    """A contact, since `since_ts`, with their presence."""

    user: User
    since_ts: int
    presence: Presence


class AcceptedContact(BaseModel):
    """The contact an accepted invitation made."""

    contact: ContactBody


class Contacts(BaseModel):
    """The caller's contacts, ordered by username."""

    contacts: list[ContactBody]


class Blocks(BaseModel):
    """The users the caller blocks, ordered by username."""

    blocks: list[User]


__all__ += [
    "AcceptedContact",
    "BlockRequest",
    "Blocks",
    "ContactBody",
    "Contacts",
    "InvitationBody",
    "Invitations",
    "InviteRequest",
]


# --- media, profile and stickers -------------------------------------------------------------


class UploadForm(BaseModel):
    """A file to upload, as multipart/form-data."""

    file: bytes = Field(
        description="The file. Its type is sniffed from its bytes; its name is kept only as a "
        "label."
    )


class MediaBody(BaseModel):
    """An uploaded file. `url` works without the Authorization header until it expires."""

    id: str
    content_type: str = Field(description="Sniffed from the bytes, never the client's word.")
    size: int = Field(description="Bytes.")
    sha256: str = Field(description="Hex SHA-256 of the bytes; also the download's ETag.")
    url: str = Field(
        description="`/api/v1/media/{id}?exp=...&sig=...`: signed, short-lived (minutes)."
    )
    width: int | None = Field(None, description="Images only.")
    height: int | None = Field(None, description="Images only.")
    filename: str | None = Field(None, description="The uploader's file name (a label only).")


class MediaQuery(BaseModel):
    """The signature of a Media's `url` (instead of the Authorization header)."""

    exp: str | None = Field(None, description="Expiry of the signature (Unix seconds).")
    sig: str | None = Field(None, description="The signature.")


class ThumbnailQuery(MediaQuery):
    """Query of `GET /media/{media_id}/thumbnail`."""

    size: int = Field(
        256,
        description="The thumbnail fits in size x size; it is made at the largest configured "
        "size not above this.",
    )


class ProfilePatch(BaseModel):
    """Fields of the caller's profile to change; absent fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(
        None, json_schema_extra={"minLength": 1, "maxLength": DISPLAY_NAME_MAX}
    )
    avatar_media_id: str | None = Field(
        None, description="An image the caller may read; null removes the avatar."
    )


class StickerItem(BaseModel):
    """One sticker: its image is a Media readable by every user."""

    model_config = ConfigDict(title="Sticker")

    id: str = Field(description="What a sticker message carries as `sticker_id`.")
    emoji: str | None = None
    media_id: str
    url: str = Field(description="A signed URL of the sticker's image.")


class StickerPackBody(BaseModel):
    """A sticker pack."""

    model_config = ConfigDict(title="Pack")

    id: str
    name: str
    stickers: list[StickerItem]


class StickerPacks(BaseModel):
    """Every sticker pack of the server, by name."""

    packs: list[StickerPackBody]


__all__ += [
    "MediaBody",
    "MediaQuery",
    "ProfilePatch",
    "StickerItem",
    "StickerPackBody",
    "StickerPacks",
    "ThumbnailQuery",
    "UploadForm",
]


# --- push devices ----------------------------------------------------------------------------

_BASE64URL_DOC: JsonDict = {"pattern": "^[A-Za-z0-9_-]+={0,2}$"}


class PushKeys(BaseModel):
    """The keys of a Web Push subscription (RFC 8291), base64url, as the browser gives them."""

    p256dh: str = Field(
        json_schema_extra=_BASE64URL_DOC,
        description=f"The subscription's P-256 public key ({P256DH_BYTES} bytes).",
    )
    auth: str = Field(
        json_schema_extra=_BASE64URL_DOC,
        description=f"The subscription's auth secret ({AUTH_BYTES} bytes).",
    )


class DeviceRequest(BaseModel):
    """A push device to register; which fields it takes depends on `platform`.

    "webpush": `endpoint` (https) and `keys`; "fcm" and "apns": `token`; "webhook": `endpoint`
    (http or https). A field the platform does not take is refused.
    """

    platform: str = Field(json_schema_extra={"enum": list(PLATFORMS)})
    token: str | None = Field(
        None,
        json_schema_extra={"minLength": 1, "maxLength": TOKEN_MAX, "pattern": "^[!-~]+$"},
        description="The FCM registration token or APNs device token.",
    )
    endpoint: str | None = Field(
        None,
        json_schema_extra={"format": "uri", "maxLength": ENDPOINT_MAX},
        description="The Web Push subscription's endpoint, or the webhook's URL.",
    )
    keys: PushKeys | None = Field(None, description="Web Push only.")


class DeviceBody(BaseModel):
    """A push device of the caller."""

    id: str
    platform: DevicePlatform
    token: str | None = Field(None, description="fcm and apns.")
    endpoint: str | None = Field(None, description="webpush and webhook.")
    keys: PushKeys | None = Field(None, description="webpush.")
    created_ts: int


class Devices(BaseModel):
    """The caller's push devices, newest first."""

    devices: list[DeviceBody]


__all__ += ["DeviceBody", "DeviceRequest", "Devices", "PushKeys"]


# --- search and reports --------------------------------------------------------------------


class SearchQuery(BaseModel):
    """Query of `GET /search/messages`."""

    q: str = Field(
        json_schema_extra={"minLength": 1, "maxLength": QUERY_MAX},
        description="Words (letters and digits; anything else separates them, never syntax): "
        "a message matches when it has every word, the last also as a prefix; case folds.",
    )
    room_id: str | None = Field(None, description="Only this room (the caller must be in it).")
    before: str | None = Field(None, description="The `next` of the previous page.")
    limit: int | None = Field(
        None,
        description=f"At most this many (default {RESULTS_LIMIT_DEFAULT}); "
        f"clamped to 1..{RESULTS_LIMIT_MAX}.",
    )


class SearchPage(BaseModel):
    """Messages of the caller's rooms matching the query, newest first."""

    messages: list[MessageBody]
    has_more: bool
    next: str | None = Field(
        None, description="Present when `has_more`: pass it as `before` for the next page."
    )


class ReportRequest(BaseModel):
    """Why the message is reported."""

    reason: str = Field(json_schema_extra={"minLength": 1, "maxLength": REASON_MAX})


class ReportBody(BaseModel):
    """A report of abuse; `message` is the message as it was when reported."""

    id: str
    room_id: str
    message_id: str
    reporter_id: str
    reason: str
    ts: int
    message: MessageBody
    status: ReportStatus
    resolved_by: str | None = Field(None, description="The admin who resolved it.")
    resolved_ts: int | None = None
    note: str | None = Field(None, description="The admin's note, when resolved with one.")


class ReportReply(BaseModel):
    """One report."""

    report: ReportBody


class ReportsQuery(BaseModel):
    """Query of `GET /admin/reports`."""

    status: ReportStatus | None = Field(None, description="Only these; without it, all.")
    before: str | None = Field(None, description="The `next` of the previous page.")
    limit: int | None = Field(
        None,
        description=f"At most this many (default {REPORTS_LIMIT_DEFAULT}); "
        f"clamped to 1..{REPORTS_LIMIT_MAX}.",
    )


class ReportList(BaseModel):
    """Reports, newest first."""

    reports: list[ReportBody]
    has_more: bool
    next: str | None = Field(
        None, description="Present when `has_more`: pass it as `before` for the next page."
    )


class ResolveRequest(BaseModel):
    """How a report is resolved."""

    note: str | None = Field(None, json_schema_extra={"maxLength": NOTE_MAX})
    # Strict: "yes" and 1 are not true (deleting a message is not to be guessed at).
    delete_message: bool = Field(
        False,
        strict=True,
        description="Also delete the reported message (members get `message_updated`).",
    )


__all__ += [
    "ReportBody",
    "ReportList",
    "ReportReply",
    "ReportRequest",
    "ReportsQuery",
    "ResolveRequest",
    "SearchPage",
    "SearchQuery",
]


# --- retention -------------------------------------------------------------------------------


class RetentionRequest(BaseModel):
    """A room's own retention: a number of days, or null for the server's default."""

    days: int | None = Field(
        json_schema_extra={"minimum": 1, "maximum": 36500},
        description="Messages older than this many days are deleted; null: the server default.",
    )


class RetentionBody(BaseModel):
    """How long a room keeps its messages, and where its history now starts."""

    days: int | None = Field(description="The room's own setting; null: the server's default.")
    effective_days: int | None = Field(
        description="What applies: the room's days, else the server's default; null: forever."
    )
    first_seq: int = Field(
        description="The lowest seq the room still holds (last_seq + 1 when it holds none): "
        "older messages were deleted."
    )


__all__ += ["RetentionBody", "RetentionRequest"]


# --- administration ------------------------------------------------------------------------


class Me(User):
    """The signed-in user, with their own admin flag."""

    is_admin: bool = Field(description="A server admin (set by `chatcore user promote` only).")


class AdminUsersQuery(BaseModel):
    """Query of `GET /admin/users`."""

    q: str = Field("", description="Prefix of a username or display name, case-insensitive.")
    limit: int | None = Field(
        None, description=f"At most this many (default {ADMIN_PAGE_DEFAULT}); clamped to "
        f"1..{ADMIN_PAGE_MAX}.",
    )
    offset: int = Field(0, json_schema_extra={"minimum": 0}, description="Skip this many.")


class AdminRoomsQuery(BaseModel):
    """Query of `GET /admin/rooms`."""

    limit: int | None = Field(
        None, description=f"At most this many (default {ADMIN_PAGE_DEFAULT}); clamped to "
        f"1..{ADMIN_PAGE_MAX}.",
    )
    offset: int = Field(0, json_schema_extra={"minimum": 0}, description="Skip this many.")


class EraseQuery(BaseModel):
    """Query of `DELETE /admin/users/{user_id}`."""

    messages: Literal["keep", "remove"] = Field(
        "keep",
        description="keep: their messages stay, from a deleted user; remove: each becomes a "
        "deleted message (seq kept).",
    )


class AuditQuery(BaseModel):
    """Query of `GET /admin/audit`."""

    before: str | None = Field(None, description="The `next` of the previous page.")
    limit: int | None = Field(
        None, description=f"At most this many (default {ADMIN_PAGE_DEFAULT}); clamped to "
        f"1..{AUDIT_PAGE_MAX}.",
    )
    target_kind: str | None = Field(None, description="Only entries about this kind of target.")
    target_id: str | None = Field(None, description="Only entries about this target (its id).")


class PasswordRequest(BaseModel):
    """A new password for a user."""

    model_config = ConfigDict(extra="forbid")

    password: str = Field(json_schema_extra=_PASSWORD_DOC)


class AdminCounts(BaseModel):
    rooms: int = Field(description="Rooms they are a member of.")
    messages: int = Field(description="Messages they sent, deleted ones included.")
    logins: int = Field(description="Their live logins.")


class AdminUserBody(BaseModel):
    """A user as the admin's list shows them."""

    model_config = ConfigDict(title="AdminUser")

    id: str
    username: str
    display_name: str
    avatar_media_id: str | None = None
    is_admin: bool
    disabled: bool
    created_ts: int
    last_seen_ts: int | None = Field(
        description="Their last login or token refresh; null: never."
    )
    counts: AdminCounts


class AdminUsers(BaseModel):
    """Users ordered by username."""

    users: list[AdminUserBody]
    has_more: bool


class LoginBody(BaseModel):
    """A login (token family) of a user."""

    model_config = ConfigDict(title="Login")

    id: str
    created_ts: int
    last_used_ts: int = Field(
        description="When a refresh token of it was last used, else when it started."
    )
    ended_ts: int | None = Field(None, description="When it ended; absent: it is live.")


class Logins(BaseModel):
    """A user's logins, newest first."""

    logins: list[LoginBody]


class AdminRoomCounts(BaseModel):
    members: int
    messages: int = Field(description="Messages stored in it so far (its last seq).")


class AdminRoomBody(BaseModel):
    """A room as the admin's list shows it."""

    model_config = ConfigDict(title="AdminRoom")

    id: str
    kind: RoomKind
    name: str | None
    owner_id: str | None
    last_seq: int
    created_ts: int
    counts: AdminRoomCounts


class AdminRooms(BaseModel):
    """Rooms, newest first."""

    rooms: list[AdminRoomBody]
    has_more: bool


class Erased(BaseModel):
    """What an erasure did."""

    user_id: str
    rooms_left: int
    messages_removed: int


class AuditEntryBody(BaseModel):
    """One entry of the audit log."""

    model_config = ConfigDict(title="AuditEntry")

    id: str
    ts: int
    actor_id: str | None = Field(
        description="The admin or moderator; null: the console or a background job."
    )
    action: str = Field(description="Dotted: user.disable, room.ban, message.delete, ...")
    target_kind: str
    target_id: str
    room_id: str | None
    details: dict[str, Any]


class AuditPage(BaseModel):
    """Audit entries, newest first."""

    entries: list[AuditEntryBody]
    has_more: bool
    next: str | None = Field(
        None, description="Present when `has_more`: pass it as `before` for the next page."
    )


__all__ += [
    "AdminRooms",
    "AdminRoomsQuery",
    "AdminUserBody",
    "AdminUsers",
    "AdminUsersQuery",
    "AuditPage",
    "AuditQuery",
    "EraseQuery",
    "Erased",
    "Logins",
    "Me",
    "PasswordRequest",
]
