"""Room administration in SQL: roles, topics, mutes, bans and the room log.

Functions on a connection the caller (`SqlStorage`) opened; the changes need a write
transaction, in which `rooms.lock_rooms` takes the room's row lock first, as every writer of a
room does (so a role change, a ban and a member leaving never interleave).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from chatcore.models import Room, RoomBan, RoomLogDraft, RoomLogEntry, RoomRole
from chatcore_sql import rows
from chatcore_sql.rooms import dialect_insert, get_room, lock_rooms, pass_ownership
from chatcore_sql.tables import room_bans, room_log, room_members, rooms

#: The columns `update_room` may change.
ROOM_FIELDS = ("name", "topic", "avatar_media_id")


async def _locked_group(conn: AsyncConnection, room_id: str) -> Any | None:
    """Lock the room's row; the row when it is a group room, else None."""
    locked = (await lock_rooms(conn, [room_id])).get(room_id)
    return locked if locked is not None and locked.kind == "group" else None


async def update_room(
    conn: AsyncConnection, room_id: str, changes: Mapping[str, str | None]
) -> Room | None:
    values = {name: changes[name] for name in ROOM_FIELDS if name in changes}
    rows.check_text(*values.values())
    if await _locked_group(conn, room_id) is None:
        return None
    if values:
        await conn.execute(update(rooms).where(rooms.c.id == room_id).values(**values))
    return await get_room(conn, room_id)


def _member(room_id: str, user_id: str) -> Any:
    return (room_members.c.room_id == room_id) & (room_members.c.user_id == user_id)


async def set_role(
    conn: AsyncConnection, room_id: str, user_id: str, role: RoomRole
) -> Room | None:
    if role not in ("admin", "member"):
        return None
    locked = await _locked_group(conn, room_id)
    if locked is None or locked.owner_id == user_id:
        return None
    changed = await conn.execute(
        update(room_members).where(_member(room_id, user_id)).values(role=role)
    )
    return await get_room(conn, room_id) if changed.rowcount == 1 else None


async def transfer_ownership(conn: AsyncConnection, room_id: str, new_owner_id: str) -> Room | None:
    locked = await _locked_group(conn, room_id)
    if locked is None:
        return None
    found = await conn.execute(select(room_members.c.user_id).where(_member(room_id, new_owner_id)))
    if found.first() is None:
        return None
    if locked.owner_id != new_owner_id:
        if locked.owner_id is not None:
            await conn.execute(
                update(room_members).where(_member(room_id, locked.owner_id)).values(role="admin")
            )
        await conn.execute(
            update(room_members).where(_member(room_id, new_owner_id)).values(role="owner")
        )
        await conn.execute(update(rooms).where(rooms.c.id == room_id).values(owner_id=new_owner_id))
    return await get_room(conn, room_id)


async def set_muted_until(
    conn: AsyncConnection, room_id: str, user_id: str, until_ts: int | None
) -> bool:
    value = rows.i64(until_ts) if until_ts is not None else None
    changed = await conn.execute(
        update(room_members).where(_member(room_id, user_id)).values(muted_until_ts=value)
    )
    return changed.rowcount == 1


async def muted_until(conn: AsyncConnection, room_id: str, user_id: str) -> int | None:
    stmt = select(room_members.c.muted_until_ts).where(_member(room_id, user_id))
    value: int | None = (await conn.execute(stmt)).scalar()
    return value


BAN_COLUMNS = (
    room_bans.c.room_id,
    room_bans.c.user_id,
    room_bans.c.banned_by,
    room_bans.c.reason,
    room_bans.c.ts,
)


def _ban(row: Any) -> RoomBan:
    return RoomBan(
        room_id=row.room_id, user_id=row.user_id, by=row.banned_by, reason=row.reason, ts=row.ts
    )


async def ban(conn: AsyncConnection, ban: RoomBan) -> tuple[Room, bool] | None:
    rows.check_text(ban.reason)
    locked = await _locked_group(conn, ban.room_id)
    if locked is None:
        return None
    stmt = dialect_insert(conn, room_bans).values(
        room_id=ban.room_id,
        user_id=ban.user_id,
        banned_by=ban.by,
        reason=ban.reason,
        ts=rows.i64(ban.ts),
    )
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[room_bans.c.room_id, room_bans.c.user_id],
            set_={
                "banned_by": stmt.excluded.banned_by,
                "reason": stmt.excluded.reason,
                "ts": stmt.excluded.ts,
            },
        )
    )
    removed = await conn.execute(delete(room_members).where(_member(ban.room_id, ban.user_id)))
    was_member = removed.rowcount == 1
    if was_member and locked.owner_id == ban.user_id:
        await pass_ownership(conn, ban.room_id)
    room = await get_room(conn, ban.room_id)
    assert room is not None
    return room, was_member


async def unban(conn: AsyncConnection, room_id: str, user_id: str) -> bool:
    removed = await conn.execute(
        delete(room_bans).where(room_bans.c.room_id == room_id, room_bans.c.user_id == user_id)
    )
    return removed.rowcount == 1


async def get_ban(conn: AsyncConnection, room_id: str, user_id: str) -> RoomBan | None:
    stmt = select(*BAN_COLUMNS).where(
        room_bans.c.room_id == room_id, room_bans.c.user_id == user_id
    )
    row = (await conn.execute(stmt)).first()
    return _ban(row) if row is not None else None


async def list_bans(conn: AsyncConnection, room_id: str) -> list[RoomBan]:
    stmt = (
        select(*BAN_COLUMNS)
        .where(room_bans.c.room_id == room_id)
        .order_by(room_bans.c.ts.desc(), room_bans.c.user_id.desc())
    )
    return [_ban(row) for row in await conn.execute(stmt)]


# --- the room log -------------------------------------------------------------------------------

LOG_COLUMNS = (
    room_log.c.id,
    room_log.c.room_id,
    room_log.c.ts,
    room_log.c.actor_id,
    room_log.c.action,
    room_log.c.target_id,
    room_log.c.details,
)

INSERT_LOG = insert(room_log).returning(room_log.c.id)


async def append_log(conn: AsyncConnection, entry: RoomLogDraft) -> RoomLogEntry:
    details = orjson.dumps(entry.details).decode()
    rows.check_text(entry.action, entry.target_id, entry.actor_id, details)
    found = await conn.execute(
        INSERT_LOG,
        {
            "room_id": entry.room_id,
            "ts": rows.i64(entry.ts),
            "actor_id": entry.actor_id,
            "action": entry.action,
            "target_id": entry.target_id,
            "details": details,
        },
    )
    return RoomLogEntry(id=str(found.scalar_one()), **entry.model_dump())


LOG_PAGE = (
    select(*LOG_COLUMNS)
    .where(room_log.c.room_id == bindparam("room_id"), room_log.c.id < bindparam("before_id"))
    .order_by(room_log.c.id.desc())
    .limit(bindparam("limit"))
)


async def log_page(
    conn: AsyncConnection, room_id: str, before_id: str | None, limit: int
) -> list[RoomLogEntry]:
    if limit <= 0:
        return []
    if before_id is None:
        before = rows.I64_MAX
    elif before_id.isascii() and before_id.isdigit():
        before = rows.i64(int(before_id))
    else:
        return []
    found = await conn.execute(
        LOG_PAGE, {"room_id": room_id, "before_id": before, "limit": rows.i64(limit)}
    )
    return [
        RoomLogEntry(
            id=str(row.id),
            room_id=row.room_id,
            ts=row.ts,
            actor_id=row.actor_id,
            action=row.action,
            target_id=row.target_id,
            details=orjson.loads(row.details),
        )
        for row in found
    ]
