"""Full-text search of messages and reports of abuse (issue 18, search).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07

The search index is kept by the database itself, whatever writes a message: the batch writers
(SQLite's writer thread on sqlite3, PostgreSQL's `chatcore_store_messages`), edits, deletions
(which set `body` "" and `deleted` true) and row removals (retention, erasure) all keep it
right without knowing it exists.

- SQLite: the FTS5 table `messages_fts`, external content on `messages` (it stores only the
  index; the text stays in `messages`), keyed by the messages' rowid. New messages are indexed
  in bulk after their commit, not by a trigger in it (`chatcore_sql.search.index_pending`,
  run before every search and every 30 seconds): a trigger indexing each row inside the message
  batch's transaction cost ~40 µs per message and the ack's tail, bulk indexing ~2 µs.
  `messages_fts_mark` holds the highest rowid indexed; the triggers on edits, deletions and row
  removals act on rows at or below it only (they tell the index the old text to forget, which
  an external content index needs exactly, and the new text to learn), and a removal that
  leaves the mark above every row lowers it, so that a rowid SQLite hands out again is indexed.
  A deletion sets `body` "", which leaves no words. The tokenizer is
  `unicode61 remove_diacritics 0`: case folds, accents count ("café" is not "cafe"), as on
  PostgreSQL. A later revision that copies `messages` in batch mode (new
  rowids, the triggers dropped with the old table) must make the index and its triggers again.
- PostgreSQL: a GIN index on the expression `to_tsvector('simple', body)`: no column is added
  (nothing per row in the table itself), and the `simple` configuration folds case without
  stemming, stop words or accent folding, as SQLite's index does. Queries name the same
  expression.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The index holds every row as it is (a deleted message's body is "", so it has no words;
# queries also leave deleted messages out): FTS5's own `rebuild` and `integrity-check` then
# agree with it, and each trigger tells the index exactly the text it had.
SQLITE_UP = (
    "CREATE VIRTUAL TABLE messages_fts USING fts5("
    "body, content='messages', content_rowid='rowid', "
    "tokenize='unicode61 remove_diacritics 0')",
    "INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')",
    "CREATE TABLE messages_fts_mark (id INTEGER PRIMARY KEY CHECK (id = 1),"
    " indexed_rowid INTEGER NOT NULL)",
    "INSERT INTO messages_fts_mark (id, indexed_rowid)"
    " SELECT 1, coalesce(max(rowid), 0) FROM messages",
    "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages"
    " WHEN old.rowid <= (SELECT indexed_rowid FROM messages_fts_mark) BEGIN"
    " INSERT INTO messages_fts (messages_fts, rowid, body)"
    " VALUES ('delete', old.rowid, old.body);"
    " UPDATE messages_fts_mark SET indexed_rowid ="
    " min(indexed_rowid, (SELECT coalesce(max(rowid), 0) FROM messages)); END",
    "CREATE TRIGGER messages_fts_update AFTER UPDATE OF body ON messages"
    " WHEN old.rowid <= (SELECT indexed_rowid FROM messages_fts_mark) BEGIN"
    " INSERT INTO messages_fts (messages_fts, rowid, body)"
    " VALUES ('delete', old.rowid, old.body);"
    " INSERT INTO messages_fts (rowid, body) VALUES (new.rowid, new.body); END",
)
SQLITE_DOWN = (
    "DROP TRIGGER messages_fts_update",
    "DROP TRIGGER messages_fts_delete",
    "DROP TABLE messages_fts_mark",
    "DROP TABLE messages_fts",
)
POSTGRES_UP = (
    "CREATE INDEX ix_messages_search ON messages USING gin (to_tsvector('simple', body))",
)
POSTGRES_DOWN = ("DROP INDEX ix_messages_search",)


def upgrade() -> None:
    op.create_table(
        "reports",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("room_id", sa.String(32), nullable=False),
        sa.Column("message_id", sa.String(32), nullable=False),
        sa.Column("sender_id", sa.String(32), nullable=False),
        sa.Column("reporter_id", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("message_json", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("resolved_by", sa.String(32), nullable=True),
        sa.Column("resolved_ts", sa.BigInteger(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('open', 'resolved')", name="ck_reports_status"),
        sa.PrimaryKeyConstraint("id", name="pk_reports"),
    )
    op.create_index("ix_reports_status_ts_id", "reports", ["status", "ts", "id"])
    op.create_index("ix_reports_ts_id", "reports", ["ts", "id"])
    op.create_index("ix_reports_sender_id", "reports", ["sender_id"])
    op.create_index("ix_reports_reporter_id", "reports", ["reporter_id"])
    op.create_index(
        "ix_reports_message_id_reporter_id",
        "reports",
        ["message_id", "reporter_id"],
        unique=True,
        postgresql_where=sa.text("resolved_ts IS NULL"),
        sqlite_where=sa.text("resolved_ts IS NULL"),
    )
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in SQLITE_UP if sqlite else POSTGRES_UP:
        op.execute(statement)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in SQLITE_DOWN if sqlite else POSTGRES_DOWN:
        op.execute(statement)
    op.drop_index("ix_reports_message_id_reporter_id", table_name="reports")
    op.drop_index("ix_reports_reporter_id", table_name="reports")
    op.drop_index("ix_reports_sender_id", table_name="reports")
    op.drop_index("ix_reports_ts_id", table_name="reports")
    op.drop_index("ix_reports_status_ts_id", table_name="reports")
    op.drop_table("reports")
