"""The outbox on the device: the user's sends (their local echoes) until the server acks them.
Each function runs inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from chatcore.client.models import OutboxEntry
from chatcore_device_sqlite.rows import (
    OUTBOX_COLUMNS,
    OUTBOX_FIELDS,
    outbox_entry_of,
    outbox_params,
)

#: The fields `outbox_update` may change (the others say what was sent, where and when).
UPDATABLE = frozenset(
    {
        "state",
        "transmitted",
        "attempts",
        "error_code",
        "error_message",
        "body",
        "media_id",
        "file_path",
    }
)

#: The states an entry in the outbox has (*sent* and *cancelled* exist only in events).
_LISTED = "('pending', 'sending', 'failed')"
_UNSENT = "('pending', 'sending')"

_VALUES = ", ".join(
    # The position is the next one in the same statement: no other writer can take it.
    "(SELECT coalesce(max(position), 0) + 1 FROM outbox)" if name == "position" else "?"
    for name in OUTBOX_FIELDS
)


async def add(conn: AsyncConnection, entry: OutboxEntry) -> OutboxEntry:
    values = zip(OUTBOX_FIELDS, outbox_params(entry), strict=True)
    params = tuple(value for name, value in values if name != "position")
    found = await conn.exec_driver_sql(
        f"INSERT INTO outbox ({OUTBOX_COLUMNS}) VALUES ({_VALUES}) RETURNING position", params
    )
    return entry.model_copy(update={"position": found.scalar_one()})


async def listed(
    conn: AsyncConnection, room_id: str | None, unsent_only: bool, limit: int | None
) -> list[OutboxEntry]:
    states = _UNSENT if unsent_only else _LISTED
    in_room = "" if room_id is None else " AND room_id = ?"
    params: tuple[Any, ...] = () if room_id is None else (room_id,)
    head = ""
    if limit is not None:
        head = " LIMIT ?"
        params = (*params, max(0, limit))
    rows = await conn.exec_driver_sql(
        f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE state IN {states}{in_room} "
        f"ORDER BY position{head}",
        params,
    )
    return [outbox_entry_of(row) for row in rows]


async def get(conn: AsyncConnection, ref: str) -> OutboxEntry | None:
    rows = await conn.exec_driver_sql(f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE ref = ?", (ref,))
    row = rows.first()
    return None if row is None else outbox_entry_of(row)


def check_changes(changes: dict[str, Any]) -> None:
    """ValueError naming the fields `outbox_update` may not change."""
    refused = sorted(set(changes) - UPDATABLE)
    if refused:
        raise ValueError(
            f"outbox_update cannot change {', '.join(refused)}; "
            f"it changes only {', '.join(sorted(UPDATABLE))}"
        )


async def update(conn: AsyncConnection, ref: str, changes: dict[str, Any]) -> OutboxEntry | None:
    entry = await get(conn, ref)
    if entry is None:
        return None
    # Validated as a whole entry: a wrong type or state is a ValueError, and nothing changes.
    changed = OutboxEntry.model_validate({**entry.model_dump(), **changes})
    names = sorted(changes)
    await conn.exec_driver_sql(
        f"UPDATE outbox SET {', '.join(f'{name} = ?' for name in names)} WHERE ref = ?",
        (*(getattr(changed, name) for name in names), ref),
    )
    return changed


async def transmitted(conn: AsyncConnection, refs: Sequence[str]) -> None:
    if refs:
        await conn.exec_driver_sql(
            "UPDATE outbox SET state = 'sending', transmitted = 1, attempts = attempts + 1"
            " WHERE ref = ?",
            [(ref,) for ref in refs],
        )


async def reset_sending(conn: AsyncConnection) -> None:
    await conn.exec_driver_sql("UPDATE outbox SET state = 'pending' WHERE state = 'sending'")


async def remove(conn: AsyncConnection, ref: str) -> OutboxEntry | None:
    rows = await conn.exec_driver_sql(
        f"DELETE FROM outbox WHERE ref = ? RETURNING {OUTBOX_COLUMNS}", (ref,)
    )
    row = rows.first()
    return None if row is None else outbox_entry_of(row)
