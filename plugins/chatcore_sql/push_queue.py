"""The push queue in SQL: functions on a connection the caller opened (in a write transaction).

Claims lock the rows they take with `FOR UPDATE SKIP LOCKED` on PostgreSQL, so nodes claiming
at once take different pushes and never wait for each other; SQLite has one writer at a time
and ignores the clause.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import orjson
from sqlalchemy import (
    BindParameter,
    Connection,
    Executable,
    bindparam,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from chatcore.models import ClaimedPush, Device, PushAudience, PushTarget, QueuedPush
from chatcore_sql.devices import DEVICE_COLUMNS, NEWEST_FIRST, device_of
from chatcore_sql.rooms import MEMBER_ORDER
from chatcore_sql.rows import ROOM_COLUMNS, USER_COLUMNS, user_of
from chatcore_sql.rows import room as room_of
from chatcore_sql.tables import push_devices, push_queue, room_members, rooms, user_settings, users


class Run(Protocol):
    """How the queue's statements run: on a SQLAlchemy connection (`on_connection`) or on
    SQLite's writer thread (`chatcore_sql.sqlite_writer.SqliteRun`). Rows have attributes."""

    def __call__(self, statement: Executable, params: Mapping[str, Any]) -> Sequence[Any]: ...

    def many(self, statement: Executable, rows: Sequence[Mapping[str, Any]]) -> None: ...


class on_connection:
    """`Run` on a synchronous SQLAlchemy connection (`AsyncConnection.run_sync`)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def __call__(self, statement: Executable, params: Mapping[str, Any]) -> Sequence[Any]:
        result = self.conn.execute(statement, dict(params))
        return result.all() if result.returns_rows else []

    def many(self, statement: Executable, rows: Sequence[Mapping[str, Any]]) -> None:
        self.conn.execute(statement, list(rows))


# The statements, made once: SQLite's writer compiles each once (CompiledSql).
ENQUEUE = insert(push_queue).values(
    id=bindparam("id"),
    device_id=bindparam("device_id"),
    push_json=bindparam("push_json"),
    attempts=bindparam("attempts"),
    due_ts=bindparam("due_ts"),
    created_ts=bindparam("created_ts"),
)
DUE = (
    select(push_queue.c.id)
    .where(push_queue.c.due_ts <= bindparam("now_ts"))
    .order_by(push_queue.c.due_ts, push_queue.c.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)
LEASE = (
    update(push_queue)
    .where(push_queue.c.id.in_(bindparam("ids", expanding=True)))
    .values(due_ts=bindparam("until"), attempts=push_queue.c.attempts + 1)
)
CLAIMED = (
    select(
        push_queue.c.id.label("push_id"),
        push_queue.c.push_json,
        push_queue.c.attempts,
        push_queue.c.created_ts.label("queued_ts"),
        *DEVICE_COLUMNS,
    )
    .select_from(push_queue.outerjoin(push_devices, push_devices.c.id == push_queue.c.device_id))
    .where(push_queue.c.id.in_(bindparam("ids", expanding=True)))
)
REMOVE = delete(push_queue).where(push_queue.c.id.in_(bindparam("ids", expanding=True)))
RETRY = (
    update(push_queue)
    .where(push_queue.c.id == bindparam("push_id"))
    .values(due_ts=bindparam("due"))
)
WRITES = (ENQUEUE, DUE, LEASE, CLAIMED, REMOVE, RETRY)


def enqueue(run: Run, pushes: Sequence[QueuedPush]) -> None:
    rows = [
        {
            "id": push.id,
            "device_id": push.device_id,
            "push_json": orjson.dumps(push.push).decode(),
            "attempts": push.attempts,
            "due_ts": push.due_ts,
            "created_ts": push.created_ts,
        }
        for push in pushes
    ]
    if rows:
        run.many(ENQUEUE, rows)


def claim(run: Run, now_ts: int, lease_ms: int, limit: int) -> list[ClaimedPush]:
    ids = [row.id for row in run(DUE, {"now_ts": now_ts, "limit": limit})]
    if not ids:
        return []
    run(LEASE, {"ids": ids, "until": now_ts + lease_ms})
    claimed: list[ClaimedPush] = []
    orphans: list[str] = []
    for row in run(CLAIMED, {"ids": ids}):
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
        run(REMOVE, {"ids": orphans})
    order = {push_id: index for index, push_id in enumerate(ids)}  # earliest due first
    return sorted(claimed, key=lambda push: order[push.id])


def settle(run: Run, finished: Sequence[str], retries: Mapping[str, int]) -> None:
    if finished:
        run(REMOVE, {"ids": list(finished)})
    if retries:
        run.many(RETRY, [{"push_id": push_id, "due": due} for push_id, due in retries.items()])


def _in(name: str) -> BindParameter[Any]:
    return bindparam(name, expanding=True)


# What `push_audience` reads: the rooms with their members; the devices of their members; and
# those members who have a device, with their settings. Three statements, each one snapshot.
AUDIENCE_ROOMS = (
    select(*ROOM_COLUMNS, room_members.c.user_id)
    .select_from(rooms.outerjoin(room_members, room_members.c.room_id == rooms.c.id))
    .where(rooms.c.id.in_(_in("room_ids")))
    .order_by(rooms.c.id, *MEMBER_ORDER)
)
AUDIENCE_DEVICES = (
    select(*DEVICE_COLUMNS)
    .select_from(push_devices.join(room_members, room_members.c.user_id == push_devices.c.user_id))
    .where(room_members.c.room_id.in_(_in("room_ids")))
    .order_by(push_devices.c.user_id, *NEWEST_FIRST)
)
AUDIENCE_USERS = (
    select(*USER_COLUMNS, user_settings.c.data)
    .select_from(
        users.join(room_members, room_members.c.user_id == users.c.id).outerjoin(
            user_settings, user_settings.c.user_id == users.c.id
        )
    )
    .where(
        room_members.c.room_id.in_(_in("room_ids")),
        users.c.id.in_(select(push_devices.c.user_id)),
    )
)
AUDIENCE = (AUDIENCE_ROOMS, AUDIENCE_DEVICES, AUDIENCE_USERS)


def audience_of(
    room_rows: Sequence[Any], device_rows: Sequence[Any], user_rows: Sequence[Any]
) -> PushAudience:
    """The PushAudience of the rows of AUDIENCE's three statements (rows with attributes)."""
    members: dict[str, list[str]] = {}
    firsts: dict[str, Any] = {}
    for row in room_rows:
        firsts.setdefault(row.id, row)
        if row.user_id is not None:
            members.setdefault(row.id, []).append(row.user_id)
    found_rooms = {
        room_id: room_of(row, members.get(room_id, [])) for room_id, row in firsts.items()
    }
    devices: dict[str, dict[str, Device]] = {}
    for row in device_rows:  # a member of two of the rooms comes twice
        devices.setdefault(row.user_id, {}).setdefault(row.id, device_of(row))
    targets = {
        row.id: PushTarget(
            user=user_of(row),
            settings=orjson.loads(row.data) if row.data is not None else {},
            devices=list(devices.get(row.id, {}).values()),
        )
        for row in user_rows
    }
    return PushAudience(rooms=found_rooms, targets=targets)


async def audience(conn: AsyncConnection, room_ids: Sequence[str]) -> PushAudience:
    params = {"room_ids": list(room_ids)}
    found = [(await conn.execute(statement, params)).all() for statement in AUDIENCE]
    return audience_of(*found)
