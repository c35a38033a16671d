"""Contacts, invitations and blocks.

Revision ID: 0003
Revises: 0002
Create Date: 2024-07-15

Hand-written to run on SQLite and PostgreSQL alike (new tables only, no ALTER); constraint
names follow the naming convention of `chatcore_sql.tables`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "invitations",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("from_user_id", sa.String(32), nullable=False),
        sa.Column("to_user_id", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("hidden", sa.Boolean(), nullable=False),
        sa.Column("pending_key", sa.String(65), nullable=True),
        sa.Column("created_ts", sa.BigInteger(), nullable=False),
        sa.Column("answered_ts", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_invitations"),
        sa.ForeignKeyConstraint(
            ["from_user_id"], ["users.id"], name="fk_invitations_from_user_id_users"
        ),
        sa.ForeignKeyConstraint(
            ["to_user_id"], ["users.id"], name="fk_invitations_to_user_id_users"
        ),
        sa.UniqueConstraint("pending_key", name="uq_invitations_pending_key"),
        sa.CheckConstraint(
            "status IN ('pending', 'accepted', 'declined')", name="ck_invitations_status"
        ),
    )
    op.create_index("ix_invitations_to_user_id_status", "invitations", ["to_user_id", "status"])
    op.create_index("ix_invitations_from_user_id_status", "invitations", ["from_user_id", "status"])
    op.create_table(
        "contacts",
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("contact_id", sa.String(32), nullable=False),
        sa.Column("since_ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "contact_id", name="pk_contacts"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_contacts_user_id_users"),
        sa.ForeignKeyConstraint(["contact_id"], ["users.id"], name="fk_contacts_contact_id_users"),
    )
    op.create_table(
        "blocks",
        sa.Column("blocker_id", sa.String(32), nullable=False),
        sa.Column("blocked_id", sa.String(32), nullable=False),
        sa.Column("created_ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("blocker_id", "blocked_id", name="pk_blocks"),
        sa.ForeignKeyConstraint(["blocker_id"], ["users.id"], name="fk_blocks_blocker_id_users"),
        sa.ForeignKeyConstraint(["blocked_id"], ["users.id"], name="fk_blocks_blocked_id_users"),
    )
    op.create_index("ix_blocks_blocked_id", "blocks", ["blocked_id"])


def downgrade() -> None:
    op.drop_index("ix_blocks_blocked_id", table_name="blocks")
    op.drop_table("blocks")
    op.drop_table("contacts")
    op.drop_index("ix_invitations_from_user_id_status", table_name="invitations")
    op.drop_index("ix_invitations_to_user_id_status", table_name="invitations")
    op.drop_table("invitations")
