"""Users, logins and refresh tokens in SQL: functions on a connection the caller opened.

The caller (`SqlStorage`) chooses the transaction: writes run in a write transaction. The
UNIQUE constraint on `users.username_lower` keeps usernames unique between nodes; the
conditional UPDATE in `rotate_refresh_token` lets only one of two concurrent rotations win.
"""

from __future__ import annotations

from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from chatcore.errors import ChatError, ErrorCode, not_found
from chatcore.models import Credentials, RefreshOutcome, User
from chatcore_sql.rows import USER_COLUMNS, user_of
from chatcore_sql.sqlite_writer import CompiledSql
from chatcore_sql.tables import logins, refresh_tokens, users

#: Why a disabled (or erased) account cannot log in (docs/protocol.md, Administration).
ACCOUNT_DISABLED = "This account is disabled; ask the server's admins."

# An erased user is nobody here: only `AdminStorage.get_tombstone` reads their row.
USER_BY_ID = select(*USER_COLUMNS).where(
    users.c.id == bindparam("user_id"), users.c.erased_ts.is_(None)
)
SQLITE_USER_BY_ID = CompiledSql(USER_BY_ID)


async def create(conn: AsyncConnection, user: User, password_hash: str, now_ts: int) -> None:
    """Insert `user`; the database raises IntegrityError when the username is taken."""
    await conn.execute(
        insert(users).values(
            id=user.id,
            username=user.username,
            username_lower=user.username.lower(),
            display_name=user.display_name,
            display_name_lower=user.display_name.lower(),
            password_hash=password_hash,
            created_ts=now_ts,
        )
    )


async def get(conn: AsyncConnection, user_id: str) -> User | None:
    row = (await conn.execute(USER_BY_ID, {"user_id": user_id})).first()
    return user_of(row) if row else None


async def require(conn: AsyncConnection, user_id: str) -> None:
    """Raise ChatError (not_found) when the user does not exist."""
    exists = (await conn.execute(select(users.c.id).where(users.c.id == user_id))).first()
    if exists is None:
        raise not_found("The user")


async def credentials(conn: AsyncConnection, username: str) -> Credentials | None:
    stmt = select(*USER_COLUMNS, users.c.password_hash).where(
        users.c.username_lower == username.lower(), users.c.erased_ts.is_(None)
    )
    row = (await conn.execute(stmt)).first()
    if row is None:
        return None
    return Credentials(user=user_of(row), password_hash=row.password_hash)


async def set_password_hash(conn: AsyncConnection, user_id: str, password_hash: str) -> None:
    await conn.execute(
        update(users).where(users.c.id == user_id).values(password_hash=password_hash)
    )


async def search(conn: AsyncConnection, prefix: str, limit: int) -> list[User]:
    lowered = prefix.lower()
    # autoescape: a typed '%' or '_' matches itself, not "anything".
    stmt = (
        select(*USER_COLUMNS)
        .where(
            or_(
                users.c.username_lower.startswith(lowered, autoescape=True),
                users.c.display_name_lower.startswith(lowered, autoescape=True),
            ),
            users.c.erased_ts.is_(None),  # a tombstone is nobody to find
        )
        .order_by(users.c.username_lower)
        .limit(limit)
    )
    return [user_of(row) for row in await conn.execute(stmt)]


async def listed(conn: AsyncConnection, limit: int, offset: int) -> list[User]:
    stmt = (
        select(*USER_COLUMNS)
        .order_by(users.c.username_lower)
        .limit(max(limit, 0))
        .offset(max(offset, 0))
    )
    return [user_of(row) for row in await conn.execute(stmt)]


# --- logins and refresh tokens ----------------------------------------------------------------


async def create_login(
    conn: AsyncConnection,
    login_id: str,
    user_id: str,
    refresh_hash: str,
    refresh_expires_ts: int,
    now_ts: int,
) -> None:
    # The row lock (PostgreSQL) orders this after a concurrent `disable_user`, which ends the
    # live logins: a login is never started for an account that is being disabled.
    locked = select(users.c.disabled_ts, users.c.erased_ts).where(users.c.id == user_id)
    row = (await conn.execute(locked.with_for_update())).first()
    if row is None:
        raise not_found("The user")
    if row.disabled_ts is not None or row.erased_ts is not None:
        raise ChatError(ErrorCode.FORBIDDEN, ACCOUNT_DISABLED)
    await conn.execute(insert(logins).values(id=login_id, user_id=user_id, created_ts=now_ts))
    await seen(conn, user_id, now_ts)
    await conn.execute(
        insert(refresh_tokens).values(
            token_hash=refresh_hash,
            login_id=login_id,
            created_ts=now_ts,
            expires_ts=refresh_expires_ts,
        )
    )


async def rotate_refresh_token(
    conn: AsyncConnection, old_hash: str, new_hash: str, new_expires_ts: int, now_ts: int
) -> RefreshOutcome:
    live_logins = select(logins.c.id).where(logins.c.ended_ts.is_(None))
    # The conditional UPDATE is the decision: of two concurrent rotations only one matches
    # `used_ts IS NULL` (PostgreSQL re-checks it after waiting on the row lock).
    mark_used = (
        update(refresh_tokens)
        .where(
            refresh_tokens.c.token_hash == old_hash,
            refresh_tokens.c.used_ts.is_(None),
            refresh_tokens.c.expires_ts > now_ts,
            refresh_tokens.c.login_id.in_(live_logins),
        )
        .values(used_ts=now_ts)
    )
    found = select(
        refresh_tokens.c.login_id, refresh_tokens.c.used_ts, logins.c.user_id, logins.c.ended_ts
    ).join(logins, logins.c.id == refresh_tokens.c.login_id)
    rotated = (await conn.execute(mark_used)).rowcount == 1
    row = (await conn.execute(found.where(refresh_tokens.c.token_hash == old_hash))).first()
    if row is None:
        return RefreshOutcome(status="unknown")
    if rotated:
        await seen(conn, row.user_id, now_ts)
        await conn.execute(
            insert(refresh_tokens).values(
                token_hash=new_hash,
                login_id=row.login_id,
                created_ts=now_ts,
                expires_ts=new_expires_ts,
            )
        )
        status = "ok"
    elif row.ended_ts is not None:
        status = "ended"
    elif row.used_ts is not None:
        status = "reused"
    else:
        status = "expired"
    return RefreshOutcome(status=status, login_id=row.login_id, user_id=row.user_id)


async def seen(conn: AsyncConnection, user_id: str, now_ts: int) -> None:
    """The user's last seen time (never moved back)."""
    await conn.execute(
        update(users)
        .where(
            users.c.id == user_id,
            or_(users.c.last_seen_ts.is_(None), users.c.last_seen_ts < now_ts),
        )
        .values(last_seen_ts=now_ts)
    )


async def end_login(conn: AsyncConnection, login_id: str, now_ts: int) -> None:
    await conn.execute(
        update(logins)
        .where(logins.c.id == login_id, logins.c.ended_ts.is_(None))
        .values(ended_ts=now_ts)
    )


async def login_ended(conn: AsyncConnection, login_id: str) -> bool:
    row = (await conn.execute(select(logins.c.ended_ts).where(logins.c.id == login_id))).first()
    return row is None or row.ended_ts is not None


async def ended_logins_since(conn: AsyncConnection, since_ts: int) -> list[str]:
    stmt = select(logins.c.id).where(logins.c.ended_ts >= since_ts).order_by(logins.c.ended_ts)
    return list((await conn.execute(stmt)).scalars())
