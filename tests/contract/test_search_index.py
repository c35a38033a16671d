"""chatcore_sql's search index (migration 0012), beyond the storage contract: rows removed
by SQL (retention, erasure) leave it, upgrading indexes the messages already stored and
downgrading removes it, SQLite's FTS5 index agrees with its table, and PostgreSQL's queries
use the GIN index."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from alembic import command
from sqlalchemy import Connection, delete, text

from chatcore.testing.services import postgres_url, require_url, unique_name
from chatcore.testing.storage_contract import draft, make_users, store
from chatcore_sql import migrate, search, tables
from chatcore_sql import storage as storage_module
from chatcore_sql.engine import writer
from chatcore_sql.settings import SqlStorageSettings
from chatcore_sql.storage import SqlStorage, build_storage

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", "postgres"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStorage]:
    """A started storage on a new SQLite file, or on a new PostgreSQL schema (dropped after)."""
    schema = None
    if request.param == "postgres":
        require_url("PostgreSQL", postgres_url())
        url, schema = postgres_url(), unique_name("chatcore_search")
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}"
    built = build_storage(SqlStorageSettings(url=url, schema=schema))
    assert built is not None
    await built.start()
    try:
        yield built
    finally:
        if schema is not None:
            async with built.engine.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await built.close()


async def fts5_agrees_with_messages(storage: SqlStorage) -> None:
    """SQLite: FTS5's own check of an external content index against its table (raises when
    an entry is missing, stale, or left over); nothing to check on PostgreSQL."""
    if storage.engine.dialect.name == "sqlite":
        await storage.index_pending()  # new messages join the index after their commit
        async with storage.engine.begin() as conn:
            await conn.execute(
                text(
                    f"INSERT INTO {tables.MESSAGES_FTS} ({tables.MESSAGES_FTS}, rank) "
                    "VALUES ('integrity-check', 1)"
                )
            )


async def test_rows_removed_by_sql_leave_the_index(storage: SqlStorage) -> None:
    """Retention and erasure delete message rows: those stop matching, the index stays whole,
    and new messages with the same words are found."""
    alice, bob = await make_users(storage, "alice", "bob")
    room = await storage.create_group_room(alice.id, "g", [bob.id], now_ts=1)
    old = await store(
        storage, *(draft(room, alice, f"o{i}", body=f"purge me {i}") for i in range(5))
    )
    await storage.edit_message(room.id, old[0].id, "purge me edited", now_ts=2)
    await storage.delete_message(room.id, old[1].id, now_ts=3)
    assert len((await storage.search_messages(bob.id, "purge", limit=10))[0]) == 4
    await fts5_agrees_with_messages(storage)

    async with storage.engine.begin() as conn:
        await conn.execute(delete(tables.messages).where(tables.messages.c.seq <= 4))
    (left,) = (await storage.search_messages(bob.id, "purge", limit=10))[0]
    assert left.id == old[4].id
    await fts5_agrees_with_messages(storage)
    (new,) = await store(storage, draft(room, bob, "n", body="purge me again", ts=9))
    assert (await storage.search_messages(alice.id, "again"))[0] == [new]
    await fts5_agrees_with_messages(storage)


async def test_downgrade_and_upgrade_index_the_messages_stored(storage: SqlStorage) -> None:
    """Revision 0012 downgraded removes the index (and reports); upgraded again it indexes
    every message already stored, deleted ones left out."""
    alice, bob = await make_users(storage, "alice", "bob")
    room, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=1)
    kept, gone = await store(
        storage,
        draft(room, alice, "k", body="kept words"),
        draft(room, alice, "g", body="kept too"),
    )
    await storage.delete_message(room.id, gone.id, now_ts=2)

    def downgrade(connection: Connection) -> None:
        command.downgrade(migrate.alembic_config(connection), "0011")

    async with writer(storage.engine).begin() as conn:
        await conn.run_sync(downgrade)
        assert await conn.run_sync(migrate.current_revision) == "0011"
        names = await conn.run_sync(
            lambda sync: sync.dialect.get_table_names(sync, schema=storage.settings.schema)
        )
        assert "reports" not in names and tables.MESSAGES_FTS not in names
    assert await migrate.upgrade(storage.engine, storage.settings.schema) == (
        "0011",
        migrate.head(),
    )
    assert (await storage.search_messages(bob.id, "kept"))[0] == [kept]
    await fts5_agrees_with_messages(storage)


@pytest.mark.parametrize("storage", ["postgres"], indirect=True)
async def test_postgres_search_uses_the_gin_index(storage: SqlStorage) -> None:
    """The query names the indexed expression exactly: a selective search reads the GIN
    index, not every message of the caller's rooms."""
    alice, bob = await make_users(storage, "alice", "bob")
    room, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=1)
    for first in range(0, 3000, 500):
        drafts = [
            draft(room, alice, f"m{i}", body=f"word{i} common") for i in range(first, first + 500)
        ]
        await store(storage, *drafts)
    found = ["common", "word7"]
    async with storage.engine.begin() as conn:
        await conn.execute(text("ANALYZE messages"))
        page, more = await search.search(conn, bob.id, " ".join(found), None, None, 200)
        assert len(page) == 111 and not more  # word7, word70..79, word700..799
        statement = search.statement(conn.dialect.name, bob.id, found, None, None, 10)
        compiled = statement.compile(conn.sync_connection, compile_kwargs={"literal_binds": True})
        plan = "\n".join(row[0] for row in await conn.execute(text(f"EXPLAIN {compiled}")))
    assert tables.MESSAGES_SEARCH_INDEX in plan, plan


async def test_messages_changed_or_removed_before_they_are_indexed(storage: SqlStorage) -> None:
    """SQLite indexes new messages after their commit: an edit, a deletion or a removal that
    comes first leaves the index right once it catches up."""
    alice, bob = await make_users(storage, "alice", "bob")
    room, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=1)
    edited, deleted, removed, _ = await store(
        storage,
        draft(room, alice, "e", body="early words"),
        draft(room, alice, "d", body="doomed words"),
        draft(room, alice, "r", body="removed words"),
        draft(room, alice, "n", body="newest"),
    )
    await storage.edit_message(room.id, edited.id, "later words", now_ts=2)
    await storage.delete_message(room.id, deleted.id, now_ts=3)
    async with storage.engine.begin() as conn:
        await conn.execute(delete(tables.messages).where(tables.messages.c.id == removed.id))
    await fts5_agrees_with_messages(storage)
    found, _ = await storage.search_messages(bob.id, "words")
    assert [m.id for m in found] == [edited.id]
    assert (await storage.search_messages(bob.id, "early"))[0] == []


async def test_a_rowid_handed_out_again_is_indexed(storage: SqlStorage) -> None:
    """When the newest message row is removed (retention may), SQLite hands its rowid to the
    next message: that message is indexed all the same."""
    alice, bob = await make_users(storage, "alice", "bob")
    room, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=1)
    _, newest = await store(
        storage, draft(room, alice, "o", body="older"), draft(room, alice, "n", body="newest")
    )
    await storage.index_pending()
    async with storage.engine.begin() as conn:
        await conn.execute(delete(tables.messages).where(tables.messages.c.id == newest.id))
    (again,) = await store(storage, draft(room, bob, "a", body="reused rowid"))
    assert (await storage.search_messages(alice.id, "reused"))[0] == [again]
    assert (await storage.search_messages(alice.id, "newest"))[0] == []
    await fts5_agrees_with_messages(storage)


async def test_the_index_catches_up_by_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a search, SQLite's background pass (every `INDEX_SECONDS`, here shortened)
    indexes what was stored."""
    monkeypatch.setattr(storage_module, "INDEX_SECONDS", 0.05)
    built = build_storage(SqlStorageSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}"))
    assert built is not None
    await built.start()
    try:
        alice, bob = await make_users(built, "alice", "bob")
        room, _ = await built.create_direct_room(alice.id, bob.id, now_ts=1)
        await store(built, *(draft(room, alice, f"m{i}", body=f"word {i}") for i in range(3)))
        with anyio.fail_after(10):
            while True:
                async with built.engine.connect() as conn:
                    if not await search.pending(conn):
                        break
                await anyio.sleep(0.05)
        await fts5_agrees_with_messages(built)
    finally:
        await built.close()
