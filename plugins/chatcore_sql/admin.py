"""Server administration in SQL: admins, disabled and erased users, logins, rooms with their
counts, the audit log. Functions on a connection the caller (`SqlStorage`) opened: writes run
in a write transaction each, so that an erasure or a room's shutdown is all or nothing.

Disabling takes the user's row lock (the UPDATE) before it ends the live logins, and
`users.create_login` reads the row `FOR UPDATE`: on PostgreSQL a login racing a disable is
either ended by it or refused after it. SQLite's single writer serializes both anyway.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from chatcore.models import (
    DELETED_USER,
    AdminRoom,
    AdminUser,
    AuditEntry,
    Erasure,
    LoginInfo,
    Room,
    User,
)
from chatcore_sql import rooms as rooms_sql
from chatcore_sql import rows
from chatcore_sql.rows import USER_COLUMNS, user_of
from chatcore_sql.tables import (
    audit_log,
    blocks,
    contacts,
    invitations,
    logins,
    messages,
    push_devices,
    push_queue,
    refresh_tokens,
    room_members,
    rooms,
    user_settings,
    users,
)

_LIVE = users.c.erased_ts.is_(None)


async def _user(conn: AsyncConnection, user_id: str) -> User | None:
    row = (await conn.execute(select(*USER_COLUMNS).where(users.c.id == user_id, _LIVE))).first()
    return user_of(row) if row else None


async def tombstone(conn: AsyncConnection, user_id: str) -> User | None:
    stmt = select(*USER_COLUMNS).where(users.c.id == user_id, users.c.erased_ts.is_not(None))
    row = (await conn.execute(stmt)).first()
    return user_of(row) if row else None


async def set_admin(conn: AsyncConnection, user_id: str, is_admin: bool) -> User | None:
    await conn.execute(update(users).where(users.c.id == user_id, _LIVE).values(is_admin=is_admin))
    return await _user(conn, user_id)


async def _end_live_logins(
    conn: AsyncConnection, user_id: str, login_id: str | None, now_ts: int
) -> list[str]:
    """End the user's live logins (or the one `login_id`); the ids ended."""
    where = [logins.c.user_id == user_id, logins.c.ended_ts.is_(None)]
    if login_id is not None:
        where.append(logins.c.id == login_id)
    ids = list((await conn.execute(select(logins.c.id).where(*where))).scalars())
    if ids:
        await conn.execute(
            update(logins)
            .where(logins.c.id.in_(ids), logins.c.ended_ts.is_(None))
            .values(ended_ts=now_ts)
        )
    return ids


async def disable(conn: AsyncConnection, user_id: str, now_ts: int) -> list[str] | None:
    # The UPDATE comes first: it takes the row lock a racing `create_login` waits on.
    found = await conn.execute(
        update(users)
        .where(users.c.id == user_id, _LIVE)
        .values(disabled_ts=func.coalesce(users.c.disabled_ts, now_ts))
    )
    if found.rowcount != 1:
        return None
    return await _end_live_logins(conn, user_id, None, now_ts)


async def enable(conn: AsyncConnection, user_id: str) -> User | None:
    await conn.execute(update(users).where(users.c.id == user_id, _LIVE).values(disabled_ts=None))
    return await _user(conn, user_id)


async def end_logins(
    conn: AsyncConnection, user_id: str, login_id: str | None, now_ts: int
) -> list[str]:
    return await _end_live_logins(conn, user_id, login_id, now_ts)


async def user_logins(conn: AsyncConnection, user_id: str, limit: int) -> list[LoginInfo]:
    last_used = (
        select(func.max(refresh_tokens.c.used_ts))
        .where(refresh_tokens.c.login_id == logins.c.id)
        .scalar_subquery()
    )
    stmt = (
        select(logins.c.id, logins.c.created_ts, logins.c.ended_ts, last_used.label("last_used"))
        .where(logins.c.user_id == user_id)
        .order_by(logins.c.created_ts.desc(), logins.c.id.desc())
        .limit(max(limit, 0))
    )
    return [
        LoginInfo(
            id=row.id,
            created_ts=row.created_ts,
            last_used_ts=row.last_used if row.last_used is not None else row.created_ts,
            ended_ts=row.ended_ts,
        )
        for row in await conn.execute(stmt)
    ]


# --- lists with counts ---------------------------------------------------------------------


def _counts_of_users() -> list[Any]:
    """Correlated counts per user row: each an index range scan."""
    return [
        select(func.count())
        .select_from(room_members)
        .where(room_members.c.user_id == users.c.id)
        .scalar_subquery()
        .label("n_rooms"),
        select(func.count())
        .select_from(messages)
        .where(messages.c.sender_id == users.c.id)
        .scalar_subquery()
        .label("n_messages"),
        select(func.count())
        .select_from(logins)
        .where(logins.c.user_id == users.c.id, logins.c.ended_ts.is_(None))
        .scalar_subquery()
        .label("n_logins"),
    ]


def _admin_user(row: Any) -> AdminUser:
    user = user_of(row)
    return AdminUser(
        user=user,
        is_admin=user.is_admin,
        disabled=user.disabled,
        created_ts=row.created_ts,
        last_seen_ts=row.last_seen_ts,
        rooms=row.n_rooms,
        messages=row.n_messages,
        logins=row.n_logins,
    )


def _select_admin_users() -> Any:
    return select(
        *USER_COLUMNS, users.c.created_ts, users.c.last_seen_ts, *_counts_of_users()
    ).where(_LIVE)


async def admin_users(
    conn: AsyncConnection, query: str, limit: int, offset: int
) -> list[AdminUser]:
    stmt = _select_admin_users()
    if query:
        lowered = query.lower()
        stmt = stmt.where(
            or_(
                users.c.username_lower.startswith(lowered, autoescape=True),
                users.c.display_name_lower.startswith(lowered, autoescape=True),
            )
        )
    stmt = stmt.order_by(users.c.username_lower).limit(max(limit, 0)).offset(max(offset, 0))
    return [_admin_user(row) for row in await conn.execute(stmt)]


async def admin_user(conn: AsyncConnection, user_id: str) -> AdminUser | None:
    row = (await conn.execute(_select_admin_users().where(users.c.id == user_id))).first()
    return _admin_user(row) if row else None


async def admin_rooms(conn: AsyncConnection, limit: int, offset: int) -> list[AdminRoom]:
    page = (
        select(*rows.ROOM_COLUMNS)
        .order_by(rooms.c.created_ts.desc(), rooms.c.id.desc())
        .limit(max(limit, 0))
        .offset(max(offset, 0))
    )
    found = (await conn.execute(page)).all()
    if not found:
        return []
    member_rows = await conn.execute(
        select(room_members.c.room_id, room_members.c.user_id)
        .where(room_members.c.room_id.in_([row.id for row in found]))
        .order_by(room_members.c.room_id, *rooms_sql.MEMBER_ORDER)
    )
    members = rows.group_members(member_rows)
    result = []
    for row in found:
        member_ids = members.get(row.id, [])
        room = rows.room(row, member_ids)
        result.append(AdminRoom(room=room, members=len(member_ids), messages=row.last_seq))
    return result


async def shutdown_room(conn: AsyncConnection, room_id: str) -> list[str] | None:
    if not (await rooms_sql.lock_rooms(conn, [room_id])):
        return None
    member_ids = list(
        (
            await conn.execute(
                select(room_members.c.user_id)
                .where(room_members.c.room_id == room_id)
                .order_by(*rooms_sql.MEMBER_ORDER)
            )
        ).scalars()
    )
    await conn.execute(delete(room_members).where(room_members.c.room_id == room_id))
    # No owner left, and a direct room is no longer the pair's: opening one makes a new room.
    await conn.execute(
        update(rooms).where(rooms.c.id == room_id).values(owner_id=None, direct_key=None)
    )
    return member_ids


# --- erasure -------------------------------------------------------------------------------


async def erase(
    conn: AsyncConnection, user_id: str, remove_messages: bool, now_ts: int
) -> Erasure | None:
    row = (
        await conn.execute(
            select(users.c.avatar_media_id).where(users.c.id == user_id, _LIVE).with_for_update()
        )
    ).first()
    if row is None:
        return None
    # The tombstone: "~" is no username's character, so the name is free and cannot be taken.
    tombstone = "~" + user_id
    await conn.execute(
        update(users)
        .where(users.c.id == user_id)
        .values(
            username=tombstone,
            username_lower=tombstone,
            display_name=DELETED_USER,
            display_name_lower=DELETED_USER.lower(),
            avatar_media_id=None,
            password_hash="",
            is_admin=False,
            disabled_ts=func.coalesce(users.c.disabled_ts, now_ts),
            erased_ts=now_ts,
        )
    )
    ended = await _end_live_logins(conn, user_id, None, now_ts)
    own_logins = select(logins.c.id).where(logins.c.user_id == user_id)
    await conn.execute(delete(refresh_tokens).where(refresh_tokens.c.login_id.in_(own_logins)))
    await conn.execute(delete(user_settings).where(user_settings.c.user_id == user_id))
    contact_ids = list(
        (
            await conn.execute(select(contacts.c.contact_id).where(contacts.c.user_id == user_id))
        ).scalars()
    )
    await conn.execute(
        delete(contacts).where(or_(contacts.c.user_id == user_id, contacts.c.contact_id == user_id))
    )
    await conn.execute(
        delete(invitations).where(
            or_(invitations.c.from_user_id == user_id, invitations.c.to_user_id == user_id)
        )
    )
    await conn.execute(
        delete(blocks).where(or_(blocks.c.blocker_id == user_id, blocks.c.blocked_id == user_id))
    )
    own_devices = select(push_devices.c.id).where(push_devices.c.user_id == user_id)
    await conn.execute(delete(push_queue).where(push_queue.c.device_id.in_(own_devices)))
    await conn.execute(delete(push_devices).where(push_devices.c.user_id == user_id))
    left = await _leave_rooms(conn, user_id)
    removed: Sequence[Any] = ()
    if remove_messages:
        removed = await _empty_messages(conn, user_id, now_ts)
    return Erasure(
        rooms=tuple(left),
        ended_logins=tuple(ended),
        removed_messages=tuple(removed),
        contact_ids=tuple(contact_ids),
        avatar_media_id=row.avatar_media_id,
    )


async def _leave_rooms(conn: AsyncConnection, user_id: str) -> list[Room]:
    room_ids = (
        await conn.execute(
            select(room_members.c.room_id)
            .where(room_members.c.user_id == user_id)
            .order_by(room_members.c.room_id)
        )
    ).scalars()
    left = []
    for room_id in list(room_ids):  # rooms_sql.remove_member locks each room, in id order
        room = await rooms_sql.remove_member(conn, room_id, user_id)
        if room is not None:
            left.append(room)
    return left


async def _empty_messages(conn: AsyncConnection, user_id: str, now_ts: int) -> list[Any]:
    """Make every live message of the user a deleted one (as `messages.delete` does)."""
    await conn.execute(
        update(messages)
        .where(messages.c.sender_id == user_id, messages.c.deleted.is_(False))
        .values(deleted=True, body="", media_id=None, sticker_id=None, updated_ts=now_ts)
    )
    found = await conn.execute(
        select(*rows.MESSAGE_COLUMNS)
        .where(messages.c.sender_id == user_id, messages.c.updated_ts == now_ts)
        .order_by(messages.c.room_id, messages.c.seq)
    )
    return [rows.message(row) for row in found]


# --- audit log -----------------------------------------------------------------------------


async def add_audit_entry(
    conn: AsyncConnection,
    ts: int,
    actor_id: str | None,
    action: str,
    target_kind: str,
    target_id: str,
    room_id: str | None,
    details: Mapping[str, Any],
) -> AuditEntry:
    values = {
        "ts": ts,
        "actor_id": actor_id,
        "action": action,
        "target_kind": target_kind,
        "target_id": target_id,
        "room_id": room_id,
    }
    text = orjson.dumps(dict(details)).decode()
    entry_id = (
        await conn.execute(
            insert(audit_log).values(**values, details=text).returning(audit_log.c.id)
        )
    ).scalar_one()
    return AuditEntry(id=str(entry_id), **values, details=orjson.loads(text))


async def audit_entries(
    conn: AsyncConnection,
    limit: int,
    before: str | None,
    target_kind: str | None,
    target_id: str | None,
) -> list[AuditEntry]:
    stmt = select(audit_log).order_by(audit_log.c.id.desc()).limit(max(limit, 0))
    if before is not None:
        if not before.isascii() or not before.isdigit() or len(before) > 18:
            return []
        stmt = stmt.where(audit_log.c.id < int(before))
    if target_kind is not None:
        stmt = stmt.where(audit_log.c.target_kind == target_kind)
    if target_id is not None:
        stmt = stmt.where(audit_log.c.target_id == target_id)
    return [
        AuditEntry(
            id=str(row.id),
            ts=row.ts,
            actor_id=row.actor_id,
            action=row.action,
            target_kind=row.target_kind,
            target_id=row.target_id,
            room_id=row.room_id,
            details=orjson.loads(row.details),
        )
        for row in await conn.execute(stmt)
    ]
