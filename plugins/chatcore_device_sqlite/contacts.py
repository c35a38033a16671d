"""Contacts, pending invitations and the users the device has seen, as last read from the
server. Each function runs inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import get_args

from sqlalchemy.ext.asyncio import AsyncConnection

from chatcore.client.models import Contact, Invitation, User
from chatcore.models import Presence
from chatcore_device_sqlite.rows import tuples

_PRESENCES = get_args(Presence)


async def save(conn: AsyncConnection, contacts: Sequence[Contact]) -> None:
    await conn.exec_driver_sql("DELETE FROM contacts")
    if contacts:
        await conn.exec_driver_sql(
            "INSERT OR REPLACE INTO contacts (user_id, username, since_ts, presence, user)"
            " VALUES (?, ?, ?, ?, ?)",
            [
                (c.user.id, c.user.username, c.since_ts, c.presence, c.user.model_dump_json())
                for c in contacts
            ],
        )


async def listed(conn: AsyncConnection) -> list[Contact]:
    rows = await conn.exec_driver_sql(
        "SELECT user, since_ts, presence FROM contacts ORDER BY username, user_id"
    )
    return [
        Contact(user=User.model_validate_json(user), since_ts=since_ts, presence=presence)
        for user, since_ts, presence in tuples(rows)
    ]


def check_presence(status: str) -> None:
    if status not in _PRESENCES:
        raise ValueError(f"unknown presence {status!r}: expected one of {', '.join(_PRESENCES)}")


async def set_presence(conn: AsyncConnection, user_id: str, status: str) -> None:
    await conn.exec_driver_sql(
        "UPDATE contacts SET presence = ? WHERE user_id = ?", (status, user_id)
    )


async def save_invitations(
    conn: AsyncConnection, incoming: Sequence[Invitation], outgoing: Sequence[Invitation]
) -> None:
    await conn.exec_driver_sql("DELETE FROM invitations")
    rows = [(i.id, 1, i.ts, i.model_dump_json()) for i in incoming]
    rows += [(i.id, 0, i.ts, i.model_dump_json()) for i in outgoing]
    if rows:
        await conn.exec_driver_sql(
            "INSERT OR REPLACE INTO invitations (id, incoming, ts, data) VALUES (?, ?, ?, ?)", rows
        )


async def list_invitations(conn: AsyncConnection) -> tuple[list[Invitation], list[Invitation]]:
    rows = await conn.exec_driver_sql(
        "SELECT incoming, data FROM invitations ORDER BY ts DESC, id DESC"
    )
    incoming: list[Invitation] = []
    outgoing: list[Invitation] = []
    for is_incoming, data in tuples(rows):
        (incoming if is_incoming else outgoing).append(Invitation.model_validate_json(data))
    return incoming, outgoing


async def save_users(conn: AsyncConnection, users: Sequence[User]) -> None:
    if users:
        await conn.exec_driver_sql(
            "INSERT OR REPLACE INTO users (id, data) VALUES (?, ?)",
            [(u.id, u.model_dump_json()) for u in users],
        )


async def get_users(conn: AsyncConnection, user_ids: Sequence[str]) -> dict[str, User]:
    found: dict[str, User] = {}
    wanted = list(dict.fromkeys(user_ids))
    # SQLite allows 32,766 bound parameters; a room's members are far fewer, but stay safe.
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = await conn.exec_driver_sql(
            f"SELECT data FROM users WHERE id IN ({', '.join('?' * len(chunk))})", tuple(chunk)
        )
        for (data,) in tuples(rows):
            user = User.model_validate_json(data)
            found[user.id] = user
    return found
