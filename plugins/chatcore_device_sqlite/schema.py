"""The device store's tables, and how a file is brought to the newest schema.

The schema version lives in the file itself (`PRAGMA user_version`: 0 for a new file).
`UPGRADES[n]` is the list of statements that takes a file from version n to n + 1; `upgrade`
runs, at `open()`, every step from the file's version to `VERSION`, in the transaction of
`open()` (a crash leaves the file at its old version, never half-way). To change the schema,
append a step (never edit a released one): e.g. `["ALTER TABLE rooms ADD COLUMN muted INTEGER
NOT NULL DEFAULT 0"]`; `VERSION` follows by itself. A file newer than this code is refused (its
data may mean something this code does not know).

Why not Alembic, as the server's storage has: a device store is one SQLite file per device,
used by one account, upgraded in place by whoever opens it first. There are no several
databases to coordinate, no operator to run a command and no other dialect to support, and a
step list keyed by `user_version` does all that needs, with no migration scripts to ship or
version table to keep.

Messages: `local_id` is an explicit INTEGER PRIMARY KEY (the row's rowid) because the full-text
index (`messages_fts`, FTS5 with external content) refers to rows by rowid, and VACUUM may
renumber the rowids of a table without one. The key a message is stored under is the UNIQUE
(room_id, seq) index, which every room query (history, unread, cursors) uses.

The search index covers only the messages worth finding: the view `searchable_messages` (not
deleted, with a body) is its content, and the triggers keep the index equal to the view as
messages are added, edited, deleted and forgotten.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from chatcore.errors import StartupError

_VERSION_1 = [
    """
    CREATE TABLE account (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        server_url TEXT NOT NULL,
        user_id TEXT NOT NULL,
        data TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE rooms (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        name TEXT,
        member_ids TEXT NOT NULL DEFAULT '[]',
        owner_id TEXT,
        last_seq INTEGER NOT NULL DEFAULT 0,
        read_seq INTEGER NOT NULL DEFAULT 0,
        synced_seq INTEGER NOT NULL DEFAULT 0,
        last_ts INTEGER NOT NULL DEFAULT 0
    )
    """,
    """
    CREATE TABLE messages (
        local_id INTEGER PRIMARY KEY,
        room_id TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        id TEXT NOT NULL UNIQUE,
        sender_id TEXT NOT NULL,
        ref TEXT NOT NULL,
        kind TEXT NOT NULL,
        body TEXT NOT NULL,
        media_id TEXT,
        sticker_id TEXT,
        reply_to TEXT,
        ts INTEGER NOT NULL,
        edited_ts INTEGER,
        deleted INTEGER NOT NULL DEFAULT 0,
        UNIQUE (room_id, seq)
    )
    """,
    """
    CREATE VIEW searchable_messages (local_id, body) AS
        SELECT local_id, body FROM messages WHERE deleted = 0 AND body <> ''
    """,
    """
    CREATE VIRTUAL TABLE messages_fts USING fts5(
        body,
        content = 'searchable_messages',
        content_rowid = 'local_id',
        tokenize = 'unicode61 remove_diacritics 2'
    )
    """,
    """
    CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages
    WHEN new.deleted = 0 AND new.body <> '' BEGIN
        INSERT INTO messages_fts (rowid, body) VALUES (new.local_id, new.body);
    END
    """,
    """
    CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
    WHEN old.deleted = 0 AND old.body <> '' BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, body)
        VALUES ('delete', old.local_id, old.body);
    END
    """,
    """
    CREATE TRIGGER messages_fts_update AFTER UPDATE OF body, deleted ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, body)
        SELECT 'delete', old.local_id, old.body WHERE old.deleted = 0 AND old.body <> '';
        INSERT INTO messages_fts (rowid, body)
        SELECT new.local_id, new.body WHERE new.deleted = 0 AND new.body <> '';
    END
    """,
    """
    CREATE TABLE contacts (
        user_id TEXT PRIMARY KEY,
        username TEXT NOT NULL,
        since_ts INTEGER NOT NULL,
        presence TEXT NOT NULL,
        user TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE invitations (
        id TEXT PRIMARY KEY,
        incoming INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        data TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE outbox (
        ref TEXT PRIMARY KEY,
        room_id TEXT NOT NULL,
        position INTEGER NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        body TEXT NOT NULL,
        media_id TEXT,
        sticker_id TEXT,
        reply_to TEXT,
        file_path TEXT,
        created_ts INTEGER NOT NULL,
        state TEXT NOT NULL,
        transmitted INTEGER NOT NULL,
        attempts INTEGER NOT NULL,
        error_code TEXT,
        error_message TEXT
    )
    """,
    """
    CREATE TABLE settings (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        data TEXT NOT NULL
    )
    """,
]

#: Version 2: users the device has seen (room members, senders), so that names show offline.
_VERSION_2 = [
    """
    CREATE TABLE users (
        id TEXT PRIMARY KEY,
        data TEXT NOT NULL
    )
    """,
]

#: The statements of each step: UPGRADES[n] takes a file from version n to n + 1.
UPGRADES: list[list[str]] = [_VERSION_1, _VERSION_2]

#: The schema version this code writes and reads.
VERSION = len(UPGRADES)


async def schema_version(conn: AsyncConnection) -> int:
    return int((await conn.exec_driver_sql("PRAGMA user_version")).scalar_one())


async def upgrade(conn: AsyncConnection, where: str) -> tuple[int, int]:
    """Bring the file to `VERSION`, inside the caller's (write) transaction; the versions
    (before, after). `where` names the file in the error for a file newer than this code."""
    found = await schema_version(conn)
    if found > VERSION:
        raise StartupError(
            f"the device store {where} has schema version {found}, newer than this chatcore "
            f"reads ({VERSION}): upgrade chatcore, or use another device_store.path"
        )
    for step in UPGRADES[found:]:
        for statement in step:
            await conn.exec_driver_sql(statement)
    if found != VERSION:
        # PRAGMA takes no bound parameters; VERSION is an int of this module.
        await conn.exec_driver_sql(f"PRAGMA user_version = {VERSION}")
    return found, VERSION
