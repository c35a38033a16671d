"""PostgreSQL: a batch of messages written and committed in one round trip.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

`chatcore_store_messages` is the write half of a batch on PostgreSQL
(`chatcore_sql.loop_writer`): the writer reads what a batch needs without a transaction,
decides every draft in Python (`chatcore_sql.messages.Batch`), and then calls this function
outside any transaction, so that the call is its own transaction: one round trip from the
rooms' locks to the commit. The function takes the rooms' locks (in id order, as every writer
does) and, since each statement of a PL/pgSQL function sees what committed before it began,
checks after the locks that nothing the decisions rest on changed since the read: each room's
`last_seq` (a message stored meanwhile, whose key or seq the batch would repeat), the senders'
memberships, and no new block in the direct rooms. If so it writes the messages and the rooms'
seqs and returns true; else it writes nothing and returns false, and the writer runs the batch
again the locking way (lock, read, write, in one transaction).

SQLite has no functions of this kind and needs none (its writer runs the batch in one hop to
its thread): there this revision changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The tables are named without a schema: the function runs with the caller's search_path,
# which names the storage's schema first (`storage.schema`).
CREATE = """
CREATE FUNCTION chatcore_store_messages(
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
        SELECT 1 FROM unnest(p_room_id, p_sender_id) AS sent (room_id, user_id)
        WHERE NOT EXISTS (
            SELECT 1 FROM room_members AS m
            WHERE m.room_id = sent.room_id AND m.user_id = sent.user_id
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


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(CREATE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION chatcore_store_messages")
