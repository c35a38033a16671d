"""The account on the device, and the device's settings object. Each function runs inside the
caller's transaction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from chatcore.client.models import Account
from chatcore_device_sqlite.merge_patch import merge_patch
from chatcore_device_sqlite.rows import dumps, tuples

#: What belongs to an account: all of it goes when another account logs in on the device.
#: (Messages before rooms: their deletion is what takes them out of the search index.)
_ACCOUNT_DATA = ("outbox", "messages", "rooms", "contacts", "invitations", "settings", "users")


def _same_server(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


async def get(conn: AsyncConnection) -> Account | None:
    row = (await conn.exec_driver_sql("SELECT data FROM account WHERE id = 1")).first()
    return None if row is None else Account.model_validate_json(row[0])


async def save(conn: AsyncConnection, account: Account) -> None:
    """Keep `account`; first wipe the data of a different stored account (user or server)."""
    found = await conn.exec_driver_sql("SELECT server_url, user_id FROM account WHERE id = 1")
    row = next(iter(tuples(found)), None)
    other = row is not None and (
        row[1] != account.user.id or not _same_server(row[0], account.server_url)
    )
    if other:
        for table in _ACCOUNT_DATA:
            await conn.exec_driver_sql(f"DELETE FROM {table}")
    await conn.exec_driver_sql(
        "INSERT OR REPLACE INTO account (id, server_url, user_id, data) VALUES (1, ?, ?, ?)",
        (account.server_url, account.user.id, account.model_dump_json()),
    )


async def get_settings(conn: AsyncConnection) -> dict[str, Any]:
    row = (await conn.exec_driver_sql("SELECT data FROM settings WHERE id = 1")).first()
    return {} if row is None else dict(orjson.loads(row[0]))


async def patch_settings(conn: AsyncConnection, patch: Mapping[str, Any]) -> dict[str, Any]:
    """Apply a merge patch, inside a write transaction (read, merge, write: another process's
    patch waits and then applies to this one's result)."""
    settings = merge_patch(await get_settings(conn), patch)
    await conn.exec_driver_sql(
        "INSERT OR REPLACE INTO settings (id, data) VALUES (1, ?)", (dumps(settings),)
    )
    return settings
