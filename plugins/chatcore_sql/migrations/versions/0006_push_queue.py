"""Push queue.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29

Hand-written to run on SQLite and PostgreSQL alike (one new table, no ALTER); constraint and
index names follow the naming convention of `chatcore_sql.tables`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "push_queue",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("device_id", sa.String(32), nullable=False),
        sa.Column("push_json", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("due_ts", sa.BigInteger(), nullable=False),
        sa.Column("created_ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_push_queue"),
    )
    op.create_index("ix_push_queue_device_id", "push_queue", ["device_id"])
    op.create_index("ix_push_queue_due_ts", "push_queue", ["due_ts"])


def downgrade() -> None:
    op.drop_index("ix_push_queue_due_ts", table_name="push_queue")
    op.drop_index("ix_push_queue_device_id", table_name="push_queue")
    op.drop_table("push_queue")
