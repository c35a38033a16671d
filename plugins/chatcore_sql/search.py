"""Message search in SQL: a function on a connection the caller opened (a read).

The index is migration 0012's (`tables.MESSAGES_FTS` on SQLite, `tables.MESSAGES_SEARCH_INDEX`
on PostgreSQL). PostgreSQL keeps it whatever writes a message. On SQLite the triggers keep it
through edits, deletions and row removals, and `index_pending` adds new messages in bulk after
their commit (see the migration for why), before every search and in the background.

A query reaches the database only as words of letters and digits
(`chatcore.server.search.words`), each quoted in the database's own syntax, so no text a caller
gives is query syntax: every word must match, the last one also as a prefix.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, and_, column, func, literal_column, or_, select, table, text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnClause

from chatcore.models import Message
from chatcore.server.search import words
from chatcore_sql import rows
from chatcore_sql.tables import MESSAGES_FTS, messages, room_members

_fts = table(MESSAGES_FTS, column("rowid"))
#: SQLite: the highest rowid of `messages` in the index (one row; migration 0012).
_MARK = MESSAGES_FTS + "_mark"
#: Messages indexed per transaction by `index_pending`: about a millisecond of the writer.
INDEX_BATCH = 1000
_SIMPLE: ColumnClause[Any] = literal_column("'simple'::regconfig")
#: The expression PostgreSQL's GIN index is on: a query must name it exactly to use the index.
_VECTOR = func.to_tsvector(_SIMPLE, messages.c.body)


def fts5_query(found: Sequence[str]) -> str:
    """SQLite FTS5: every word as a quoted string (letters and digits only: nothing to
    escape), the last one a prefix query; juxtaposed strings must all match."""
    quoted = [f'"{word}"' for word in found]
    quoted[-1] += "*"
    return " ".join(quoted)


def tsquery(found: Sequence[str]) -> str:
    """PostgreSQL `to_tsquery`: every word as a quoted lexeme joined by `&`, the last one a
    prefix (`:*`)."""
    quoted = [f"'{word}'" for word in found]
    quoted[-1] += ":*"
    return " & ".join(quoted)


def statement(
    dialect: str,
    user_id: str,
    found: Sequence[str],
    room_id: str | None,
    before: tuple[int, str] | None,
    size: int,
) -> Select[Any]:
    """The search's SELECT on `dialect` ("sqlite" or "postgresql"): `size` + 1 messages
    matching the words `found` (not empty) in `user_id`'s rooms, newest first."""
    stmt = select(*rows.MESSAGE_COLUMNS)
    if dialect == "sqlite":
        stmt = stmt.select_from(
            _fts.join(messages, literal_column("messages.rowid") == _fts.c.rowid)
        ).where(literal_column(MESSAGES_FTS).op("MATCH")(fts5_query(found)))
    else:
        stmt = stmt.where(_VECTOR.op("@@")(func.to_tsquery(_SIMPLE, tsquery(found))))
    # Membership now, by a join on the member's row: the rooms of a user can be many.
    stmt = stmt.join(
        room_members,
        and_(room_members.c.room_id == messages.c.room_id, room_members.c.user_id == user_id),
    ).where(messages.c.deleted.is_(False))
    if room_id is not None:
        stmt = stmt.where(messages.c.room_id == room_id)
    if before is not None:
        ts, message_id = rows.i64(before[0]), before[1]
        stmt = stmt.where(
            or_(messages.c.ts < ts, and_(messages.c.ts == ts, messages.c.id < message_id))
        )
    return stmt.order_by(messages.c.ts.desc(), messages.c.id.desc()).limit(size + 1)


async def search(
    conn: AsyncConnection,
    user_id: str,
    query: str,
    room_id: str | None,
    before: tuple[int, str] | None,
    limit: int,
) -> tuple[list[Message], bool]:
    """`SearchStorage.search_messages` on one connection."""
    found = words(query)
    if not found or limit <= 0:
        return [], False
    size = min(limit, rows.I64_MAX - 1)  # room for the one more that tells has_more
    stmt = statement(conn.dialect.name, user_id, found, room_id, before, size)
    page = [rows.message(row) for row in await conn.execute(stmt)]
    return page[:size], len(page) > size


async def pending(conn: AsyncConnection) -> bool:
    """SQLite: whether messages were stored since the index last caught up (a cheap read)."""
    found = await conn.execute(
        text(
            f"SELECT (SELECT indexed_rowid FROM {_MARK}) < "
            "(SELECT coalesce(max(rowid), 0) FROM messages)"
        )
    )
    return bool(found.scalar_one())


async def index_pending(conn: AsyncConnection) -> int:
    """SQLite: index the next `INDEX_BATCH` messages above the mark and move the mark past
    them, in the caller's write transaction (which keeps other writers out meanwhile); how many
    were indexed. A deleted message's body is "": it is indexed with no words."""
    mark = (await conn.execute(text(f"SELECT indexed_rowid FROM {_MARK}"))).scalar_one()
    count, top = (
        await conn.execute(
            text(
                "SELECT count(*), max(rowid) FROM (SELECT rowid FROM messages"
                " WHERE rowid > :mark ORDER BY rowid LIMIT :limit)"
            ),
            {"mark": mark, "limit": INDEX_BATCH},
        )
    ).one()
    if not count:
        return 0
    await conn.execute(
        text(
            f"INSERT INTO {MESSAGES_FTS} (rowid, body)"
            " SELECT rowid, body FROM messages WHERE rowid > :mark AND rowid <= :top"
        ),
        {"mark": mark, "top": top},
    )
    await conn.execute(text(f"UPDATE {_MARK} SET indexed_rowid = :top"), {"top": top})
    return int(count)
