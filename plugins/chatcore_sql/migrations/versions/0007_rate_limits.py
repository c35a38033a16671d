"""Rate limits shared by the nodes (login throttling).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

Hand-written to run on SQLite and PostgreSQL alike (one new table, no ALTER); constraint and
index names follow the naming convention of `chatcore_sql.tables`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_limits",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("full_ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_rate_limits"),
    )
    op.create_index("ix_rate_limits_full_ts", "rate_limits", ["full_ts"])


def downgrade() -> None:
    op.drop_index("ix_rate_limits_full_ts", table_name="rate_limits")
    op.drop_table("rate_limits")
