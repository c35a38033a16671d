"""Retention: per-room settings and the job lease (issue 18, retention).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07

Hand-written to run on SQLite and PostgreSQL alike (new tables and an index, no ALTER);
constraint and index names follow the naming convention of `chatcore_sql.tables`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "room_retention",
        sa.Column("room_id", sa.String(32), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("updated_ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("room_id", name="pk_room_retention"),
    )
    op.create_table(
        "job_leases",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("until_ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_job_leases"),
    )
    op.create_index(
        "ix_rooms_avatar_media_id",
        "rooms",
        ["avatar_media_id"],
        postgresql_where=sa.text("avatar_media_id IS NOT NULL"),
        sqlite_where=sa.text("avatar_media_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_rooms_avatar_media_id", table_name="rooms")
    op.drop_table("job_leases")
    op.drop_table("room_retention")
