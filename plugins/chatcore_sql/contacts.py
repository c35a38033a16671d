"""Contacts, invitations and blocks in SQL: functions on a connection the caller opened.

The caller (`SqlStorage`) chooses the transaction: writes run in a write transaction. Two
unique keys make the guarantees hold between nodes: `invitations.pending_key` (one pending
invitation per pair, whichever way) and the primary keys of `contacts` and `blocks`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, bindparam, delete, or_, select, union, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Select

from chatcore.errors import not_found
from chatcore.models import BlockChange, Contact, Invitation, InvitationStatus, User
from chatcore_sql import rows
from chatcore_sql.rooms import dialect_insert, direct_key
from chatcore_sql.tables import blocks, contacts, invitations, users

#: Attempts at inserting an invitation when the pending one it collided with was answered
#: before it could be read (a race with another node; each attempt is one statement).
_INSERT_ATTEMPTS = 3

_from, _to = users.alias("from_user"), users.alias("to_user")
_USER_FIELDS = ("id", "username", "display_name", "avatar_media_id")


def _user_columns(table: Any, prefix: str) -> list[Any]:
    return [table.c[name].label(prefix + name) for name in _USER_FIELDS]


def _user(row: Any, prefix: str = "") -> User:
    m = row._mapping
    return User(**{name: m[prefix + name] for name in _USER_FIELDS})


def _select_invitations() -> Select[Any]:
    return select(
        invitations.c.id,
        invitations.c.status,
        invitations.c.created_ts,
        invitations.c.hidden,
        *_user_columns(_from, "f_"),
        *_user_columns(_to, "t_"),
    ).select_from(
        invitations.join(_from, _from.c.id == invitations.c.from_user_id).join(
            _to, _to.c.id == invitations.c.to_user_id
        )
    )


def _invitation(row: Any) -> Invitation:
    return Invitation(
        id=row.id,
        from_user=_user(row, "f_"),
        to_user=_user(row, "t_"),
        status=row.status,
        ts=row.created_ts,
        hidden=bool(row.hidden),
    )


async def _require_users(conn: AsyncConnection, *user_ids: str) -> None:
    found = set((await conn.execute(select(users.c.id).where(users.c.id.in_(user_ids)))).scalars())
    if not found.issuperset(user_ids):
        raise not_found("This user")


async def user_by_username(conn: AsyncConnection, username: str) -> User | None:
    stmt = select(*(users.c[name] for name in _USER_FIELDS)).where(
        users.c.username_lower == username.lower(), users.c.erased_ts.is_(None)
    )
    row = (await conn.execute(stmt)).first()
    return _user(row) if row else None


# --- invitations ------------------------------------------------------------------------------


async def get_invitation(conn: AsyncConnection, invitation_id: str) -> Invitation | None:
    row = (
        await conn.execute(_select_invitations().where(invitations.c.id == invitation_id))
    ).first()
    return _invitation(row) if row else None


async def _pending_between(conn: AsyncConnection, user_a: str, user_b: str) -> Invitation | None:
    stmt = _select_invitations().where(invitations.c.pending_key == direct_key(user_a, user_b))
    row = (await conn.execute(stmt)).first()
    return _invitation(row) if row else None


async def create_invitation(
    conn: AsyncConnection, from_id: str, to_id: str, now_ts: int, hidden: bool
) -> tuple[Invitation, bool]:
    """Insert a pending invitation unless the pair has one (in a write transaction)."""
    await _require_users(conn, from_id, to_id)
    for _ in range(_INSERT_ATTEMPTS):
        invitation_id = rows.new_id()
        stmt = (
            dialect_insert(conn, invitations)
            .values(
                id=invitation_id,
                from_user_id=from_id,
                to_user_id=to_id,
                status="pending",
                hidden=hidden,
                pending_key=direct_key(from_id, to_id),
                created_ts=now_ts,
            )
            # Another node may have inserted the pair's invitation since: the unique key
            # decides (PostgreSQL waits for that transaction, then does nothing).
            .on_conflict_do_nothing(index_elements=[invitations.c.pending_key])
        )
        if (await conn.execute(stmt)).rowcount == 1:
            created = await get_invitation(conn, invitation_id)
            assert created is not None
            return created, True
        existing = await _pending_between(conn, from_id, to_id)
        if existing is not None:
            return existing, False
    raise RuntimeError("could not insert or read the pending invitation of a pair")


async def answer_invitation(
    conn: AsyncConnection, invitation_id: str, status: InvitationStatus, now_ts: int
) -> Invitation | None:
    # The condition is the decision: of two concurrent answers only one finds it pending.
    changed = await conn.execute(
        update(invitations)
        .where(invitations.c.id == invitation_id, invitations.c.status == "pending")
        .values(status=status, pending_key=None, answered_ts=now_ts)
    )
    if changed.rowcount != 1:
        return None
    answered = await get_invitation(conn, invitation_id)
    assert answered is not None
    if status == "accepted":
        await _add_contact(conn, answered.from_user.id, answered.to_user.id, now_ts)
    return answered


async def pending_invitations(
    conn: AsyncConnection, user_id: str
) -> tuple[list[Invitation], list[Invitation]]:
    pending = _select_invitations().where(invitations.c.status == "pending")
    newest = (invitations.c.created_ts.desc(), invitations.c.id)
    incoming = pending.where(
        invitations.c.to_user_id == user_id, invitations.c.hidden.is_(False)
    ).order_by(*newest)
    outgoing = pending.where(invitations.c.from_user_id == user_id).order_by(*newest)
    return (
        [_invitation(row) for row in await conn.execute(incoming)],
        [_invitation(row) for row in await conn.execute(outgoing)],
    )


# --- contacts ---------------------------------------------------------------------------------


async def _add_contact(conn: AsyncConnection, user_a: str, user_b: str, now_ts: int) -> None:
    stmt = dialect_insert(conn, contacts).on_conflict_do_nothing(
        index_elements=[contacts.c.user_id, contacts.c.contact_id]
    )
    await conn.execute(
        stmt,
        [
            {"user_id": user_a, "contact_id": user_b, "since_ts": now_ts},
            {"user_id": user_b, "contact_id": user_a, "since_ts": now_ts},
        ],
    )


def _select_contacts(user_id: str) -> Select[Any]:
    return (
        select(contacts.c.since_ts, *(users.c[name] for name in _USER_FIELDS))
        .select_from(contacts.join(users, users.c.id == contacts.c.contact_id))
        .where(contacts.c.user_id == user_id)
    )


def _contact(row: Any) -> Contact:
    return Contact(user=_user(row), since_ts=row.since_ts)


async def list_contacts(conn: AsyncConnection, user_id: str) -> list[Contact]:
    stmt = _select_contacts(user_id).order_by(users.c.username_lower)
    return [_contact(row) for row in await conn.execute(stmt)]


async def get_contact(conn: AsyncConnection, user_id: str, other_id: str) -> Contact | None:
    row = (await conn.execute(_select_contacts(user_id).where(users.c.id == other_id))).first()
    return _contact(row) if row else None


CONTACT_IDS = select(contacts.c.contact_id).where(contacts.c.user_id == bindparam("user_id"))


async def contact_ids(conn: AsyncConnection, user_id: str) -> list[str]:
    return list((await conn.execute(CONTACT_IDS, {"user_id": user_id})).scalars())


async def remove_contact(conn: AsyncConnection, user_a: str, user_b: str) -> bool:
    removed = await conn.execute(
        delete(contacts).where(
            or_(
                and_(contacts.c.user_id == user_a, contacts.c.contact_id == user_b),
                and_(contacts.c.user_id == user_b, contacts.c.contact_id == user_a),
            )
        )
    )
    return removed.rowcount > 0


# --- blocks -----------------------------------------------------------------------------------


async def block(
    conn: AsyncConnection, blocker_id: str, blocked_id: str, now_ts: int
) -> BlockChange:
    await _require_users(conn, blocker_id, blocked_id)
    inserted = await conn.execute(
        dialect_insert(conn, blocks)
        .values(blocker_id=blocker_id, blocked_id=blocked_id, created_ts=now_ts)
        .on_conflict_do_nothing(index_elements=[blocks.c.blocker_id, blocks.c.blocked_id])
    )
    contact_removed = await remove_contact(conn, blocker_id, blocked_id)
    declined: list[Invitation] = []
    hidden: list[Invitation] = []
    pending = await _pending_between(conn, blocker_id, blocked_id)
    if pending is not None and pending.from_user.id == blocker_id:
        answered = await answer_invitation(conn, pending.id, "declined", now_ts)
        if answered is not None:
            declined.append(answered)
    elif pending is not None and not pending.hidden:
        await conn.execute(
            update(invitations).where(invitations.c.id == pending.id).values(hidden=True)
        )
        hidden.append(pending.model_copy(update={"hidden": True}))
    return BlockChange(
        created=inserted.rowcount == 1,
        contact_removed=contact_removed,
        declined=tuple(declined),
        hidden=tuple(hidden),
    )


async def unblock(
    conn: AsyncConnection, blocker_id: str, blocked_id: str, now_ts: int
) -> list[Invitation]:
    removed = await conn.execute(
        delete(blocks).where(blocks.c.blocker_id == blocker_id, blocks.c.blocked_id == blocked_id)
    )
    if removed.rowcount != 1:
        return []
    pending = await _pending_between(conn, blocker_id, blocked_id)
    if pending is None or not pending.hidden or pending.from_user.id != blocked_id:
        return []
    answered = await answer_invitation(conn, pending.id, "declined", now_ts)
    return [answered] if answered is not None else []


async def block_state(conn: AsyncConnection, user_a: str, user_b: str) -> tuple[bool, bool]:
    stmt = select(blocks.c.blocker_id).where(
        or_(
            and_(blocks.c.blocker_id == user_a, blocks.c.blocked_id == user_b),
            and_(blocks.c.blocker_id == user_b, blocks.c.blocked_id == user_a),
        )
    )
    blockers = set((await conn.execute(stmt)).scalars())
    return user_a in blockers, user_b in blockers


async def blocked_users(conn: AsyncConnection, blocker_id: str) -> list[User]:
    stmt = (
        select(*(users.c[name] for name in _USER_FIELDS))
        .select_from(blocks.join(users, users.c.id == blocks.c.blocked_id))
        .where(blocks.c.blocker_id == blocker_id)
        .order_by(users.c.username_lower)
    )
    return [_user(row) for row in await conn.execute(stmt)]


BLOCKS_INVOLVING = union(  # built once: presence reads it at every session start
    select(blocks.c.blocked_id.label("user_id")).where(blocks.c.blocker_id == bindparam("user_id")),
    select(blocks.c.blocker_id.label("user_id")).where(blocks.c.blocked_id == bindparam("user_id")),
)


async def blocks_involving(conn: AsyncConnection, user_id: str) -> list[str]:
    return list((await conn.execute(BLOCKS_INVOLVING, {"user_id": user_id})).scalars())
