"""Media metadata and sticker packs.

Revision ID: 0004
Revises: 0003
Create Date: 2024-07-15

Hand-written to run on SQLite and PostgreSQL alike (new tables and indexes only, no ALTER);
constraint names follow the naming convention of `chatcore_sql.tables`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "media",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("uploader_id", sa.String(32), nullable=True),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("filename", sa.Text(), nullable=True),
        sa.Column("created_ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_media"),
        sa.ForeignKeyConstraint(["uploader_id"], ["users.id"], name="fk_media_uploader_id_users"),
    )
    op.create_table(
        "sticker_packs",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("updated_ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sticker_packs"),
    )
    op.create_table(
        "stickers",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("pack_id", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("emoji", sa.Text(), nullable=True),
        sa.Column("media_id", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_stickers"),
        sa.ForeignKeyConstraint(
            ["pack_id"], ["sticker_packs.id"], name="fk_stickers_pack_id_sticker_packs"
        ),
        sa.ForeignKeyConstraint(["media_id"], ["media.id"], name="fk_stickers_media_id_media"),
    )
    op.create_index("ix_stickers_pack_id_position", "stickers", ["pack_id", "position"])
    op.create_index("ix_stickers_media_id", "stickers", ["media_id"])
    op.create_index(
        "ix_messages_media_id",
        "messages",
        ["media_id"],
        postgresql_where=sa.text("media_id IS NOT NULL"),
        sqlite_where=sa.text("media_id IS NOT NULL"),
    )
    op.create_index(
        "ix_users_avatar_media_id",
        "users",
        ["avatar_media_id"],
        postgresql_where=sa.text("avatar_media_id IS NOT NULL"),
        sqlite_where=sa.text("avatar_media_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_users_avatar_media_id", table_name="users")
    op.drop_index("ix_messages_media_id", table_name="messages")
    op.drop_index("ix_stickers_media_id", table_name="stickers")
    op.drop_index("ix_stickers_pack_id_position", table_name="stickers")
    op.drop_table("stickers")
    op.drop_table("sticker_packs")
    op.drop_table("media")
