"""Server admins, disabled and erased users, the audit log (issue 18, admin).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07

`users` gains `is_admin`, `disabled_ts`, `erased_ts` and `last_seen_ts` (plain ADD COLUMNs,
which SQLite does in place: a NOT NULL column with a default needs no table copy). The new
`audit_log` table keeps every admin and moderator action; `messages` gains an index on its
sender (counts of a user's messages, erasure that removes them).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

USER_COLUMNS = ("is_admin", "disabled_ts", "erased_ts", "last_seen_ts")


def upgrade() -> None:
    op.add_column(
        "users",
        sa.Column("is_admin", sa.Boolean(), nullable=False, server_default=sa.text("false")),
    )
    op.add_column("users", sa.Column("disabled_ts", sa.BigInteger(), nullable=True))
    op.add_column("users", sa.Column("erased_ts", sa.BigInteger(), nullable=True))
    op.add_column("users", sa.Column("last_seen_ts", sa.BigInteger(), nullable=True))
    op.create_table(
        "audit_log",
        # INTEGER on SQLite: only an INTEGER PRIMARY KEY counts up there (the rowid).
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("actor_id", sa.String(32), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target_kind", sa.String(32), nullable=False),
        sa.Column("target_id", sa.String(128), nullable=False),
        sa.Column("room_id", sa.String(32), nullable=True),
        sa.Column("details", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index(
        "ix_audit_log_target_kind_target_id_id", "audit_log", ["target_kind", "target_id", "id"]
    )
    op.create_index("ix_messages_sender_id", "messages", ["sender_id"])


def downgrade() -> None:
    op.drop_index("ix_messages_sender_id", table_name="messages")
    op.drop_index("ix_audit_log_target_kind_target_id_id", table_name="audit_log")
    op.drop_table("audit_log")
    # SQLite drops a column in place since 3.35 unless it is indexed or constrained; these
    # are neither, but batch mode works on every version.
    with op.batch_alter_table("users") as batch:
        for name in USER_COLUMNS:
            batch.drop_column(name)
