"""Push devices in SQL: functions on a connection the caller opened.

The caller (`SqlStorage`) chooses the transaction: writes run in a write transaction. The
unique key (user_id, platform, address_sha256) keeps one row per device between nodes; the
bound on devices per user holds because adding one first locks the user's row (PostgreSQL;
SQLite has one writer at a time anyway).
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from chatcore.errors import ChatError, ErrorCode, not_found
from chatcore.models import Device, WebPushKeys
from chatcore_sql.rooms import dialect_insert
from chatcore_sql.tables import push_devices, push_queue, users

DEVICE_COLUMNS = (
    push_devices.c.id,
    push_devices.c.user_id,
    push_devices.c.platform,
    push_devices.c.token,
    push_devices.c.endpoint,
    push_devices.c.keys_json,
    push_devices.c.created_ts,
)
NEWEST_FIRST = (push_devices.c.created_ts.desc(), push_devices.c.id.desc())


def address_hash(address: str) -> str:
    return hashlib.sha256(address.encode()).hexdigest()


def _keys_text(keys: WebPushKeys | None) -> str | None:
    return orjson.dumps(keys.model_dump()).decode() if keys is not None else None


def device_of(row: Any) -> Device:
    """A Device from a row holding `DEVICE_COLUMNS`."""
    return Device(
        id=row.id,
        user_id=row.user_id,
        platform=row.platform,
        token=row.token,
        endpoint=row.endpoint,
        keys=WebPushKeys(**orjson.loads(row.keys_json)) if row.keys_json is not None else None,
        created_ts=row.created_ts,
    )


async def _find(conn: AsyncConnection, device: Device, digest: str) -> Device | None:
    stmt = select(*DEVICE_COLUMNS).where(
        push_devices.c.user_id == device.user_id,
        push_devices.c.platform == device.platform,
        push_devices.c.address_sha256 == digest,
    )
    row = (await conn.execute(stmt)).first()
    return device_of(row) if row else None


async def add(conn: AsyncConnection, device: Device, max_devices: int) -> tuple[Device, bool]:
    """Insert the device unless the user has it (in a write transaction)."""
    # Lock the user's row: concurrent adds of one user then count one after the other. NO KEY
    # UPDATE does not conflict with the key-share locks of inserts that reference the user.
    locked = select(users.c.id).where(users.c.id == device.user_id).with_for_update(key_share=True)
    if (await conn.execute(locked)).first() is None:
        raise not_found("The user")
    digest = address_hash(device.address)
    existing = await _find(conn, device, digest)
    if existing is not None:
        if existing.keys == device.keys:
            return existing, False
        await conn.execute(
            update(push_devices)
            .where(push_devices.c.id == existing.id)
            .values(keys_json=_keys_text(device.keys))
        )
        return existing.model_copy(update={"keys": device.keys}), False
    count = select(func.count()).where(push_devices.c.user_id == device.user_id)
    if (await conn.execute(count)).scalar_one() >= max_devices:
        raise ChatError(
            ErrorCode.CONFLICT,
            f"You have {max_devices} push devices, the most allowed; remove one first.",
        )
    stmt = (
        dialect_insert(conn, push_devices)
        .values(
            id=device.id,
            user_id=device.user_id,
            platform=device.platform,
            token=device.token,
            endpoint=device.endpoint,
            keys_json=_keys_text(device.keys),
            address_sha256=digest,
            created_ts=device.created_ts,
        )
        # The user's row lock serializes adds of one user, so this is a safety net only.
        .on_conflict_do_nothing()
    )
    if (await conn.execute(stmt)).rowcount == 1:
        return device, True
    raced = await _find(conn, device, digest)
    assert raced is not None
    return raced, False


async def list_of(conn: AsyncConnection, user_id: str) -> list[Device]:
    stmt = select(*DEVICE_COLUMNS).where(push_devices.c.user_id == user_id).order_by(*NEWEST_FIRST)
    return [device_of(row) for row in await conn.execute(stmt)]


async def remove(conn: AsyncConnection, user_id: str, device_id: str) -> bool:
    """Remove the user's device and the pushes queued for it."""
    stmt = delete(push_devices).where(
        push_devices.c.id == device_id, push_devices.c.user_id == user_id
    )
    if (await conn.execute(stmt)).rowcount != 1:
        return False
    await conn.execute(delete(push_queue).where(push_queue.c.device_id == device_id))
    return True
