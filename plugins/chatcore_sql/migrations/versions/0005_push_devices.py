"""Push devices.

Revision ID: 0005
Revises: 0004
Create Date: 2024-07-16

Hand-written to run on SQLite and PostgreSQL alike (one new table, no ALTER); constraint
names follow the naming convention of `chatcore_sql.tables`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "push_devices",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("token", sa.Text(), nullable=True),
        sa.Column("endpoint", sa.Text(), nullable=True),
        sa.Column("keys_json", sa.Text(), nullable=True),
        sa.Column("address_sha256", sa.String(64), nullable=False),
        sa.Column("created_ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_push_devices"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_push_devices_user_id_users"),
        sa.UniqueConstraint(
            "user_id",
            "platform",
            "address_sha256",
            name="uq_push_devices_user_id_platform_address_sha256",
        ),
        sa.CheckConstraint(
            "platform IN ('webpush', 'fcm', 'apns', 'webhook')", name="ck_push_devices_platform"
        ),
    )


def downgrade() -> None:
    op.drop_table("push_devices")
