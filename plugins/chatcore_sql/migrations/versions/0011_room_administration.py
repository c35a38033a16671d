"""Room roles, topics, mutes, bans and the room log (issue 18, rooms).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07

- `room_members.role`: "owner", "admin" or "member" (a direct room's two members are
  "member"); the owner's row is backfilled from `rooms.owner_id`, which stays the room's
  owner as well (both change together, in one transaction).
- `room_members.muted_until_ts`: the member cannot send until then (NULL: not muted).
- `rooms.topic`, `rooms.avatar_media_id`.
- `room_bans`: who is kept out of a group room, by whom, since when, and why.
- `room_log`: a room's administrative history (who did what), newest first by `id`.
- PostgreSQL's `chatcore_store_messages` (revision 0008) also refuses a batch whose decisions
  rest on a sender who has been muted since the read; downgrade restores the 0008 body.

SQLite adds the role's CHECK constraint in batch mode (it copies `room_members`).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The function of revision 0008 with the mute in its membership check: a sender muted at the
# draft's time (`muted_until_ts > ts`) counts as changed, and the writer decides again the
# locking way (where `messages.Batch` refuses the draft).
FUNCTION = """
CREATE OR REPLACE FUNCTION chatcore_store_messages(
    p_room_ids varchar[], p_seqs_read bigint[], p_seqs bigint[], p_last_ts bigint[],
    p_blockers varchar[], p_blocked varchar[],
    p_id varchar[], p_room_id varchar[], p_seq bigint[], p_sender_id varchar[],
    p_ref varchar[], p_kind varchar[], p_body text[], p_media_id text[], p_sticker_id text[],
    p_reply_to varchar[], p_ts bigint[]
) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM 1 FROM rooms WHERE id = ANY(p_room_ids) ORDER BY id FOR NO KEY UPDATE;
    -- The statements below see what committed before the locks were granted.
    IF EXISTS (
        SELECT 1 FROM unnest(p_room_ids, p_seqs_read) AS seen (id, last_seq)
        LEFT JOIN rooms ON rooms.id = seen.id
        WHERE rooms.last_seq IS DISTINCT FROM seen.last_seq
    ) OR EXISTS (
        SELECT 1 FROM unnest(p_room_id, p_sender_id, p_ts) AS sent (room_id, user_id, ts)
        WHERE NOT EXISTS (
            SELECT 1 FROM room_members AS m
            WHERE m.room_id = sent.room_id AND m.user_id = sent.user_id%(mute)s
        )
    ) OR EXISTS (
        SELECT 1 FROM rooms
        CROSS JOIN LATERAL (
            VALUES (split_part(rooms.direct_key, ':', 1), split_part(rooms.direct_key, ':', 2)),
                   (split_part(rooms.direct_key, ':', 2), split_part(rooms.direct_key, ':', 1))
        ) AS pair (blocker_id, blocked_id)
        JOIN blocks AS b ON b.blocker_id = pair.blocker_id AND b.blocked_id = pair.blocked_id
        WHERE rooms.id = ANY(p_room_ids) AND rooms.direct_key IS NOT NULL
          AND (b.blocker_id, b.blocked_id) NOT IN (
              SELECT * FROM unnest(p_blockers, p_blocked)
          )
    ) THEN
        RETURN false;
    END IF;
    INSERT INTO messages (id, room_id, seq, sender_id, ref, kind, body, media_id, sticker_id,
                          reply_to, ts, edited_ts, deleted, updated_ts)
    SELECT new.*, NULL, false, NULL
    FROM unnest(p_id, p_room_id, p_seq, p_sender_id, p_ref, p_kind, p_body, p_media_id,
                p_sticker_id, p_reply_to, p_ts) AS new;
    UPDATE rooms SET last_seq = changed.last_seq, last_ts = changed.last_ts
    FROM unnest(p_room_ids, p_seqs, p_last_ts) AS changed (id, last_seq, last_ts)
    WHERE rooms.id = changed.id;
    RETURN true;
END
$$
"""
WITH_MUTE = FUNCTION % {
    "mute": "\n              AND (m.muted_until_ts IS NULL OR m.muted_until_ts <= sent.ts)"
}
WITHOUT_MUTE = FUNCTION % {"mute": ""}

ROLES = "role IN ('owner', 'admin', 'member')"


def upgrade() -> None:
    op.add_column("rooms", sa.Column("topic", sa.Text(), nullable=True))
    op.add_column("rooms", sa.Column("avatar_media_id", sa.String(64), nullable=True))
    with op.batch_alter_table("room_members") as batch:
        batch.add_column(sa.Column("role", sa.String(16), nullable=False, server_default="member"))
        batch.add_column(sa.Column("muted_until_ts", sa.BigInteger(), nullable=True))
        batch.create_check_constraint(op.f("ck_room_members_role"), ROLES)
    op.execute(
        "UPDATE room_members SET role = 'owner' WHERE EXISTS ("
        " SELECT 1 FROM rooms WHERE rooms.id = room_members.room_id"
        " AND rooms.owner_id = room_members.user_id)"
    )
    op.create_table(
        "room_bans",
        sa.Column("room_id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("banned_by", sa.String(32), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("room_id", "user_id", name="pk_room_bans"),
        sa.ForeignKeyConstraint(["room_id"], ["rooms.id"], name="fk_room_bans_room_id_rooms"),
    )
    op.create_table(
        "room_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("room_id", sa.String(32), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("actor_id", sa.String(32), nullable=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target_id", sa.String(32), nullable=True),
        sa.Column("details", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["room_id"], ["rooms.id"], name="fk_room_log_room_id_rooms"),
    )
    op.create_index("ix_room_log_room_id_id", "room_log", ["room_id", "id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(WITH_MUTE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(WITHOUT_MUTE)
    op.drop_index("ix_room_log_room_id_id", table_name="room_log")
    op.drop_table("room_log")
    op.drop_table("room_bans")
    with op.batch_alter_table("room_members") as batch:
        batch.drop_constraint(op.f("ck_room_members_role"), type_="check")
        batch.drop_column("muted_until_ts")
        batch.drop_column("role")
    op.drop_column("rooms", "avatar_media_id")
    op.drop_column("rooms", "topic")
