"""Initial schema: users, logins, refresh tokens, user settings.

Revision ID: 0001
Revises:
Create Date: 2024-06-01

Hand-written to run on SQLite and PostgreSQL alike; constraint names follow the naming
convention of `chatcore_sql.tables`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("username_lower", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(256), nullable=False),
        sa.Column("display_name_lower", sa.String(256), nullable=False),
        sa.Column("avatar_media_id", sa.String(64), nullable=True),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("created_ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("username_lower", name="uq_users_username_lower"),
    )
    op.create_table(
        "logins",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("created_ts", sa.BigInteger(), nullable=False),
        sa.Column("ended_ts", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_logins"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_logins_user_id_users"),
    )
    op.create_index("ix_logins_user_id", "logins", ["user_id"])
    op.create_index("ix_logins_ended_ts", "logins", ["ended_ts"])
    op.create_table(
        "refresh_tokens",
        sa.Column("token_hash", sa.String(128), nullable=False),
        sa.Column("login_id", sa.String(32), nullable=False),
        sa.Column("created_ts", sa.BigInteger(), nullable=False),
        sa.Column("expires_ts", sa.BigInteger(), nullable=False),
        sa.Column("used_ts", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name="pk_refresh_tokens"),
        sa.ForeignKeyConstraint(
            ["login_id"], ["logins.id"], name="fk_refresh_tokens_login_id_logins"
        ),
    )
    op.create_index("ix_refresh_tokens_login_id", "refresh_tokens", ["login_id"])
    op.create_table(
        "user_settings",
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("updated_ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_user_settings"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_user_settings_user_id_users"),
    )


def downgrade() -> None:
    op.drop_table("user_settings")
    op.drop_index("ix_refresh_tokens_login_id", table_name="refresh_tokens")
    op.drop_table("refresh_tokens")
    op.drop_index("ix_logins_ended_ts", table_name="logins")
    op.drop_index("ix_logins_user_id", table_name="logins")
    op.drop_table("logins")
    op.drop_table("users")
