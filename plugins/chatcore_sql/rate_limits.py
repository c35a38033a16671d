"""Token buckets shared by the nodes (`chatcore.interfaces.RateLimitStorage`).

A bucket is one row holding `full_ts`, the time at which it is full again (the generic cell
rate algorithm): taking a token moves that time one interval later, which is allowed while it
stays within `burst` intervals of now; giving one back moves it one interval earlier. So a
bucket is a single integer, changed under its row lock, and a row whose `full_ts` has passed
is a full bucket, as good as no row: `prune` deletes those.
"""

from __future__ import annotations

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from chatcore_sql.rooms import dialect_insert
from chatcore_sql.rows import i64
from chatcore_sql.tables import rate_limits

_LOCK = select(rate_limits.c.full_ts).where(rate_limits.c.key == bindparam("key")).with_for_update()


async def take(conn: AsyncConnection, key: str, burst: int, interval_ms: int, now_ts: int) -> int:
    """Take a token (0), or say in how many ms one is there, taking nothing."""
    # A missing row is a full bucket. It is made first, so that the lock below always has a row
    # to hold: two nodes taking from a new bucket at once queue on it instead of racing.
    await conn.execute(
        dialect_insert(conn, rate_limits)
        .values(key=key, full_ts=i64(now_ts))
        .on_conflict_do_nothing(index_elements=[rate_limits.c.key])
    )
    full_ts = (await conn.execute(_LOCK, {"key": key})).scalar_one()
    after = max(full_ts, now_ts) + interval_ms
    wait = after - now_ts - burst * interval_ms
    if wait > 0:
        return wait
    await conn.execute(
        update(rate_limits).where(rate_limits.c.key == key).values(full_ts=i64(after))
    )
    return 0


async def give_back(conn: AsyncConnection, key: str, interval_ms: int, now_ts: int) -> None:
    """Return a token: the bucket is full one interval sooner (a full one stays full)."""
    await conn.execute(
        update(rate_limits)
        .where(rate_limits.c.key == key, rate_limits.c.full_ts > now_ts)
        .values(full_ts=rate_limits.c.full_ts - interval_ms)
    )


async def prune(conn: AsyncConnection, now_ts: int) -> int:
    """Delete the full buckets; how many. Rows another transaction holds are left for the next
    round (SKIP LOCKED), so two nodes pruning at once never wait on each other."""
    full = (
        select(rate_limits.c.key)
        .where(rate_limits.c.full_ts <= now_ts)
        .with_for_update(skip_locked=True)
    )
    result = await conn.execute(delete(rate_limits).where(rate_limits.c.key.in_(full)))
    return int(result.rowcount or 0)
