"""Retention in SQL (`chatcore.interfaces.RetentionStorage`): rooms' own settings, deleting a
room's oldest messages and the media nothing uses, and the leases of cluster-wide jobs.
Functions on a connection the caller (`SqlStorage`) opened, a write transaction for changes.

Messages go oldest first, by seq, and stop at the first one that is too new, so a room always
keeps the newest part of its seqs: catch-up and history see one range that starts later, never
a hole in the middle. Each call deletes a bounded batch, so no transaction grows with a room.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, delete, exists, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from chatcore.models import PurgedMedia, PurgedMessages
from chatcore_sql.rooms import dialect_insert
from chatcore_sql.rows import i64
from chatcore_sql.tables import (
    job_leases,
    media,
    messages,
    room_retention,
    rooms,
    stickers,
    users,
)


async def get_days(conn: AsyncConnection, room_id: str) -> int | None:
    found = await conn.execute(
        select(room_retention.c.days).where(room_retention.c.room_id == room_id)
    )
    return found.scalar_one_or_none()


async def set_days(conn: AsyncConnection, room_id: str, days: int | None, now_ts: int) -> None:
    if days is None:
        await conn.execute(delete(room_retention).where(room_retention.c.room_id == room_id))
        return
    stmt = dialect_insert(conn, room_retention).values(
        room_id=room_id, days=days, updated_ts=i64(now_ts)
    )
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[room_retention.c.room_id],
            set_={"days": stmt.excluded.days, "updated_ts": stmt.excluded.updated_ts},
        )
    )


async def rooms_page(
    conn: AsyncConnection, after_id: str, limit: int, every_room: bool
) -> list[tuple[str, int | None]]:
    """`RetentionStorage.retention_rooms`."""
    if every_room:
        stmt = (
            select(rooms.c.id, room_retention.c.days)
            .select_from(rooms.outerjoin(room_retention, room_retention.c.room_id == rooms.c.id))
            .where(rooms.c.id > after_id)
            .order_by(rooms.c.id)
            .limit(limit)
        )
    else:
        stmt = (
            select(room_retention.c.room_id, room_retention.c.days)
            .where(room_retention.c.room_id > after_id)
            .order_by(room_retention.c.room_id)
            .limit(limit)
        )
    return [(row[0], row[1]) for row in await conn.execute(stmt)]


async def first_seq(conn: AsyncConnection, room_id: str) -> int:
    """`RetentionStorage.first_seq`: two index lookups."""
    lowest = await conn.execute(
        select(func.min(messages.c.seq)).where(messages.c.room_id == room_id)
    )
    seq = lowest.scalar()
    if seq is not None:
        return int(seq)
    last = await conn.execute(select(rooms.c.last_seq).where(rooms.c.id == room_id))
    last_seq = last.scalar_one_or_none()
    return 0 if last_seq is None else int(last_seq) + 1


async def purge_messages(
    conn: AsyncConnection, room_id: str, before_ts: int, limit: int
) -> PurgedMessages:
    """`RetentionStorage.purge_messages`: read the room's `limit` oldest messages (a range
    scan of the (room_id, seq) key), delete the prefix of them older than `before_ts`."""
    oldest_first = (
        select(messages.c.seq, messages.c.ts, messages.c.media_id)
        .where(messages.c.room_id == room_id)
        .order_by(messages.c.seq)
    )
    # The oldest message alone first: a room with nothing to delete (most rooms, most passes)
    # costs one index lookup, not a batch of rows.
    first = (await conn.execute(oldest_first.limit(1))).first()
    if first is None or first.ts >= before_ts:
        return PurgedMessages(count=0)
    oldest = await conn.execute(oldest_first.limit(limit))
    boundary: int | None = None
    count, media_ids = 0, []
    for seq, ts, media_id in oldest:
        if ts >= before_ts:
            break
        boundary, count = seq, count + 1
        if media_id is not None:
            media_ids.append(media_id)
    if boundary is None:
        return PurgedMessages(count=0)
    await conn.execute(
        delete(messages).where(messages.c.room_id == room_id, messages.c.seq <= boundary)
    )
    return PurgedMessages(count=count, media_ids=tuple(dict.fromkeys(media_ids)))


def _unused() -> list[ColumnElement[bool]]:
    """The conditions of a media row nothing uses (each an index lookup)."""
    return [
        ~exists().where(messages.c.media_id == media.c.id),
        ~exists().where(users.c.avatar_media_id == media.c.id),
        ~exists().where(rooms.c.avatar_media_id == media.c.id),
        ~exists().where(stickers.c.media_id == media.c.id),
    ]


async def purge_media(
    conn: AsyncConnection, before_ts: int, limit: int, only: Sequence[str] | None
) -> PurgedMedia:
    """`RetentionStorage.purge_media`: find the unused rows, delete them, then tell which of
    their contents no row names any more."""
    stmt = (
        select(media.c.id, media.c.sha256)
        .where(media.c.created_ts < i64(before_ts), *_unused())
        .order_by(media.c.id)
        .limit(limit)
    )
    if only is not None:
        stmt = stmt.where(media.c.id.in_(list(only)))
    found = (await conn.execute(stmt)).all()
    if not found:
        return PurgedMedia(count=0)
    ids = [row[0] for row in found]
    # The conditions again: a row used since the select (a send on another connection) stays.
    result = await conn.execute(delete(media).where(media.c.id.in_(ids), *_unused()))
    hashes = sorted({row[1] for row in found})
    still = await conn.execute(select(media.c.sha256).where(media.c.sha256.in_(hashes)).distinct())
    named = {row[0] for row in still}
    return PurgedMedia(
        count=int(result.rowcount or 0),
        unused_sha256=tuple(sha for sha in hashes if sha not in named),
    )


async def claim_lease(
    conn: AsyncConnection, name: str, holder: str, now_ts: int, lease_ms: int
) -> bool:
    """`RetentionStorage.claim_lease`: one upsert that changes the row only when the lease is
    free or the holder's own, then a read of who holds it. The primary key serializes
    concurrent claims: a second claimer waits for the first to commit, then sees its lease."""
    stmt = dialect_insert(conn, job_leases).values(
        name=name, holder=holder, until_ts=i64(now_ts + lease_ms)
    )
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[job_leases.c.name],
            set_={"holder": stmt.excluded.holder, "until_ts": stmt.excluded.until_ts},
            where=(job_leases.c.until_ts <= i64(now_ts)) | (job_leases.c.holder == holder),
        )
    )
    found = await conn.execute(select(job_leases.c.holder).where(job_leases.c.name == name))
    return bool(found.scalar_one() == holder)


async def release_lease(conn: AsyncConnection, name: str, holder: str) -> None:
    await conn.execute(
        delete(job_leases).where(job_leases.c.name == name, job_leases.c.holder == holder)
    )
