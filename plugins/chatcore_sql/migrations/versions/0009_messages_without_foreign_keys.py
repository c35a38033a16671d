"""Messages without foreign keys to rooms and users.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07

Every message is inserted by a batch (`chatcore_sql.messages.Batch`) that found its room
(under the room's lock) and its sender among the room's members, whose rows have foreign keys
to both; rooms and users are never deleted. The two foreign keys of `messages` checked that
again for every row, which cost a lookup per key and row (on PostgreSQL a trigger's query
each), on the table every send writes to.

SQLite cannot drop a constraint in place: batch mode copies the table (its indexes, the
partial ones with their WHERE, are made again).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FOREIGN_KEYS = (
    ("fk_messages_room_id_rooms", "rooms", "room_id"),
    ("fk_messages_sender_id_users", "users", "sender_id"),
)


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        for name, _, _ in FOREIGN_KEYS:
            batch.drop_constraint(name, type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        for name, table, column in FOREIGN_KEYS:
            batch.create_foreign_key(name, table, [column], ["id"])
