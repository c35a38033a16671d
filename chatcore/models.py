"""Domain models shared by the core, the plugins and the wire.

These are plain pydantic models: the storage interface returns them, the transports serialize them
with `wire()`, which leaves out optional fields that are unset (the contract marks them `?`).
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema


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
    # The account's state (docs/protocol.md, Administration), never on the wire (nor in the
    # OpenAPI document): a server admin; disabled; erased (`deleted`: the row is a tombstone,
    # whose wire is that of `DELETED_USER`). `GET /me` adds the caller's own `is_admin`.
    is_admin: SkipJsonSchema[bool] = Field(default=False, exclude=True)
    disabled: SkipJsonSchema[bool] = Field(default=False, exclude=True)
    deleted: SkipJsonSchema[bool] = Field(default=False, exclude=True)

    def wire(self) -> dict[str, Any]:
        if self.deleted:
            # The contract's User keeps its fields: no username any more, the name of a tombstone.
            return {"id": self.id, "username": "", "display_name": DELETED_USER, "deleted": True}
        return self.model_dump(mode="json", exclude_none=True)


#: The display name of an erased user (their tombstone's).
DELETED_USER = "Deleted user"


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
    """The answer to login and refresh (docs/protocol.md, Accounts and tokens)."""

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
RoomRole = Literal["owner", "admin", "member"]


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

    def wire(self) -> dict[str, Any]:
        # Every field is a JSON scalar (str, int, bool or None), so this is exactly
        # `model_dump(mode="json", exclude_none=True)` (same keys, same order) at a fraction of
        # its cost: catch-up and fan-out encode messages by the thousand.
        return {name: value for name, value in self.__dict__.items() if value is not None}

    @classmethod
    def trusted(cls, values: dict[str, Any]) -> Self:
        """A model from values that are valid already, without validating them again (a send's
        draft after its checks). `values` must hold every field, with its declared type, in the
        declared order (the order `wire()` keeps); the model keeps the dict itself. It is equal
        to the validated `cls(**values)`, for a fraction of the cost."""
        fields = _FIELD_NAMES.get(cls)
        if fields is None:
            fields = _FIELD_NAMES[cls] = tuple(cls.model_fields)
        model = cls.__new__(cls)
        # What pydantic's own `model_construct` sets, minus its per-field work.
        _setattr(model, "__dict__", values)
        _setattr(model, "__pydantic_fields_set__", set(fields))
        _setattr(model, "__pydantic_extra__", None)
        _setattr(model, "__pydantic_private__", None)
        return model


class Message(Draft):
    """A stored message (docs/protocol.md, Messages). A deleted one keeps its seq, with body ""."""

    id: str
    seq: int
    edited_ts: int | None = None
    deleted: bool = False

    @classmethod
    def trusted(cls, values: dict[str, Any]) -> Self:
        """A Message from values that are valid already, without validating them again: a
        stored row (a bool for `deleted`), or a validated Draft's fields with a new id and seq.

        `values` must hold every field, with its declared type, in the declared order (the
        order `wire()` keeps); the Message keeps the dict itself. It is equal to the validated
        `Message(**values)`, for a fraction of the cost: catch-up makes thousands at a time.
        """
        return super().trusted(values)


_setattr = object.__setattr__  # past the frozen model's own __setattr__
#: Each trusted model class's fields, in their declared order.
_FIELD_NAMES: dict[type[Draft], tuple[str, ...]] = {}


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
    #: Room administration (docs/protocol.md, Room administration): a group's topic, its
    #: avatar (a media id), and its admins (members with the role "admin", in member order;
    #: the owner is `owner_id`). A direct room has none of them.
    topic: str | None = None
    avatar_media_id: str | None = None
    admin_ids: tuple[str, ...] = ()

    def wire(self) -> dict[str, Any]:
        # name and owner_id are null for a direct room: the contract shows them, so keep them.
        data: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "member_ids": list(self.member_ids),
            "owner_id": self.owner_id,
            "last_seq": self.last_seq,
            "created_ts": self.created_ts,
        }
        if self.kind == "group":  # a direct room has no roles
            data["admin_ids"] = list(self.admin_ids)
        if self.topic is not None:
            data["topic"] = self.topic
        if self.avatar_media_id is not None:
            data["avatar_media_id"] = self.avatar_media_id
        return data

    def role_of(self, user_id: str) -> RoomRole | None:
        """The user's role here: "owner", "admin" or "member" (every member of a direct room
        is a "member"); None for a non-member."""
        if user_id not in self.member_ids:
            return None
        if user_id == self.owner_id:
            return "owner"
        return "admin" if user_id in self.admin_ids else "member"


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


# --- contacts and blocks ----------------------------------------------------------------------

InvitationStatus = Literal["pending", "accepted", "declined"]
Presence = Literal["online", "offline"]


class Invitation(Model):
    """A friend invitation (docs/protocol.md, Contacts). `ts` is when it was sent.

    `hidden` is never sent: an invitation from a user the invitee blocks is kept for its sender
    (who sees it pending, so that the block is not revealed) and is invisible to the invitee.
    """

    id: str
    from_user: User
    to_user: User
    status: InvitationStatus
    ts: int
    hidden: bool = False

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "from_user": self.from_user.wire(),
            "to_user": self.to_user.wire(),
            "status": self.status,
            "ts": self.ts,
        }

    def party(self, user_id: str) -> bool:
        return user_id in (self.from_user.id, self.to_user.id)

    def other(self, user_id: str) -> User:
        """The party who is not `user_id`."""
        return self.to_user if user_id == self.from_user.id else self.from_user


class Contact(Model):
    """One of a user's contacts, since `since_ts`. Storage leaves `presence` "offline"; the
    service fills it in from the hub."""

    user: User
    since_ts: int
    presence: Presence = "offline"

    def wire(self) -> dict[str, Any]:
        return {"user": self.user.wire(), "since_ts": self.since_ts, "presence": self.presence}


class BlockChange(Model):
    """What `ContactStorage.block` changed, so the service can tell the people concerned."""

    created: bool
    contact_removed: bool = False
    #: Pending invitations from the blocker to the blocked user, now declined.
    declined: tuple[Invitation, ...] = ()
    #: Pending invitations from the blocked user to the blocker, now hidden from the blocker.
    hidden: tuple[Invitation, ...] = ()


# --- media and stickers -----------------------------------------------------------------------


class MediaPolicy(Model):
    """What a media store accepts and how its media is served (from the store's config).

    `allowed_types`: the sniffed content types an upload may have. `url_ttl_seconds`: the life
    of a signed media URL. `thumbnail_sizes`: the edge lengths thumbnails are made at (a request
    gets the largest one not above the size it asks for). `max_image_pixels`: width x height
    above which an image is refused before any decoding (decompression bombs).
    """

    allowed_types: tuple[str, ...]
    url_ttl_seconds: int = 600
    thumbnail_sizes: tuple[int, ...] = (64, 128, 256, 512, 1024)
    max_image_pixels: int = 40_000_000


class Media(Model):
    """An uploaded file's metadata (docs/protocol.md, Media).

    The bytes live in the media store under a key made from `sha256` (identical content is
    stored once). `uploader_id` is None for sticker assets. `url` is set per reader, signed for
    them; `wire()` leaves out who uploaded it and when.
    """

    id: str
    uploader_id: str | None = None
    content_type: str
    size: int
    sha256: str
    width: int | None = None
    height: int | None = None
    filename: str | None = None
    created_ts: int
    url: str | None = None

    def wire(self) -> dict[str, Any]:
        hidden = {"uploader_id", "created_ts"}
        return self.model_dump(mode="json", exclude_none=True, exclude=hidden)

    @property
    def is_image(self) -> bool:
        return self.width is not None and self.height is not None


class Sticker(Model):
    """One sticker of a pack: an image (a media row) and, optionally, the emoji it stands for."""

    id: str
    pack_id: str
    emoji: str | None = None
    media_id: str
    url: str | None = None

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True, exclude={"pack_id"})


class StickerPack(Model):
    """A named, ordered set of stickers (docs/protocol.md, Stickers)."""

    id: str
    name: str
    stickers: tuple[Sticker, ...] = ()

    def wire(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "stickers": [s.wire() for s in self.stickers]}


# --- push devices -----------------------------------------------------------------------------

DevicePlatform = Literal["webpush", "fcm", "apns", "webhook"]


class WebPushKeys(Model):
    """The keys of a Web Push subscription (RFC 8291), base64url as the browser gives them."""

    p256dh: str
    auth: str


PushOutcome = Literal["sent", "retry", "gone", "failed"]


class PushResult(Model):
    """What a push adapter's `send` made of one push (see `chatcore.interfaces.PushAdapter`).

    `sent`: the provider accepted it. `retry`: a passing failure (a 5xx, 429, a timeout, the
    provider unreachable); try again later, not before `retry_after_seconds` when given.
    `gone`: the provider says the device no longer exists (404/410, "unregistered"): it is
    removed. `failed`: refused for good (a 4xx other than those); dropped, not retried.
    """

    outcome: PushOutcome
    retry_after_seconds: float | None = None
    detail: str = ""


class Device(Model):
    """A push device of a user (docs/protocol.md, Push devices). `user_id` is never sent.

    `token` is set for "fcm" and "apns"; `endpoint` for "webpush" and "webhook"; `keys` for
    "webpush" only. (user, platform, token or endpoint) identifies a device.
    """

    id: str
    user_id: str
    platform: DevicePlatform
    token: str | None = None
    endpoint: str | None = None
    keys: WebPushKeys | None = None
    created_ts: int

    @property
    def address(self) -> str:
        """What the device is reached at: its token or its endpoint (its identity with the
        user and platform)."""
        address = self.token if self.token is not None else self.endpoint
        assert address is not None, "a device has a token or an endpoint"
        return address

    def wire(self) -> dict[str, Any]:
        data = self.model_dump(mode="json", exclude_none=True)
        del data["user_id"]
        return data


class QueuedPush(Model):
    """A push for one device, put in the push queue (`PushQueueStorage.enqueue_pushes`).

    `push` is the JSON object the adapter gets (see `chatcore.interfaces.PushAdapter`); it is
    due for sending at `due_ts` and was made at `created_ts` (ms since the epoch; pushes too old
    to matter any more are dropped by their age). `attempts` counts its claims so far: 1 for a
    push queued already claimed by the node that sends it at once (due at the end of the lease).
    """

    id: str
    device_id: str
    push: dict[str, Any]
    due_ts: int
    created_ts: int
    attempts: int = 0


class ClaimedPush(Model):
    """A push taken from the queue to be sent now, with its device; `attempts` counts the
    claims of this push so far, this one included."""

    id: str
    device: Device
    push: dict[str, Any]
    attempts: int
    created_ts: int


class PushTarget(Model):
    """A user who may get pushes: who they are (for mentions), their settings (for their push
    preferences) and their devices, newest first."""

    user: User
    settings: dict[str, Any]
    devices: list[Device]


class PushAudience(Model):
    """What routing the pushes of a batch of messages reads (`PushQueueStorage.push_audience`):
    the rooms, and those of their members who have a device, by id."""

    rooms: dict[str, Room]
    targets: dict[str, PushTarget]

# --- administration: server admins, logins, audit log --------------------------------------


class LoginInfo(Model):
    """One login (token family) of a user, as an admin sees it: when it started, when a
    refresh token of it was last used (its start when never), when it ended (None: live)."""

    id: str
    created_ts: int
    last_used_ts: int
    ended_ts: int | None = None


class AdminUser(Model):
    """A user as the admin's list shows them: the account's state and counts.

    `last_seen_ts`: their last login or token refresh (None: never). `rooms`: rooms they are
    a member of; `messages`: messages they sent (deleted ones included); `logins`: live logins.
    """

    user: User
    is_admin: bool
    disabled: bool
    created_ts: int
    last_seen_ts: int | None = None
    rooms: int = 0
    messages: int = 0
    logins: int = 0

    def wire(self) -> dict[str, Any]:
        return {
            **self.user.wire(),
            "is_admin": self.is_admin,
            "disabled": self.disabled,
            "created_ts": self.created_ts,
            "last_seen_ts": self.last_seen_ts,
            "counts": {"rooms": self.rooms, "messages": self.messages, "logins": self.logins},
        }


class AdminRoom(Model):
    """A room as the admin's list shows it: the room with its member and message counts
    (`messages`: the room's seq, so deleted messages count)."""

    room: Room
    members: int
    messages: int

    def wire(self) -> dict[str, Any]:
        data = self.room.wire()
        del data["member_ids"]  # a count is what the list is for; GET /rooms/{id} has the ids
        data["counts"] = {"members": self.members, "messages": self.messages}
        return data


class Erasure(Model):
    """What `AdminStorage.erase_user` changed, so the service can tell the people concerned:
    the rooms the user left (each as it is now), the logins it ended, the messages it emptied
    (each now deleted, for `message_updated`), and the contacts and blockers it removed."""

    rooms: tuple[Room, ...] = ()
    ended_logins: tuple[str, ...] = ()
    removed_messages: tuple[Message, ...] = ()
    contact_ids: tuple[str, ...] = ()
    avatar_media_id: str | None = None


class AuditEntry(Model):
    """One entry of the audit log: who (`actor_id`, None for the console or a background
    job) did what (`action`, dotted: `user.disable`) to what (`target_kind`, `target_id`,
    `room_id` when it happened in a room), when (`ts`), with `details` (a JSON object)."""

    id: str
    ts: int
    actor_id: str | None = None
    action: str
    target_kind: str
    target_id: str
    room_id: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


# --- room administration: roles, mutes, bans, the room log ------------------------------------


class RoomBan(Model):
    """A user kept out of a group room (docs/protocol.md, Room administration). `by` is who
    banned them (None: the console)."""

    room_id: str
    user_id: str
    by: str | None = None
    reason: str | None = None
    ts: int


class RoomLogDraft(Model):
    """A room-log entry to store: who (`actor_id`, None: the console or a background job) did
    what (`action`, e.g. "member.ban") to what (`target_id`: a user or a message), with the
    action's `details` (a JSON object)."""

    room_id: str
    ts: int
    actor_id: str | None
    action: str
    target_id: str | None = None
    details: dict[str, Any] = {}


class RoomLogEntry(RoomLogDraft):
    """A stored room-log entry. Its `id` orders a room's log (a later entry has a greater id
    when both are compared as integers); on the wire it is a string, like every id."""

    id: str

    def wire(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "room_id": self.room_id,
            "ts": self.ts,
            "actor_id": self.actor_id,
            "action": self.action,
        }
        if self.target_id is not None:
            data["target_id"] = self.target_id
        data["details"] = self.details
        return data

# --- reports and search ------------------------------------------------------------------------

ReportStatus = Literal["open", "resolved"]


class Report(Model):
    """A report of abuse: a member reported a message of their room (docs/protocol.md, Reports).

    `message` is the message as it was when reported, whatever happened to it since. A
    resolved report has `resolved_by` (the admin), `resolved_ts` and maybe a `note`.
    """

    id: str
    room_id: str
    message_id: str
    reporter_id: str
    reason: str
    ts: int
    message: Message
    status: ReportStatus = "open"
    resolved_by: str | None = None
    resolved_ts: int | None = None
    note: str | None = None


# --- retention ---------------------------------------------------------------------------------


class PurgedMessages(Model):
    """What one `RetentionStorage.purge_messages` call deleted: how many messages, and the
    media they named (candidates for `purge_media`: others may still use them)."""

    count: int
    media_ids: tuple[str, ...] = ()


class PurgedMedia(Model):
    """What one `RetentionStorage.purge_media` call deleted: how many media rows, and the
    contents (sha256) no media row names any more, whose bytes may leave the media store."""

    count: int
    unused_sha256: tuple[str, ...] = ()
