"""The typed interfaces the engine codes against, one per area.

A backend is any object with these methods; it is built by its plugin's provider hook (see
`chatcore.hookspecs`). Every method that may wait on I/O is a coroutine and must never block
the event loop: run blocking work (hashing, file I/O, a synchronous driver) in a worker thread.
`Storage` joins one small protocol per area (users, profile, rooms, messages, contacts, media,
stickers, devices, push queue, rate limits);
`PushAdapter` is what sends a push to one platform (webhook, Web Push, FCM, APNs: docs/push.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from chatcore.errors import ChatError
from chatcore.models import (
    AdminRoom,
    AdminUser,
    AuditEntry,
    BlockChange,
    ClaimedPush,
    Contact,
    Credentials,
    Device,
    Draft,
    Erasure,
    Identity,
    Invitation,
    InvitationStatus,
    LoginInfo,
    Media,
    MediaPolicy,
    Message,
    PurgedMedia,
    PurgedMessages,
    PushAudience,
    PushResult,
    QueuedPush,
    RefreshOutcome,
    Report,
    ReportStatus,
    Room,
    RoomBan,
    RoomLogDraft,
    RoomLogEntry,
    RoomRole,
    RoomView,
    Sticker,
    StickerPack,
    Stored,
    TokenPair,
    User,
)


@runtime_checkable
class Lifecycle(Protocol):
    async def start(self) -> None:
        """Connect, create what is missing (tables, folders); called once before serving.

        A service that cannot be reached raises `chatcore.server.app.StartupError` (or an `OSError`,
        such as a `ConnectionError`) whose message is one line naming the service, where it
        was looked for and why it failed: that line is all an operator sees.
        """

    async def close(self) -> None:
        """Release connections and files; called once at shutdown."""


class UserStorage(Protocol):
    """Users and logins (token families) with their refresh tokens.

    Usernames are unique case-insensitively, also under concurrent calls from several nodes,
    and keep the case they were registered with. A login is one token family, started by a
    password login; refresh tokens are stored only as hashes.
    """

    async def create_user(self, username: str, password_hash: str, display_name: str) -> User:
        """Store a new user; raise ChatError(conflict) when the username is taken."""

    async def get_user(self, user_id: str) -> User | None: ...

    async def get_user_by_username(self, username: str) -> User | None:
        """The user with this username (case-insensitive), to invite by username."""

    async def get_credentials(self, username: str) -> Credentials | None:
        """The user with this username (case-insensitive) and their password hash."""

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        """Replace a hash (after a password change, or a re-hash with newer parameters)."""

    async def search_users(self, prefix: str, limit: int) -> list[User]:
        """Users whose username or display name starts with `prefix`, case-insensitively,
        ordered by username; at most `limit`."""

    async def list_users(self, limit: int, offset: int = 0) -> list[User]:
        """Users ordered by username (for admin commands)."""

    async def create_login(
        self, user_id: str, refresh_hash: str, refresh_expires_ts: int, now_ts: int
    ) -> str:
        """Start a login with its first refresh token (stored only as a hash); return its id."""

    async def rotate_refresh_token(
        self, old_hash: str, new_hash: str, new_expires_ts: int, now_ts: int
    ) -> RefreshOutcome:
        """Atomically mark the token `old_hash` used and store `new_hash` for the same login.

        Only an unused, unexpired token of a live login rotates ("ok"); two concurrent calls with
        the same token never both succeed. Nothing is written for any other status.
        """

    async def end_login(self, login_id: str, now_ts: int) -> None:
        """End a login: its refresh tokens stop working. Ending it twice is harmless."""

    async def login_ended(self, login_id: str) -> bool:
        """True when the login was ended or does not exist."""

    async def ended_logins_since(self, since_ts: int) -> list[str]:
        """Ids of logins ended at or after `since_ts` (to fill a node's revocation list)."""


class ProfileStorage(Protocol):
    """What a user changes about themselves: the public profile and private settings.

    Settings are one JSON object per user, read back as stored; a user who never stored any
    has `{}`.
    """

    async def update_profile(self, user_id: str, changes: Mapping[str, str | None]) -> User | None:
        """Change `display_name` and/or `avatar_media_id` (None clears the avatar) of a user;
        keys absent from `changes` are left as they are. None when the user does not exist."""

    async def get_settings(self, user_id: str) -> dict[str, Any]: ...

    async def put_settings(self, user_id: str, settings: dict[str, Any]) -> None:
        """Replace the user's settings; raise ChatError (not_found) when the user does not
        exist."""


class RoomStorage(Protocol):
    """Rooms, their members and how far each member has read.

    Membership is the only authorization the storage knows; callers check it.
    """

    async def create_direct_room(self, user_a: str, user_b: str, now_ts: int) -> tuple[Room, bool]:
        """The direct room of this pair, created when missing; True when this call created it.

        One room per unordered pair, also under concurrent calls from several nodes.
        """

    async def create_group_room(
        self, owner_id: str, name: str, member_ids: Sequence[str], now_ts: int
    ) -> Room:
        """A new group room with the owner and the given (existing) users as members."""

    async def get_room(self, room_id: str) -> Room | None: ...

    async def add_member(self, room_id: str, user_id: str, now_ts: int) -> Room | None:
        """Add a member; return the room after the change, or None when already a member."""

    async def remove_member(self, room_id: str, user_id: str) -> Room | None:
        """Remove a member; return the room after the change, or None when not a member.

        When a group's owner leaves, ownership passes to the member who joined first (none
        when the room is left empty).
        """

    async def list_rooms(self, user_id: str) -> list[RoomView]:
        """The user's rooms, most recently active first (last message ts, else creation ts),
        each with its last message and the user's unread count: non-deleted messages of others
        with a seq above the user's read seq."""

    async def room_view(self, room_id: str, user_id: str) -> RoomView | None:
        """One room as `list_rooms` shows it, or None when the user is not a member."""

    async def room_seqs(self, user_id: str) -> dict[str, int]:
        """`{room_id: last_seq}` for every room the user belongs to."""

    async def direct_peers(self, user_id: str) -> list[str]:
        """Users who share a direct room with this user."""

    async def mark_read(self, room_id: str, user_id: str, seq: int) -> int | None:
        """Move the user's read seq to min(seq, last_seq) if that is higher than before.

        Return the new read seq when it moved, else None (never moves backwards).
        """


class MessageStorage(Protocol):
    """Messages: stored in batches with gapless per-room seqs, read by seq, edited, deleted."""

    async def store_messages(self, drafts: Sequence[Draft]) -> list[Stored | ChatError]:
        """Store a batch of messages in one transaction (group commit); one answer per draft.

        For each draft, in order: a message with the same (sender_id, room_id, ref) already
        stored is returned unchanged (`created=False`, nothing written); a sender who is not a
        member answers `ChatError(not_found)`; in a direct room where either member blocks the
        other, the error of `chatcore.server.contacts.block_refusal` for the sender (`forbidden`:
        the
        blocker reads of their block, the blocked user only that the other does not accept
        it); a sender muted in the room at the draft's time (`muted_until_ts > ts`: see
        `ModerationStorage`) answers `chatcore.server.moderation.muted_refusal` (`forbidden`);
        a `reply_to` that is not a message of the room answers `ChatError(bad_request)`;
        otherwise the message gets the room's next seq (allocated inside this transaction: no
        gaps, no reuse, also with concurrent writers on other nodes) and `created=True`. An
        error for one draft writes nothing for it and does not affect the others. When this
        returns, every created message is durable.
        """

    async def find_message_by_ref(self, sender_id: str, room_id: str, ref: str) -> Message | None:
        """The message stored under an idempotency key, if any."""

    async def get_message(self, room_id: str, message_id: str) -> Message | None: ...

    async def messages_after(self, room_id: str, after_seq: int, limit: int) -> list[Message]:
        """Messages with seq > after_seq, oldest first, at most `limit`."""

    async def messages_before(
        self, room_id: str, before_seq: int | None, limit: int
    ) -> list[Message]:
        """Messages with seq < before_seq (None: the newest), newest first, at most `limit`."""

    async def updated_since(self, room_id: str, since_ts: int, max_seq: int) -> list[Message]:
        """Messages with seq <= max_seq edited or deleted after `since_ts`, in seq order."""

    async def edit_message(
        self, room_id: str, message_id: str, body: str, now_ts: int
    ) -> Message | None:
        """Replace the body (sets edited_ts); None when missing or deleted."""

    async def delete_message(self, room_id: str, message_id: str, now_ts: int) -> Message | None:
        """Mark deleted: body "", media_id and sticker_id cleared, seq kept. None when missing.
        Deleting twice returns the deleted message."""


class ContactStorage(Protocol):
    """Contacts (friends), invitations and blocks.

    Contacts are symmetric: when A has B, B has A. At most one invitation between two users is
    pending at a time, whichever of them sent it, also under concurrent calls from several
    nodes. Storage enforces that and the effects of a block; who may do what (blocks refusing
    invitations, only the invitee accepting, ...) is decided by `chatcore.server.contacts`.
    """

    async def create_invitation(
        self, from_id: str, to_id: str, now_ts: int, hidden: bool = False
    ) -> tuple[Invitation, bool]:
        """A new pending invitation, and True; or, when an invitation between the two (in
        either direction) is pending already, that one unchanged, and False.

        `hidden`: invisible to the invitee (see `Invitation.hidden`). Raise ChatError
        (not_found) when either user does not exist.
        """

    async def get_invitation(self, invitation_id: str) -> Invitation | None: ...

    async def answer_invitation(
        self, invitation_id: str, status: InvitationStatus, now_ts: int
    ) -> Invitation | None:
        """Move a pending invitation to "accepted" (the two become contacts since `now_ts`,
        unless they are already) or "declined"; return it after the change. None when it is
        not pending (any more): of two concurrent answers exactly one succeeds."""

    async def pending_invitations(self, user_id: str) -> tuple[list[Invitation], list[Invitation]]:
        """(incoming, outgoing) pending invitations of the user, newest first. Incoming leaves
        out hidden ones; outgoing includes them."""

    async def list_contacts(self, user_id: str) -> list[Contact]:
        """The user's contacts ordered by username (case-insensitive)."""

    async def get_contact(self, user_id: str, other_id: str) -> Contact | None:
        """`other_id` as a contact of `user_id`, or None."""

    async def contact_ids(self, user_id: str) -> list[str]:
        """Ids of the user's contacts (for presence)."""

    async def remove_contact(self, user_id: str, other_id: str) -> bool:
        """End the contact on both sides; True when there was one."""

    async def block(self, blocker_id: str, blocked_id: str, now_ts: int) -> BlockChange:
        """Record that `blocker_id` blocks `blocked_id` (again: nothing changes), and in the
        same transaction: end their contact, decline the pending invitations from the blocker
        to the blocked user and hide those from the blocked user to the blocker.

        Raise ChatError (not_found) when either user does not exist.
        """

    async def unblock(self, blocker_id: str, blocked_id: str, now_ts: int) -> list[Invitation]:
        """Remove the block, if any, and decline the invitations from the blocked user that it
        hid (they stay unseen); return those."""

    async def block_state(self, user_a: str, user_b: str) -> tuple[bool, bool]:
        """(a blocks b, b blocks a)."""

    async def blocked_users(self, blocker_id: str) -> list[User]:
        """The users `blocker_id` blocks, ordered by username (case-insensitive)."""

    async def blocks_involving(self, user_id: str) -> list[str]:
        """Ids of the users who block `user_id` or whom `user_id` blocks."""


class DeviceStorage(Protocol):
    """Push devices: where a user's notifications may be sent (docs/protocol.md, Push devices).

    A device is identified by (user, platform, address), the address being its token or its
    endpoint; storage keeps one row per identity, also under concurrent calls from several
    nodes. The rules of what a device looks like are `chatcore.server.devices`'; ids given by
    clients
    may be anything (an id that cannot exist answers False, never an error).
    """

    async def add_device(self, device: Device, max_devices: int) -> tuple[Device, bool]:
        """Store `device` (its `id` and `created_ts` as given) and return it with True; or,
        when the user has a device with the same platform and address, return that one and
        False, with its `keys` replaced by the given ones when they differ (a renewed Web Push
        subscription). Nothing else of an existing device changes.

        Raise ChatError (conflict) when the device is new and the user has `max_devices`
        already (counted in the same transaction), and ChatError (not_found) when the user
        does not exist.
        """

    async def list_devices(self, user_id: str) -> list[Device]:
        """The user's devices, newest first (created_ts, then id, descending)."""

    async def delete_device(self, user_id: str, device_id: str) -> bool:
        """Remove the device when it is one of the user's; True when it was."""


class PushQueueStorage(Protocol):
    """The push queue: pushes waiting to be sent, kept across restarts and shared by the nodes.

    Any node may send any push. A push is claimed before it is sent: a claim makes it due again
    only once its lease has run out, so a node that dies while sending leaves it to another
    (pushes are sent at least once). Removing a device (`delete_device`) removes the pushes
    queued for it, in the same transaction; a push whose device is gone is never claimed.
    """

    async def enqueue_pushes(self, pushes: Sequence[QueuedPush]) -> None:
        """Store these pushes, with their `due_ts` and `attempts` (their devices may have been
        removed meanwhile: such pushes are never claimed). A node that sends a push at once
        queues it as claimed: due at the end of its lease, with one attempt."""

    async def claim_pushes(self, now_ts: int, lease_ms: int, limit: int) -> list[ClaimedPush]:
        """Up to `limit` pushes due at `now_ts` (`due_ts <= now_ts`), earliest due first,
        each now due again only at `now_ts + lease_ms` with its attempts counted one up.
        Concurrent claims, also from several nodes, never return the same push twice within
        its lease."""

    async def settle_pushes(self, finished: Sequence[str], retries: Mapping[str, int]) -> None:
        """In one transaction: remove the `finished` pushes (sent, refused for good, or
        dropped), and make each push of `retries` due again at its time (a passing failure).
        Pushes that are not there any more are no error."""

    async def push_audience(self, room_ids: Sequence[str]) -> PushAudience:
        """The rooms (those that exist), and every member of them who has at least one device,
        with their settings and devices (newest first): what routing the pushes of a batch of
        messages needs, in one call (it runs after every batch)."""


class MediaStorage(Protocol):
    """Media metadata: what an upload is and who may read it.

    The bytes themselves live in the `MediaStore`; storage keeps what they are and who may read
    them. Ids given by clients may be anything: a lookup of an id that cannot exist answers
    None or False, never an error.
    """

    async def create_media(self, media: Media) -> Media:
        """Store a media row; when a row with the same id exists, return that one unchanged
        (sticker assets use ids derived from their content, so re-imports reuse them)."""

    async def get_media(self, media_id: str) -> Media | None: ...

    async def media_shared_with(self, media_id: str, user_id: str) -> bool:
        """True when the media is readable by `user_id` for a reason other than having uploaded
        it: it is the media of a non-deleted `media` message in a room the user belongs to, the
        image of a sticker, the avatar of a user (profiles are public), or the avatar of a
        group room the user belongs to."""


class StickerStorage(Protocol):
    """Sticker packs: named, ordered sets of stickers, each an image stored as a media row.

    Packs are public (every user sees every pack). Ids given by clients may be anything: a
    lookup of an id that cannot exist answers None, never an error.
    """

    async def put_sticker_pack(self, pack: StickerPack, now_ts: int) -> StickerPack:
        """Create or replace the pack with `pack.id` and its stickers, in one transaction. The
        stickers' media rows must exist. Return the pack as stored."""

    async def list_sticker_packs(self) -> list[StickerPack]:
        """Every pack with its stickers, packs ordered by name, stickers in pack order."""

    async def get_sticker_pack(self, pack_id: str) -> StickerPack | None: ...

    async def get_sticker(self, sticker_id: str) -> Sticker | None: ...


class RateLimitStorage(Protocol):
    """Token buckets shared by every node of a service (login throttling: a guess counts on
    every node, whichever one it reached).

    A bucket, named by an opaque key of at most 64 characters (callers hash what they limit),
    holds up to `burst` tokens and regains one every `interval_ms`. A key never used, or left
    alone until its bucket is full again, is a full bucket: storage forgets full buckets, so it
    keeps only those used within their refill time.
    """

    async def take_token(self, key: str, burst: int, interval_ms: int, now_ts: int) -> int:
        """Take one token: 0 when taken; else, taking nothing, the milliseconds until one is
        there (at least 1). Concurrent takes, also from several nodes, never take more tokens
        than the bucket holds."""

    async def return_token(self, key: str, interval_ms: int, now_ts: int) -> None:
        """Give back a token taken from the bucket (what it paid for turned out to be free);
        a full bucket stays full."""


class AdminStorage(Protocol):
    """Server administration: server admins, disabled and erased users, a user's logins,
    rooms with their counts, and the audit log.

    A user's `is_admin`, `disabled` and `deleted` are read with the user (`get_user`,
    `get_credentials`). `create_login`, and a `rotate_refresh_token` that answers "ok", set
    the user's last seen time (`AdminUser.last_seen_ts`) to their `now_ts`; `create_login`
    refuses a disabled or erased user (ChatError forbidden), also against a concurrent
    `disable_user` on another node. An erased user stays as a tombstone (`deleted`, display
    name "Deleted user", no username: their username is free again) so that their messages
    keep a sender; only `get_tombstone` reads it: to every other method (`get_user`,
    `search_users`, `get_user_by_username`, `get_credentials`, a group's members) it is no user.
    """

    async def get_tombstone(self, user_id: str) -> User | None:
        """The tombstone of an erased user (`deleted` True); None for any other id."""

    async def set_admin(self, user_id: str, is_admin: bool) -> User | None:
        """Make the user a server admin or not; the user, or None when there is no such user
        (an erased user counts as none)."""

    async def disable_user(self, user_id: str, now_ts: int) -> list[str] | None:
        """Disable the account and end every live login of it, in one transaction: the ids of
        the logins ended (to announce), or None when there is no such user. Disabling twice
        keeps the first time and ends what was started in between (nothing can be)."""

    async def enable_user(self, user_id: str) -> User | None:
        """Enable a disabled account (its ended logins stay ended); None when no such user."""

    async def user_logins(self, user_id: str, limit: int) -> list[LoginInfo]:
        """The user's logins, newest first (live and ended); at most `limit`."""

    async def end_user_logins(
        self, user_id: str, login_id: str | None, now_ts: int
    ) -> list[str]:
        """End the live login `login_id` of this user, or every live login of theirs (None):
        the ids ended by this call (a login of another user, or one ended already, is not)."""

    async def admin_users(self, query: str, limit: int, offset: int) -> list[AdminUser]:
        """Users with their state and counts, ordered by username; with `query`, those whose
        username or display name starts with it (case-insensitively). Erased users are left
        out."""

    async def admin_user(self, user_id: str) -> AdminUser | None:
        """One user as `admin_users` shows them; None when no such user or erased."""

    async def admin_rooms(self, limit: int, offset: int) -> list[AdminRoom]:
        """Rooms with member and message counts, newest first (created_ts, then id)."""

    async def shutdown_room(self, room_id: str) -> list[str] | None:
        """Remove every member of the room in one transaction, leaving it without owner and
        (a direct room) no longer the pair's direct room: the ids removed, or None when there
        is no such room. Its messages stay stored."""

    async def erase_user(self, user_id: str, remove_messages: bool, now_ts: int) -> Erasure | None:
        """Erase a user in one transaction (the answer to a data-erasure request): the row
        becomes a tombstone (no username, "Deleted user", no avatar, no password, not admin,
        disabled); their settings, contacts, invitations, blocks (both ways), push devices and
        their queued pushes, and refresh tokens are deleted; live logins ended; memberships
        removed (ownership passes on as when leaving). With `remove_messages` every message they
        sent becomes a deleted one (body "", no media or sticker, `deleted`, seq kept) updated
        at `now_ts`. The copies reports keep of their messages lose their content the same way
        and the reasons of the reports they filed become "" (the reports stay, as the record of
        what admins did). None when there is no such user (or erased already)."""

    async def add_audit_entry(
        self,
        ts: int,
        actor_id: str | None,
        action: str,
        target_kind: str,
        target_id: str,
        room_id: str | None,
        details: Mapping[str, Any],
    ) -> AuditEntry:
        """Append one entry to the audit log; its id orders the log (a later entry, a
        greater id, also between nodes as far as their commits are ordered)."""

    async def audit_entries(
        self,
        limit: int,
        before: str | None = None,
        target_kind: str | None = None,
        target_id: str | None = None,
    ) -> list[AuditEntry]:
        """Audit entries newest first; `before`: only entries older than the entry of that id
        (the paging cursor; one that is not an id of this storage gives []); with `target_kind`
        and `target_id`, only the entries about that target."""


class ModerationStorage(Protocol):
    """Room administration: roles in group rooms, topics, mutes, bans and the room log.

    Roles exist in group rooms only: each member is "owner" (exactly one while the room has
    members, the room's `owner_id`), "admin" or "member" (`Room.admin_ids` lists the admins);
    both members of a direct room are "member". Who may change what is decided by
    `chatcore.server.moderation`; storage keeps the roles consistent. A mute is a time until
    which `store_messages` refuses the member's drafts (`forbidden`, checked where membership
    is, in the batch's transaction). A ban keeps a user out of a group room; the server refuses
    adds of a banned user. The room log is a room's administrative history, apart from its
    messages: entries ordered by id (compared as integers; ids only grow).
    """

    async def update_room(self, room_id: str, changes: Mapping[str, str | None]) -> Room | None:
        """Change `name`, `topic` and/or `avatar_media_id` of a group room (None clears a
        topic or an avatar); keys absent from `changes` stay. The room after the change; None
        when there is no such group room."""

    async def set_member_role(self, room_id: str, user_id: str, role: RoomRole) -> Room | None:
        """Make a member of a group room an "admin" or a "member"; the room after the change.
        None when the user is not a member, is the owner (ownership moves only by
        `transfer_ownership`), or `role` is "owner"."""

    async def transfer_ownership(self, room_id: str, new_owner_id: str) -> Room | None:
        """In one transaction: the member `new_owner_id` becomes the owner and the owner before
        becomes an admin. The room after the change (unchanged when `new_owner_id` owns it
        already); None when they are not a member of this group room."""

    async def set_muted_until(self, room_id: str, user_id: str, until_ts: int | None) -> bool:
        """Mute a member until `until_ts` (None: unmute). False when they are not a member."""

    async def muted_until(self, room_id: str, user_id: str) -> int | None:
        """Until when a member is muted as stored (that time may be past); None when not
        muted or not a member."""

    async def ban_member(self, ban: RoomBan) -> tuple[Room, bool] | None:
        """In one transaction: store the ban (replacing the user's ban in this room, if any)
        and remove the user from the room when they are a member (the owner is never banned:
        callers check). The room after it and True when the user was a member; None when
        there is no such group room."""

    async def unban(self, room_id: str, user_id: str) -> bool:
        """Lift a ban; True when there was one."""

    async def get_ban(self, room_id: str, user_id: str) -> RoomBan | None: ...

    async def list_bans(self, room_id: str) -> list[RoomBan]:
        """The room's bans, newest first (ts, then user id, descending)."""

    async def append_room_log(self, entry: RoomLogDraft) -> RoomLogEntry:
        """Store an entry of the room's log (the room must exist); return it with its id,
        greater than the id of every entry stored before it."""

    async def room_log(
        self, room_id: str, before_id: str | None, limit: int
    ) -> list[RoomLogEntry]:
        """The room's entries with an id below `before_id` (None: the newest), newest first,
        at most `limit`. An id that cannot be one (not an integer) answers []."""


class SearchStorage(Protocol):
    """Full-text search of messages, and reports of abuse.

    Search reads words: runs of letters and digits (`chatcore.server.search.words`), anything
    else in a query separates them and is never query syntax, so no text a caller gives makes
    a search fail. A message matches when every word of the query is a word of its body, case
    aside (accents count), the last word also as the start of a word ("hel" finds "hello"). The
    index follows every change of a message, whoever writes it: an edit's old words stop
    matching and its new ones match, a deleted or removed message never matches.
    """

    async def search_messages(
        self,
        user_id: str,
        query: str,
        room_id: str | None = None,
        before: tuple[int, str] | None = None,
        limit: int = 50,
    ) -> tuple[list[Message], bool]:
        """Messages matching `query` in the rooms `user_id` is a member of now (only
        `room_id`, when given: nothing when the user is not its member), newest first by
        (`ts`, `id`), and whether more match after them. `before` is the (`ts`, `id`) of the
        last message of the previous page: the page starts below it. A query without a word,
        or a `limit` under 1, finds nothing."""

    async def create_report(self, report: Report) -> tuple[Report, bool]:
        """Store a new open report, True; or, when the same reporter has an open report of
        the same message, that one unchanged, False (also against a concurrent report on
        another node). A resolved report does not count: reporting again opens a new one."""

    async def get_report(self, report_id: str) -> Report | None:
        """The report, or None when there is no such report."""

    async def list_reports(
        self,
        status: ReportStatus | None = None,
        before: tuple[int, str] | None = None,
        limit: int = 50,
    ) -> tuple[list[Report], bool]:
        """Reports of `status` (every status: None), newest first by (`ts`, `id`), and
        whether more exist after them; `before` as for `search_messages`."""

    async def resolve_report(
        self, report_id: str, resolver_id: str, note: str | None, now_ts: int
    ) -> tuple[Report, bool] | None:
        """Resolve an open report (by `resolver_id`, with `note`): the report and True. A
        report resolved already is left as it is: it and False. None: no such report."""


class RetentionStorage(Protocol):
    """Retention: per-room settings, deleting old messages, and the lease that lets one node
    of a cluster run a job at a time.

    A room's setting is a number of days (1 to 36500) or None: the server's default
    (`[retention] default_days`) applies. Retention deletes rows: a room keeps a contiguous
    range of seqs ending at its last seq (history and catch-up read what remains), and the
    room's `last_seq` never moves back, so seqs are never reused.
    """

    async def get_room_retention(self, room_id: str) -> int | None:
        """The room's own retention in days, or None (none set, or no such room)."""

    async def set_room_retention(self, room_id: str, days: int | None, now_ts: int) -> None:
        """Set the room's own retention (None: back to the server's default)."""

    async def retention_rooms(
        self, after_id: str, limit: int, *, every_room: bool
    ) -> list[tuple[str, int | None]]:
        """A page of rooms, by id above `after_id` ("" for the first page), at most `limit`,
        each with its own retention (None: the default). `every_room` False: only the rooms
        with a setting of their own (when the default keeps everything)."""

    async def first_seq(self, room_id: str) -> int:
        """The lowest seq the room still holds; its last seq + 1 when it holds none (0 for a
        room that does not exist)."""

    async def purge_messages(self, room_id: str, before_ts: int, limit: int) -> PurgedMessages:
        """Delete, in one transaction, the room's oldest messages in seq order, at most
        `limit`, stopping at the first one with `ts >= before_ts`: what remains is always the
        newest part of the room (a message a little older than one before it waits for the
        next pass). Fewer than `limit` deleted: nothing older is left."""

    async def purge_media(
        self, before_ts: int, limit: int, only: Sequence[str] | None = None
    ) -> PurgedMedia:
        """Delete, in one transaction, up to `limit` media rows created before `before_ts`
        that nothing uses: no message, no user's or room's avatar, no sticker (given `only`,
        among those ids alone). Fewer than `limit` deleted: none is left."""

    async def claim_lease(self, name: str, holder: str, now_ts: int, lease_ms: int) -> bool:
        """Take or renew the lease `name` for `holder` until `now_ts + lease_ms`, and answer
        True, when it is free, expired (`until_ts <= now_ts`) or the holder's own; else
        change nothing and answer False. Of concurrent claims, also from several nodes, at
        most one holder wins a free lease."""

    async def release_lease(self, name: str, holder: str) -> None:
        """Give the lease up when the holder has it (another node may take it at once)."""


@runtime_checkable
class Storage(
    Lifecycle,
    UserStorage,
    ProfileStorage,
    RoomStorage,
    MessageStorage,
    ContactStorage,
    MediaStorage,
    StickerStorage,
    DeviceStorage,
    PushQueueStorage,
    RateLimitStorage,
    AdminStorage,
    ModerationStorage,
    SearchStorage,
    RetentionStorage,
    Protocol,
):
    """The system of record: every area above, in one backend sharing one database.

    Times are integer milliseconds since the epoch. Ids are opaque strings made by the storage.
    Each area's protocol states its own contract; the contract suite
    (`chatcore.testing.storage_contract`) has one test class per area.

    Optional attribute `write_lanes: int` (1 when absent): how many `store_messages` calls
    for *different* rooms may run at once. The message writer (`chatcore.server.writer`) then keeps
    that many batches in flight, each room always in the same lane.
    """

    async def ping(self) -> None:
        """Raise if the database cannot be reached (used by /healthz)."""


@runtime_checkable
class AuthBackend(Lifecycle, Protocol):
    """Passwords and tokens. The core checks username and password rules before calling it."""

    async def register(self, username: str, password: str, display_name: str) -> User:
        """Create a user (ChatError conflict when taken)."""

    async def login(self, username: str, password: str, address: str | None) -> TokenPair:
        """Start a login; ChatError unauthorized on a bad pair, rate_limited when guessing."""

    async def refresh(self, refresh_token: str) -> TokenPair:
        """Rotate a refresh token; a used one answers unauthorized and ends its login."""

    async def authenticate(self, access_token: str) -> Identity:
        """Verify an access token; ChatError unauthorized when invalid, expired or ended."""

    async def logout(self, identity: Identity) -> None:
        """End the login of `identity` on every node (its sessions close with 4401)."""

    async def hash_password(self, password: str) -> str:
        """The stored form of a password (used by admin commands and password changes)."""

    def signing_key(self, purpose: str) -> bytes:
        """A secret key for HMAC signatures made for `purpose` (e.g. "media-url").

        Derived from the auth secret, so every node sharing that secret derives the same key;
        each purpose gets its own key, so a signature made for one purpose means nothing for
        another. Available once the backend has started.
        """


@runtime_checkable
class MediaStore(Lifecycle, Protocol):
    """Where media bytes live: a folder, memory, an object store (built by
    `chatcore_media_store`). Keys are made by the server only: `/`-separated, `[a-z0-9./-]`,
    never from a client-given name. No method blocks the event loop.

    `policy` says what the store's config accepts (types, URL lifetime, thumbnail sizes, the
    pixel bound of images).
    """

    policy: MediaPolicy

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        """Write the bytes of `chunks` under `key` (replacing what was there); return their
        count. When it fails, nothing is left under `key`."""

    def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes of `key` from `start` up to, not including, `end` (None: to the end), in
        chunks. Raise FileNotFoundError (on the first iteration) when the key is missing."""

    async def size(self, key: str) -> int | None:
        """The size of `key` in bytes, or None when it does not exist."""

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> None:
        """Remove `key`; removing a missing key is harmless."""


Handler = Callable[[bytes], Awaitable[None] | None]


@runtime_checkable
class Subscription(Protocol):
    async def unsubscribe(self) -> None: ...


@runtime_checkable
class Broker(Lifecycle, Protocol):
    """Fan-out of events between the nodes of one service (and within one node).

    Delivery is at most once and a hint only: storage is the truth, and whoever misses an event
    repairs from storage. A node receives its own publications too.
    """

    async def publish(self, channel: str, data: bytes) -> None: ...

    async def subscribe(self, channel: str, handler: Handler) -> Subscription:
        """Call `handler(data)` for every publication on `channel` from now on."""

    async def ping(self) -> None:
        """Raise `ConnectionError`, saying why, when this node cannot reach the broker right
        now (used by /healthz). Cheap: a look at the connection's state, not a round trip
        (a broker keeps its own connection checked); the in-process broker always answers."""


@runtime_checkable
class PushAdapter(Lifecycle, Protocol):
    """Delivers pushes to the devices of one platform (`chatcore_push_adapters`).

    The core decides who gets a push and what it says (see `chatcore_notify`); an adapter only
    delivers one push to one device and says how that went. `push` is a JSON object of the
    core's making, at most a few KB:

        {"type": "message", "room_id", "message_id", "seq", "ts",
         "sender_id"?, "sender_name"?, "room_name"?, "preview"?, "direct": bool,
         "mention": bool}

    (`direct`: a direct room; `mention`: the text names the recipient as `@username`; an
    id-only push, for privacy, has just type, room_id, message_id and seq). An adapter
    encodes it as its provider wants, refuses to send more than `max_payload_bytes`
    (`failed`), never raises for a provider's answer (it returns a PushResult), and checks an
    endpoint it did not get from its own configuration (a webhook or Web Push URL a client
    registered) with `chatcore.server.push.ssrf` before connecting to it.
    """

    #: The `Device.platform` this adapter serves: "webpush", "fcm", "apns" or "webhook".
    platform: str
    #: The largest push (as the JSON the adapter is given) it can deliver: the provider's
    #: limit less the adapter's own overhead (Web Push: 4096 - 103 bytes of encryption).
    max_payload_bytes: int

    async def send(self, device: Device, push: Mapping[str, Any]) -> PushResult:
        """Deliver `push` to `device`; the outcome, never an exception for the provider's
        answer (network errors are `retry`)."""


class Transport(Protocol):
    """A listener clients connect to: the REST API, the WebSocket server, ...

    `url` is the absolute URL clients use (for the WebSocket server it is what /api/v1/info
    reports as `ws_url`). `start` returns once the transport is listening; `stop` stops
    accepting, finishes what it received and closes its connections.
    """

    name: str

    @property
    def url(self) -> str: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Connection(Protocol):
    """What a transport gives a WebSocket session: a way to write and a way to close.

    `send` never waits: it queues the bytes (one JSON text frame) in a bounded buffer; when the
    buffer overflows the transport closes the connection with 1013. A session that sends in
    bulk (catch-up) awaits `drain` between batches, so its own output never overflows it.
    """

    remote_address: str | None

    def send(self, data: bytes) -> None: ...

    def close(self, code: int, reason: str = "") -> None: ...

    async def drain(self) -> None:
        """Return once what was sent so far is (mostly) handed to the network: at once when the
        client keeps up, later when it reads slowly; at once too when the connection is gone."""
