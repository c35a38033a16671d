"""The tables, as SQLAlchemy Core metadata: the schema the migrations in `migrations/` build.

Times are integer milliseconds since the epoch (BigInteger); ids are opaque strings made by
the storage. Every change here needs a new migration; a test fails when the two disagree.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

# Named constraints make migrations deterministic on every database (and let SQLite's batch
# mode find them again later).
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

ID = 32  # uuid4().hex

users = Table(
    "users",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("username", String(64), nullable=False),
    # The unique key: usernames are unique case-insensitively and keep their case.
    Column("username_lower", String(64), nullable=False),
    Column("display_name", String(256), nullable=False),
    # Lower-cased by Python for prefix search: the databases' own lower() differ (SQLite folds
    # ASCII only, PostgreSQL follows the database's locale).
    Column("display_name_lower", String(256), nullable=False),
    Column("avatar_media_id", String(64), nullable=True),
    Column("password_hash", Text, nullable=False),
    Column("created_ts", BigInteger, nullable=False),
    # Administration (migration 0010): a server admin; when the account was disabled (NULL:
    # it is not); when it was erased (NULL: it was not; an erased user's row is a tombstone
    # that keeps their messages' sender); when they last logged in or refreshed a token.
    Column("is_admin", Boolean, nullable=False, server_default=text("false")),
    Column("disabled_ts", BigInteger, nullable=True),
    Column("erased_ts", BigInteger, nullable=True),
    Column("last_seen_ts", BigInteger, nullable=True),
    UniqueConstraint("username_lower"),
)

# One login is one refresh-token family, started by a password login.
logins = Table(
    "logins",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("user_id", String(ID), ForeignKey("users.id"), nullable=False, index=True),
    Column("created_ts", BigInteger, nullable=False),
    Column("ended_ts", BigInteger, nullable=True),
    Index(None, "ended_ts"),
)

# Refresh tokens are stored only as hashes; a used one is kept to detect reuse (theft).
refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", String(128), primary_key=True),
    Column("login_id", String(ID), ForeignKey("logins.id"), nullable=False, index=True),
    Column("created_ts", BigInteger, nullable=False),
    Column("expires_ts", BigInteger, nullable=False),
    Column("used_ts", BigInteger, nullable=True),
)

# One JSON object per user, stored as text so both databases treat it alike.
user_settings = Table(
    "user_settings",
    metadata,
    Column("user_id", String(ID), ForeignKey("users.id"), primary_key=True),
    Column("data", Text, nullable=False),
    Column("updated_ts", BigInteger, nullable=False),
)

# A room: a direct room of two users, or a named group with an owner.
rooms = Table(
    "rooms",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("name", Text, nullable=True),
    Column("owner_id", String(ID), ForeignKey("users.id"), nullable=True),
    # The two user ids of a direct room, sorted and joined by ":"; NULL for a group. The UNIQUE
    # constraint is what makes "one direct room per pair" hold between nodes: the loser of a
    # race sees the conflict and reads the winner's room.
    Column("direct_key", String(2 * ID + 1), nullable=True),
    # The seq of the room's newest message: seqs are allocated from here, under the row lock.
    Column("last_seq", BigInteger, nullable=False, server_default="0"),
    Column("created_ts", BigInteger, nullable=False),
    # The ts of the newest message, else created_ts: room lists are ordered by it.
    Column("last_ts", BigInteger, nullable=False),
    # Room administration (migration 0011): a group's topic and avatar (a media id).
    Column("topic", Text, nullable=True),
    Column("avatar_media_id", String(64), nullable=True),
    UniqueConstraint("direct_key"),
    CheckConstraint("kind IN ('direct', 'group')", name="kind"),
)

room_members = Table(
    "room_members",
    metadata,
    Column("room_id", String(ID), ForeignKey("rooms.id"), primary_key=True),
    Column("user_id", String(ID), ForeignKey("users.id"), primary_key=True),
    Column("joined_ts", BigInteger, nullable=False),
    # The member's read receipt: the highest seq they have read (moves forward only).
    Column("read_seq", BigInteger, nullable=False, server_default="0"),
    # Room administration (migration 0011): the member's role in a group (the owner's row says
    # "owner", in step with rooms.owner_id), and until when they cannot send (NULL: never).
    Column("role", String(16), nullable=False, server_default="member"),
    Column("muted_until_ts", BigInteger, nullable=True),
    # The primary key (room_id, user_id) serves per-room lookups; this one "rooms of a user".
    Index(None, "user_id"),
    CheckConstraint("role IN ('owner', 'admin', 'member')", name="role"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", String(ID), primary_key=True),
    # No foreign keys (to rooms, users): every message is stored by a batch that found its
    # room and its sender among the room's members (whose rows have them), and rooms and users
    # are never deleted; checking again per row cost every send a lookup per key.
    Column("room_id", String(ID), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("sender_id", String(ID), nullable=False),
    Column("ref", String(128), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("body", Text, nullable=False),
    # Ids made by other plugins (media storage, sticker packs): no length assumed.
    Column("media_id", Text, nullable=True),
    Column("sticker_id", Text, nullable=True),
    # Checked to be a message of the same room when stored; no foreign key, so that a future
    # retention job may purge old messages that newer ones still quote.
    Column("reply_to", String(ID), nullable=True),
    Column("ts", BigInteger, nullable=False),
    Column("edited_ts", BigInteger, nullable=True),
    Column("deleted", Boolean, nullable=False),
    # When the message was last edited or deleted (NULL: never): `updated_since` reads it.
    Column("updated_ts", BigInteger, nullable=True),
    # History pages, catch-up, the last message and unread counts are range scans of this.
    UniqueConstraint("room_id", "seq"),
    # The idempotency key (sender, room, ref), enforced by the database. Its column order puts
    # room_id and ref first so that one batch looks up all its keys of a room with
    # `room_id IN (...) AND ref IN (...)`, an index scan that needs no row-value syntax.
    UniqueConstraint("room_id", "ref", "sender_id"),
    # Only edited or deleted messages are indexed (few): a new message costs no entry here.
    Index(
        None,
        "room_id",
        "updated_ts",
        postgresql_where=text("updated_ts IS NOT NULL"),
        sqlite_where=text("updated_ts IS NOT NULL"),
    ),
)

# --- contacts and blocks -----------------------------------------------------------------------

# A friend invitation. `pending_key` is the pair's key (the two ids, sorted, joined by ":")
# while the invitation is pending and NULL once answered: its UNIQUE constraint is what keeps
# one pending invitation per pair, in either direction, between nodes too.
invitations = Table(
    "invitations",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("from_user_id", String(ID), ForeignKey("users.id"), nullable=False),
    Column("to_user_id", String(ID), ForeignKey("users.id"), nullable=False),
    Column("status", String(16), nullable=False),
    # Invisible to the invitee: sent by a user the invitee blocks (see chatcore.server.contacts).
    Column("hidden", Boolean, nullable=False),
    Column("pending_key", String(2 * ID + 1), nullable=True),
    Column("created_ts", BigInteger, nullable=False),
    Column("answered_ts", BigInteger, nullable=True),
    UniqueConstraint("pending_key"),
    CheckConstraint("status IN ('pending', 'accepted', 'declined')", name="status"),
    # The incoming and outgoing lists: one user's invitations of one status.
    Index(None, "to_user_id", "status"),
    Index(None, "from_user_id", "status"),
)

# A contact is two rows, (a, b) and (b, a): a user's list is a range scan of the primary key.
contacts = Table(
    "contacts",
    metadata,
    Column("user_id", String(ID), ForeignKey("users.id"), primary_key=True),
    Column("contact_id", String(ID), ForeignKey("users.id"), primary_key=True),
    Column("since_ts", BigInteger, nullable=False),
)

blocks = Table(
    "blocks",
    metadata,
    Column("blocker_id", String(ID), ForeignKey("users.id"), primary_key=True),
    Column("blocked_id", String(ID), ForeignKey("users.id"), primary_key=True),
    Column("created_ts", BigInteger, nullable=False),
    # "Who blocks this user" (presence): the primary key serves "whom this user blocks".
    Index(None, "blocked_id"),
)

# --- media and stickers ------------------------------------------------------------------------

# An upload's metadata; the bytes live in the media store under a key made from sha256.
# `uploader_id` is NULL for sticker assets (imported by an admin or a plugin).
media = Table(
    "media",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("uploader_id", String(ID), ForeignKey("users.id"), nullable=True),
    Column("content_type", String(100), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("width", Integer, nullable=True),
    Column("height", Integer, nullable=True),
    # The client's file name, a label only (Content-Disposition); never part of a key.
    Column("filename", Text, nullable=True),
    Column("created_ts", BigInteger, nullable=False),
)

sticker_packs = Table(
    "sticker_packs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("updated_ts", BigInteger, nullable=False),
)

stickers = Table(
    "stickers",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("pack_id", String(64), ForeignKey("sticker_packs.id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("emoji", Text, nullable=True),
    Column("media_id", String(ID), ForeignKey("media.id"), nullable=False),
    Index(None, "pack_id", "position"),
    # "Is this media a sticker image" (who may read it).
    Index(None, "media_id"),
)

# Who may read a media: the messages that share it, the users whose avatar it is. Only the few
# rows that carry a media id are indexed.
Index(
    "ix_messages_media_id",
    messages.c.media_id,
    postgresql_where=text("media_id IS NOT NULL"),
    sqlite_where=text("media_id IS NOT NULL"),
)
Index(
    "ix_users_avatar_media_id",
    users.c.avatar_media_id,
    postgresql_where=text("avatar_media_id IS NOT NULL"),
    sqlite_where=text("avatar_media_id IS NOT NULL"),
)

# --- push devices ------------------------------------------------------------------------------

# Where a user's notifications go. A device is identified by (user, platform, address): the
# address is its token or endpoint, up to 4 KiB, too long for a PostgreSQL index entry, so the
# unique key holds its SHA-256 instead. `keys_json` is the Web Push keys as JSON text (NULL for
# the other platforms).
push_devices = Table(
    "push_devices",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("user_id", String(ID), ForeignKey("users.id"), nullable=False),
    Column("platform", String(16), nullable=False),
    Column("token", Text, nullable=True),
    Column("endpoint", Text, nullable=True),
    Column("keys_json", Text, nullable=True),
    Column("address_sha256", String(64), nullable=False),
    Column("created_ts", BigInteger, nullable=False),
    # Also serves "the devices of a user" (its first column).
    UniqueConstraint("user_id", "platform", "address_sha256"),
    CheckConstraint("platform IN ('webpush', 'fcm', 'apns', 'webhook')", name="platform"),
)

# --- push queue --------------------------------------------------------------------------------

# Pushes waiting to be sent (see `chatcore.interfaces.PushQueueStorage`). No foreign key to
# push_devices: removing a device deletes its pushes in the same transaction, and a push queued
# while its device was being removed is found without one when claimed, and deleted then.
# `due_ts` orders the claims (its index); a claimed push is due again when its lease runs out.
push_queue = Table(
    "push_queue",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("device_id", String(ID), nullable=False, index=True),
    Column("push_json", Text, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("due_ts", BigInteger, nullable=False, index=True),
    Column("created_ts", BigInteger, nullable=False),
)

# --- rate limits -------------------------------------------------------------------------------

# Token buckets shared by the nodes (see `chatcore.interfaces.RateLimitStorage`), one row each:
# `full_ts`, when the bucket is full again (the generic cell rate algorithm). A row whose
# `full_ts` has passed is a full bucket, as good as none: those are deleted (its index).
rate_limits = Table(
    "rate_limits",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("full_ts", BigInteger, nullable=False, index=True),
)

# --- administration: audit log -----------------------------------------------------------------

# Every admin and moderator action (see `chatcore.interfaces.AdminStorage`). The id grows with
# each entry: it orders the log and is the paging cursor. `actor_id` is NULL for the console
# or a background job; no foreign keys, so that entries outlive what they name (an erased user
# keeps their tombstone row anyway). `details` is a JSON object as text.
audit_log = Table(
    "audit_log",
    metadata,
    # INTEGER on SQLite: only an INTEGER PRIMARY KEY counts up there (the rowid).
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("ts", BigInteger, nullable=False),
    Column("actor_id", String(ID), nullable=True),
    Column("action", String(64), nullable=False),
    Column("target_kind", String(32), nullable=False),
    Column("target_id", String(128), nullable=False),
    Column("room_id", String(ID), nullable=True),
    Column("details", Text, nullable=False),
    # "The log of one target", newest first (the primary key serves the whole log).
    Index(None, "target_kind", "target_id", "id"),
)

# The messages a user sent: counts in the admin's user list, and erasure with its messages
# removed (an entry per message, the price of both).
Index("ix_messages_sender_id", messages.c.sender_id)

# --- room administration: bans, the room log ---------------------------------------------------

# Who is kept out of a group room. No foreign keys to users: a ban (and the log below) names
# users by id only, and outlives what an erasure removes of an account.
room_bans = Table(
    "room_bans",
    metadata,
    Column("room_id", String(ID), ForeignKey("rooms.id"), primary_key=True),
    Column("user_id", String(ID), primary_key=True),
    Column("banned_by", String(ID), nullable=True),
    Column("reason", Text, nullable=True),
    Column("ts", BigInteger, nullable=False),
)

# A room's administrative history: one row per change (who did what), read newest first by
# `id`, which only grows (an INTEGER PRIMARY KEY on SQLite, a BIGSERIAL on PostgreSQL).
# `details` is a JSON object as text. `actor_id` NULL: the console or a background job.
room_log = Table(
    "room_log",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("room_id", String(ID), ForeignKey("rooms.id"), nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("actor_id", String(ID), nullable=True),
    Column("action", String(32), nullable=False),
    Column("target_id", String(ID), nullable=True),
    Column("details", Text, nullable=False),
    # A room's history, page by page.
    Index(None, "room_id", "id"),
)

# --- reports and search ------------------------------------------------------------------------

# A report of abuse: a member reports a message of their room, a server admin resolves it.
# `message_json` is the message as it was when reported (a `Message` as JSON text): the admin
# judges that, even after an edit, a deletion or a retention purge. No foreign keys: the
# report outlives what it names (an erased user, a purged message), as the audit log does.
# An open report has `resolved_ts` NULL; the partial unique index keeps one open report per
# (message, reporter), also between nodes: a repeat answers the open one.
reports = Table(
    "reports",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("room_id", String(ID), nullable=False),
    Column("message_id", String(ID), nullable=False),
    # The reported message's sender: an erasure finds the copies of their messages by it.
    Column("sender_id", String(ID), nullable=False, index=True),
    Column("reporter_id", String(ID), nullable=False, index=True),
    Column("reason", Text, nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("message_json", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("resolved_by", String(ID), nullable=True),
    Column("resolved_ts", BigInteger, nullable=True),
    Column("note", Text, nullable=True),
    CheckConstraint("status IN ('open', 'resolved')", name="status"),
    # The admins' list: one status, newest first (`ts`, then `id`, is the paging order).
    Index(None, "status", "ts", "id"),
    Index(None, "ts", "id"),
    Index(
        None,
        "message_id",
        "reporter_id",
        unique=True,
        postgresql_where=text("resolved_ts IS NULL"),
        sqlite_where=text("resolved_ts IS NULL"),
    ),
)

#: The full-text index of messages, made by migration 0012 in a form SQLAlchemy cannot
#: describe: on SQLite the FTS5 table `messages_fts` (external content on `messages`, kept by
#: triggers; FTS5 keeps its shadow tables `messages_fts_*` beside it), on PostgreSQL the GIN
#: index `ix_messages_search` on `to_tsvector('simple', body)`. Schema comparisons leave
#: them out (`described`).
MESSAGES_FTS = "messages_fts"
MESSAGES_SEARCH_INDEX = "ix_messages_search"


def described(name: str | None, type_: str, parent_names: object) -> bool:
    """False for the search index's objects, which this metadata does not describe: an
    Alembic `include_name` hook (autogenerate, and the test that migrations agree with it)."""
    if name is None:
        return True
    if type_ == "table":
        return name != MESSAGES_FTS and not name.startswith(MESSAGES_FTS + "_")
    return not (type_ == "index" and name == MESSAGES_SEARCH_INDEX)

# --- retention ---------------------------------------------------------------------------------

# A room's own retention in days (see `chatcore.interfaces.RetentionStorage`); no row: the
# server's default. No foreign key, like the other tables rooms may outlive or not: a row
# naming a room that is gone is harmless.
room_retention = Table(
    "room_retention",
    metadata,
    Column("room_id", String(ID), primary_key=True),
    Column("days", Integer, nullable=False),
    Column("updated_ts", BigInteger, nullable=False),
)

# Leases of cluster-wide background jobs: `holder` (a node) runs job `name` until `until_ts`;
# a lease whose time has passed is free. The primary key is what decides between nodes.
job_leases = Table(
    "job_leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("until_ts", BigInteger, nullable=False),
)

# "Is this media a room's avatar" (the retention job keeps media in use): only the few rows
# with an avatar are indexed, like users' avatars.
Index(
    "ix_rooms_avatar_media_id",
    rooms.c.avatar_media_id,
    postgresql_where=text("avatar_media_id IS NOT NULL"),
    sqlite_where=text("avatar_media_id IS NOT NULL"),
)
