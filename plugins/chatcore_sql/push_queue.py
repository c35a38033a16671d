"""The push queue in SQL: functions on a connection the caller opened (in a write transaction).

Claims lock the rows they take with `FOR UPDATE SKIP LOCKED` on PostgreSQL, so nodes claiming
at once take different pushes and never wait for each other; SQLite has one writer at a time
and ignores the clause.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from chatcore.models import ClaimedPush, QueuedPush
from chatcore_sql.devices import DEVICE_COLUMNS, device_of
from chatcore_sql.tables import push_devices, push_queue


async def enqueue(conn: AsyncConnection, pushes: Sequence[QueuedPush]) -> None:
    rows = [
        {
            "id": push.id,
            "device_id": push.device_id,
            "push_json": orjson.dumps(push.push).decode(),
            "attempts": 0,
            "due_ts": push.due_ts,
            "created_ts": push.created_ts,
        }
        for push in pushes
    ]
    if rows:
        await conn.execute(insert(push_queue), rows)


async def claim(conn: AsyncConnection, now_ts: int, lease_ms: int, limit: int) -> list[ClaimedPush]:
    due = (
        select(push_queue.c.id)
        .where(push_queue.c.due_ts <= now_ts)
        .order_by(push_queue.c.due_ts, push_queue.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list((await conn.execute(due)).scalars())
    if not ids:
        return []
    await conn.execute(
        update(push_queue)
        .where(push_queue.c.id.in_(ids))
        .values(due_ts=now_ts + lease_ms, attempts=push_queue.c.attempts + 1)
    )
    rows = await conn.execute(
        select(
            push_queue.c.id.label("push_id"),
            push_queue.c.push_json,
            push_queue.c.attempts,
            push_queue.c.created_ts.label("queued_ts"),
            *DEVICE_COLUMNS,
        )
        .select_from(
            push_queue.outerjoin(push_devices, push_devices.c.id == push_queue.c.device_id)
        )
        .where(push_queue.c.id.in_(ids))
    )
    claimed: list[ClaimedPush] = []
    orphans: list[str] = []
    for row in rows:
        if row.id is None:  # queued while its device was being removed
            orphans.append(row.push_id)
            continue
        claimed.append(
            ClaimedPush(
                id=row.push_id,
                device=device_of(row),
                push=orjson.loads(row.push_json),
                attempts=row.attempts,
                created_ts=row.queued_ts,
            )
        )
    if orphans:
        await conn.execute(delete(push_queue).where(push_queue.c.id.in_(orphans)))
    order = {push_id: index for index, push_id in enumerate(ids)}  # earliest due first
    return sorted(claimed, key=lambda push: order[push.id])


async def finish(conn: AsyncConnection, push_id: str) -> None:
    await conn.execute(delete(push_queue).where(push_queue.c.id == push_id))


async def retry(conn: AsyncConnection, push_id: str, due_ts: int) -> None:
    await conn.execute(update(push_queue).where(push_queue.c.id == push_id).values(due_ts=due_ts))
