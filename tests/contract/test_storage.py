"""The storage contract on chatcore_sql (SQLite file and PostgreSQL), plus what is SQL-specific:
SQLite connection setup, migrations (and their agreement with tables.py), the `db` commands."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sqlite3
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any, TypeVar

import anyio
import asyncpg
import click
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import Connection, select, text

import chatcore_sql
from chatcore.errors import ChatError
from chatcore.hooks import call_first
from chatcore.hookspecs import hookimpl
from chatcore.models import Draft, Message, Room, Stored
from chatcore.server.app import App
from chatcore.server.contacts import NOT_ACCEPTED
from chatcore.settings import ConfigError
from chatcore.testing.services import postgres_url, require_url, unique_name
from chatcore.testing.storage_contract import (
    FAR,
    StorageContract,
    created,
    draft,
    gather,
    make_user,
    make_users,
)
from chatcore_sql import loop_writer, messages, migrate, tables
from chatcore_sql import storage as storage_module
from chatcore_sql.settings import async_url
from chatcore_sql.sqlite_writer import SqliteWriter
from chatcore_sql.storage import SqlStorage
from chatcore_sql.tables import metadata

T = TypeVar("T")

# Block the other built-in plugins: these tests exercise this plugin alone.
OTHER_PLUGINS = ["chatcore_auth", "chatcore_memory", "chatcore_rest", "chatcore_ws"]


def make_app(url: str, **storage: Any) -> App:
    """An un-started App with only the core and chatcore_sql, storage section as given."""
    return App.from_config(
        overrides={"storage": {"url": url, **storage}},
        entry_points=False,
        extra_plugins=[chatcore_sql],
    )


async def provide(url: str, **storage: Any) -> SqlStorage:
    """The storage the `chatcore_storage` hook builds for this config (not started)."""
    app = make_app(url, **storage)
    result = await call_first(app.hook.chatcore_storage, app=app)
    assert isinstance(result, SqlStorage)
    return result


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


async def drop_schema(schema: str) -> None:
    cleaner = await provide(postgres_url(), auto_migrate=False)
    await cleaner.connect()
    try:
        async with cleaner.engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        await cleaner.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres":
        require_url("PostgreSQL", postgres_url())
    return str(request.param)


def run_in_thread(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion on its own event loop, in a thread: for session fixtures,
    which must not touch the event loop of the (function-scoped) async tests."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per session: each test starts from a copy."""
    path = tmp_path_factory.mktemp("sqlite-template") / "chat.db"

    async def migrate_once() -> None:
        storage = await provide(sqlite_url(path))
        await storage.start()
        await storage.close()  # the last connection checkpoints the WAL into the file

    run_in_thread(migrate_once)
    return path


@pytest.fixture(scope="session")
def postgres_schema() -> Iterator[str]:
    """A PostgreSQL schema migrated to head once per session (dropped at the end): each test
    empties its tables first."""
    require_url("PostgreSQL", postgres_url())
    schema = unique_name("chatcore_test")

    async def migrate_once() -> None:
        storage = await provide(postgres_url(), schema=schema)
        await storage.start()
        await storage.close()

    run_in_thread(migrate_once)
    try:
        yield schema
    finally:
        run_in_thread(lambda: drop_schema(schema))


@pytest.fixture
async def sql_storage(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[SqlStorage]:
    """A ready, empty SqlStorage at the newest schema: a copy of the migrated SQLite file, or
    the session's PostgreSQL schema with every table emptied.

    The database is at head already, so the storage is only connected: `start()` would add
    nothing but Alembic's check. Migrating and starting are tested on fresh databases below;
    doing them for every test would double the suite's time.
    """
    if backend == "sqlite":
        path = tmp_path / "chat.db"
        await asyncio.to_thread(shutil.copyfile, request.getfixturevalue("sqlite_template"), path)
        storage = await provide(sqlite_url(path))
        await storage.connect()
    else:
        storage = await provide(postgres_url(), schema=request.getfixturevalue("postgres_schema"))
        await storage.connect()
        async with storage.engine.begin() as conn:
            # DELETE beats TRUNCATE on tables this small (TRUNCATE makes new files).
            for table in reversed(metadata.sorted_tables):
                await conn.execute(table.delete())
    try:
        yield storage
    finally:
        await storage.close()


class TestSqlStorage(StorageContract):
    @pytest.fixture
    def storage(self, sql_storage: SqlStorage) -> SqlStorage:
        return sql_storage

    @pytest.fixture
    async def other_node(self, sql_storage: SqlStorage) -> AsyncIterator[SqlStorage]:
        """Another SqlStorage (its own engine and pool) on the same file or schema: on SQLite
        like a second process, on PostgreSQL like a second server node."""
        node = await provide(
            sql_storage.url.render_as_string(hide_password=False),
            schema=sql_storage.settings.schema,
        )
        await node.connect()  # the schema is at head (see `sql_storage`)
        try:
            yield node
        finally:
            await node.close()


# --- the plugin's hooks and settings ---------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("sqlite+aiosqlite:///./data/chat.db", "sqlite+aiosqlite"),
        ("sqlite:///./data/chat.db", "sqlite+aiosqlite"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg"),
        ("postgresql://u@h/db", "postgresql+asyncpg"),
        ("postgres://u@h/db", "postgresql+asyncpg"),
    ],
)
def test_urls_map_to_async_drivers(given: str, driver: str) -> None:
    url = async_url(given)
    assert url is not None and url.drivername == driver


class OtherStorage:
    """Another storage plugin, which does not say which URLs it serves."""

    @hookimpl
    def chatcore_storage(self, app: App) -> None:
        return None


@pytest.mark.anyio
async def test_other_urls_are_left_to_other_plugins() -> None:
    for url in ("memory://", "mysql://u@h/db", "redis://localhost", "not a url"):
        # With chatcore_sql the only storage plugin, such a URL is a config error; beside one
        # that may serve it, the config is left to that plugin, and chatcore_sql answers None.
        with pytest.raises(ConfigError, match=r"storage\.url: "):
            make_app(url)
        app = App.from_config(
            overrides={"storage": {"url": url}},
            entry_points=False,
            extra_plugins=[chatcore_sql, OtherStorage()],
        )
        assert await call_first(app.hook.chatcore_storage, app=app) is None


def test_settings_defaults_and_validation() -> None:
    storage = make_app("sqlite:///x.db").settings.storage
    assert isinstance(storage, chatcore_sql.SqlStorageSettings)
    assert (storage.pool_size, storage.max_overflow, storage.pool_timeout) == (10, 10, 30)
    assert (storage.auto_migrate, storage.echo, storage.schema) == (True, False, None)
    assert (storage.sqlite_synchronous, storage.busy_timeout_ms) == ("NORMAL", 5000)
    with pytest.raises(ConfigError, match=r"storage\.sqlite_synchronous"):
        make_app("sqlite:///x.db", sqlite_synchronous="OFF")
    with pytest.raises(ConfigError, match=r"storage\.schema"):
        make_app("postgresql://u@h/db", schema="bad; drop table users")
    with pytest.raises(ConfigError, match=r"storage\.pool_sizes: unknown key"):
        make_app("sqlite:///x.db", pool_sizes=3)


@pytest.mark.anyio
async def test_schema_with_sqlite_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="only supported with PostgreSQL"):
        await provide(sqlite_url(tmp_path / "chat.db"), schema="s")


# --- SQLite specifics -------------------------------------------------------------------------


async def pragmas(storage: SqlStorage) -> dict[str, Any]:
    async with storage.engine.connect() as conn:
        return {
            name: (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()
            for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
        }


@pytest.mark.anyio
@pytest.mark.parametrize(("synchronous", "level"), [("NORMAL", 1), ("FULL", 2)])
async def test_sqlite_connection_setup(tmp_path: Path, synchronous: str, level: int) -> None:
    storage = await provide(
        sqlite_url(tmp_path / "chat.db"), sqlite_synchronous=synchronous, busy_timeout_ms=1234
    )
    await storage.start()
    try:
        assert await pragmas(storage) == {
            "journal_mode": "wal",
            "synchronous": level,
            "busy_timeout": 1234,
            "foreign_keys": 1,
        }
    finally:
        await storage.close()


@pytest.mark.anyio
async def test_sqlite_default_url_is_relative_to_working_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    app = make_app(chatcore_sql.SqlStorageSettings().url)  # the embedded default
    storage = await call_first(app.hook.chatcore_storage, app=app)
    await storage.start()
    try:
        user = await make_user(storage, "zoe")
    finally:
        await storage.close()
    # The folder was created; the data is in the file and readable by any SQLite client.
    with sqlite3.connect(tmp_path / "data" / "chat.db") as db:
        assert db.execute("SELECT id, username FROM users").fetchall() == [(user.id, "zoe")]
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    db.close()


@pytest.mark.anyio
async def test_sqlite_two_engines_on_one_file_do_not_lock_each_other(tmp_path: Path) -> None:
    """Like a CLI command next to a running server: separate pools writing one file."""
    url = sqlite_url(tmp_path / "chat.db")
    first, second = await provide(url), await provide(url)
    await first.start()
    await second.start()
    try:
        results = await gather(
            *(make_user(first if i % 2 else second, f"user{i:02d}") for i in range(30))
        )
        assert [r for r in results if isinstance(r, BaseException)] == []
        assert len(await first.list_users(100)) == 30
        # Writes that read first (the user must exist) must not fail on a stale read snapshot.
        users = [r for r in results if not isinstance(r, BaseException)]
        writes = await gather(
            *(
                (first if i % 2 else second).create_login(u.id, f"h{i}", FAR, now_ts=1)
                for i, u in enumerate(users)
            ),
            *(
                (second if i % 2 else first).put_settings(u.id, {"n": i})
                for i, u in enumerate(users)
            ),
        )
        assert [w for w in writes if isinstance(w, BaseException)] == []
        assert await first.get_settings(users[7].id) == {"n": 7}
        # One token presented to both at once: exactly one rotation succeeds.
        user = results[0]
        await first.create_login(user.id, "r1", FAR, now_ts=1)
        outcomes = await gather(
            *(
                (first if i % 2 else second).rotate_refresh_token("r1", f"n{i}", FAR, now_ts=2)
                for i in range(6)
            )
        )
        assert sorted(o.status for o in outcomes) == ["ok"] + ["reused"] * 5
    finally:
        await first.close()
        await second.close()


@pytest.mark.parametrize("backend", ["postgres"])
@pytest.mark.parametrize(
    "change", ["another message", "the sender left", "a block", "the sender was muted"]
)
@pytest.mark.anyio
async def test_postgres_batch_read_before_a_change_is_decided_again(
    sql_storage: SqlStorage, change: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL's writer reads a batch without locks and writes it with
    `chatcore_store_messages`, which checks under the rooms' locks that the read still holds.
    A change committed between the read and the write (by another node) must not be
    overlooked: the batch is decided again, the locking way, and ends as if it had come
    after the change (no seq used twice, no message from a sender who left, none across a
    block, none from a sender muted meanwhile)."""
    storage = sql_storage
    alice, bob = await make_users(storage, "alice", "bob")
    room, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=1)
    created(await storage.store_messages([draft(room, alice, "a")]))
    decide, changed = loop_writer._decide, asyncio.Event()

    async def decide_then_change(conn: asyncpg.Connection, batch: messages.Batch) -> Any:
        decided = await decide(conn, batch)
        if not changed.is_set():  # once, between the first read and its write
            changed.set()
            other = await asyncpg.connect(**loop_writer.connect_args(storage.url, storage.settings))
            try:
                if change == "another message":
                    await loop_writer._locking(other, [draft(room, bob, "b")])
                elif change == "the sender left":
                    await other.execute(
                        "DELETE FROM room_members WHERE room_id = $1 AND user_id = $2",
                        room.id,
                        alice.id,
                    )
                elif change == "the sender was muted":
                    await other.execute(
                        "UPDATE room_members SET muted_until_ts = $3 "
                        "WHERE room_id = $1 AND user_id = $2",
                        room.id,
                        alice.id,
                        FAR,
                    )
                else:
                    await other.execute(
                        "INSERT INTO blocks (blocker_id, blocked_id, created_ts) "
                        "VALUES ($1, $2, 2)",
                        bob.id,
                        alice.id,
                    )
            finally:
                await other.close()
        return decided

    monkeypatch.setattr(loop_writer, "_decide", decide_then_change)
    (result,) = await storage.store_messages([draft(room, alice, "c")])
    stored = [(m.ref, m.seq) for m in await storage.messages_after(room.id, 0, 10)]
    if change == "another message":
        assert isinstance(result, Stored) and (result.message.seq, result.created) == (3, True)
        assert stored == [("a", 1), ("b", 2), ("c", 3)]
    else:
        assert isinstance(result, ChatError)
        assert stored == [("a", 1)]
        if change == "the sender was muted":
            assert result.code == "forbidden" and "muted" in result.message
    room_now = await storage.get_room(room.id)
    assert room_now is not None and room_now.last_seq == stored[-1][1]


@pytest.mark.parametrize("backend", ["postgres"])
@pytest.mark.anyio
async def test_postgres_writer_replaces_a_connection_the_database_dropped(
    sql_storage: SqlStorage, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A writer's connection that the database dropped while it was idle (a restart, an
    administrator) fails on the batch's read, before anything is written: the batch is
    stored once, on a new connection, and the broken one is not used again."""
    storage = sql_storage
    alice, bob = await make_users(storage, "alice", "bob")
    room, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=1)
    created(await storage.store_messages([draft(room, alice, "a")]))
    decide, dropped = loop_writer._decide, []

    async def drop_then_decide(conn: asyncpg.Connection, batch: messages.Batch) -> Any:
        if not dropped:
            pid = conn.get_server_pid()
            dropped.append(pid)
            other = await asyncpg.connect(**loop_writer.connect_args(storage.url, storage.settings))
            try:
                # With a timeout, PostgreSQL answers once the backend has ended.
                assert await other.fetchval("SELECT pg_terminate_backend($1, 10000)", pid)
            finally:
                await other.close()
        return await decide(conn, batch)

    monkeypatch.setattr(loop_writer, "_decide", drop_then_decide)
    (first,) = await storage.store_messages([draft(room, bob, "b")])
    assert isinstance(first, Stored) and (first.message.seq, first.created) == (2, True)
    assert "a database connection broke, connecting again" in caplog.text
    (second,) = await storage.store_messages([draft(room, bob, "c")])
    assert isinstance(second, Stored) and second.message.seq == 3
    assert [(m.ref, m.seq) for m in await storage.messages_after(room.id, 0, 10)] == [
        ("a", 1),
        ("b", 2),
        ("c", 3),
    ]


@pytest.mark.anyio
async def test_sqlite_in_memory_stores_batches_on_its_one_connection() -> None:
    """A memory database is one shared connection, so its batches cannot go to the file
    writer's own connection (see SqlStorage.store_messages): they run on the async engine."""
    storage = await provide("sqlite+aiosqlite://")
    await storage.start()
    try:
        alice, bob = await make_user(storage, "alice"), await make_user(storage, "bob")
        room, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=1)
        first = await storage.store_messages(
            [draft(room, alice, "a"), draft(room, bob, "b"), draft(room, alice, "a")]
        )
        assert [(r.message.seq, r.created) for r in first if isinstance(r, Stored)] == [
            (1, True),
            (2, True),
            (1, False),
        ]
        await storage.block(bob.id, alice.id, now_ts=2)
        (refused,) = await storage.store_messages([draft(room, alice, "c")])
        assert isinstance(refused, ChatError) and refused.message == NOT_ACCEPTED
        assert [m.ref for m in await storage.messages_after(room.id, 0, 10)] == ["a", "b"]
    finally:
        await storage.close()


@pytest.mark.anyio
async def test_sqlite_in_memory_batch_across_rooms() -> None:
    """The contract's mixed batch on the in-memory path (SQLAlchemy running the statements)."""
    storage = await provide("sqlite+aiosqlite://")
    await storage.start()
    try:
        await TestSqlStorage().test_a_batch_across_rooms_judges_each_draft_as_if_alone(storage)
    finally:
        await storage.close()


@pytest.mark.anyio
async def test_sqlite_writer_stores_what_sqlalchemy_stores(tmp_path: Path) -> None:
    """The file writer runs a batch's statements on sqlite3 itself: the rows it writes hold
    the values, and SQLite types, of the rows SQLAlchemy writes for the same batch (a Boolean
    as the integer 0, NULLs, integers, text)."""
    path = tmp_path / "chat.db"
    storage = await provide(sqlite_url(path))
    await storage.start()
    try:
        alice, bob = await make_user(storage, "alice"), await make_user(storage, "bob")
        by_writer = await storage.create_group_room(alice.id, "writer", [bob.id], now_ts=1)
        by_sqlalchemy = await storage.create_group_room(alice.id, "sqlalchemy", [bob.id], 1)

        def batches(room: Room, first: Message | None = None) -> list[Draft]:
            if first is not None:
                return [draft(room, bob, "r", reply_to=first.id, ts=10)]
            return [
                draft(room, alice, "t", body="héllo", ts=7),
                draft(room, bob, "m", kind="media", body="", media_id="md", ts=8),
                draft(room, alice, "s", kind="sticker", body="", sticker_id="st", ts=2**62),
            ]

        async def store_by_sqlalchemy(drafts: list[Draft]) -> list[Message]:
            async with storage.engine.begin() as conn:
                return created(
                    await conn.run_sync(
                        lambda sync: messages.store_batch(messages.SqlStatements(sync), drafts)
                    )
                )

        first, *_ = created(await storage.store_messages(batches(by_writer)))
        created(await storage.store_messages(batches(by_writer, first)))
        first_sql, *_ = await store_by_sqlalchemy(batches(by_sqlalchemy))
        await store_by_sqlalchemy(batches(by_sqlalchemy, first_sql))
    finally:
        await storage.close()

    names = [c.name for c in tables.messages.columns if c.name not in ("id", "room_id")]
    shown = ", ".join(f"{name}, typeof({name})" for name in names)
    with closing(sqlite3.connect(path)) as db:
        found = {
            room.id: db.execute(
                f"SELECT {shown} FROM messages WHERE room_id = ? ORDER BY seq", (room.id,)
            ).fetchall()
            for room in (by_writer, by_sqlalchemy)
        }
        rooms = {
            room.id: db.execute(
                "SELECT last_seq, typeof(last_seq), last_ts, typeof(last_ts) FROM rooms"
                " WHERE id = ?",
                (room.id,),
            ).fetchall()
            for room in (by_writer, by_sqlalchemy)
        }
    reply_to = names.index("reply_to") * 2
    replies = {first.id: "first", first_sql.id: "first"}
    for room_rows in found.values():  # the replied-to ids differ: name them alike
        for i, row in enumerate(room_rows):
            if row[reply_to] is not None:
                room_rows[i] = (*row[:reply_to], replies[row[reply_to]], *row[reply_to + 1 :])
    assert found[by_writer.id] == found[by_sqlalchemy.id]
    assert rooms[by_writer.id] == rooms[by_sqlalchemy.id] == [(4, "integer", 10, "integer")]
    deleted = names.index("deleted") * 2
    assert {row[deleted : deleted + 2] for row in found[by_writer.id]} == {(0, "integer")}
    assert len(found[by_writer.id]) == 4


@pytest.mark.anyio
async def test_sqlite_wal_is_checkpointed_in_the_background(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer's commits leave the WAL alone (a checkpoint's fsync would stall a send);
    the storage copies it into the database in the background, so the database file itself
    (read without its WAL) soon holds what was stored."""
    monkeypatch.setattr(storage_module, "CHECKPOINT_SECONDS", 0.02)
    path = tmp_path / "chat.db"
    storage = await provide(sqlite_url(path))
    await storage.start()
    try:
        alice, bob = await make_users(storage, "alice", "bob")
        room = await storage.create_group_room(alice.id, "g", [alice.id, bob.id], 1)
        await storage.store_messages([draft(room, alice, f"m{i}") for i in range(50)])

        def in_database_file() -> int:
            # immutable=1: read the database file as it is, ignoring the WAL.
            with contextlib.closing(sqlite3.connect(f"file:{path}?immutable=1", uri=True)) as db:
                try:
                    return int(db.execute("SELECT count(*) FROM messages").fetchone()[0])
                except sqlite3.OperationalError:  # not even the schema is there yet
                    return 0

        for _ in range(500):  # polling a file nothing notifies about: at most 10 s
            if await asyncio.to_thread(in_database_file) == 50:
                break
            await anyio.sleep(0.02)
        else:
            pytest.fail("the WAL was not checkpointed into the database file")
    finally:
        await storage.close()


@pytest.mark.anyio
async def test_sqlite_writer_transactions(tmp_path: Path) -> None:
    """The file writer's connection is set up as the engine's (WAL, synchronous, busy
    timeout, foreign keys); a transaction the database refused on a constraint is rolled back
    and run once more, any other failure rolled back and raised."""
    storage = await provide(
        sqlite_url(tmp_path / "chat.db"), sqlite_synchronous="FULL", busy_timeout_ms=1234
    )
    await storage.start()
    await storage.close()
    writer = SqliteWriter(storage.url, storage.settings)
    tries: list[str] = []

    def add_pack(db: sqlite3.Connection, pack_id: str) -> None:
        db.execute("INSERT INTO sticker_packs (id, name, updated_ts) VALUES (?, 'n', 1)", [pack_id])

    def conflicting_once(db: sqlite3.Connection) -> int:
        tries.append(f"try{len(tries) + 1}")
        add_pack(db, tries[-1])
        if len(tries) == 1:
            add_pack(db, "try1")  # the primary key refuses it
        return len(tries)

    def failing(db: sqlite3.Connection, error: Exception) -> None:
        tries.append("failing")
        add_pack(db, f"failing{len(tries)}")
        raise error

    def packs(db: sqlite3.Connection) -> list[Any]:
        return [row[0] for row in db.execute("SELECT id FROM sticker_packs ORDER BY id")]

    try:
        setup = await writer.run(
            lambda db: [
                db.execute(f"PRAGMA {name}").fetchone()[0]
                for name in (
                    "journal_mode",
                    "synchronous",
                    "busy_timeout",
                    "foreign_keys",
                    "wal_autocheckpoint",
                )
            ]
        )
        assert setup == ["wal", 2, 1234, 1, 0]  # commits never checkpoint (see the next test)
        assert await writer.run(conflicting_once) == 2
        assert await writer.run(packs) == ["try2"]  # the first try left nothing
        tries.clear()
        with pytest.raises(ValueError, match="no"):
            await writer.run(lambda db: failing(db, ValueError("no")))
        assert tries == ["failing"]  # not retried
        tries.clear()
        with pytest.raises(sqlite3.IntegrityError):
            await writer.run(lambda db: failing(db, sqlite3.IntegrityError("again")))
        assert tries == ["failing", "failing"]  # once more, then raised
        assert await writer.run(packs) == ["try2"]
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
            await writer.run(
                lambda db: db.execute(
                    "INSERT INTO room_members (room_id, user_id, joined_ts) VALUES ('x', 'y', 1)"
                )
            )
    finally:
        await writer.close()


# --- migrations -------------------------------------------------------------------------------


def schema_drift(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={
            "version_table": migrate.VERSION_TABLE,
            "compare_type": True,
            "include_name": tables.described,  # the search index: not SQLAlchemy's to describe
        },
    )
    return list(compare_metadata(context, metadata))


@pytest.mark.anyio
async def test_migrations_agree_with_tables(sql_storage: SqlStorage) -> None:
    async with sql_storage.engine.connect() as conn:
        assert await conn.run_sync(schema_drift) == []


@pytest.mark.anyio
async def test_partial_indexes_agree_with_tables(sql_storage: SqlStorage) -> None:
    """Alembic's comparison ignores an index's WHERE clause: compare those here."""
    async with sql_storage.engine.connect() as conn:
        dialect = conn.dialect.name
        if dialect == "postgresql":
            found = await conn.execute(text("SELECT indexname, indexdef FROM pg_indexes"))
        else:
            found = await conn.execute(
                text("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql <> ''")
            )
        definitions = {name: sql for name, sql in found}
    wanted = {
        index.name: str(index.dialect_options[dialect]["where"])
        for table in metadata.tables.values()
        for index in table.indexes
        if index.dialect_options[dialect]["where"] is not None
    }
    assert wanted, "tables.py declares partial indexes"
    for name, where in wanted.items():
        definition = " ".join(definitions[name].replace("(", " ").replace(")", " ").split())
        assert definition.endswith(f"WHERE {where}"), (name, definitions[name])


@pytest.mark.anyio
async def test_full_rate_limit_buckets_are_deleted(sql_storage: SqlStorage) -> None:
    """Rows of buckets that are full again go (the table holds recent attempts only), at most
    once a minute of the callers' clock; a bucket still refilling stays."""
    t = 10**12

    async def keys() -> list[str]:
        async with sql_storage.engine.connect() as conn:
            found = await conn.execute(select(tables.rate_limits.c.key).order_by("key"))
            return list(found.scalars())

    assert await sql_storage.take_token("old", 2, 1_000, t) == 0
    assert await sql_storage.take_token("slow", 2, 3_600_000, t) == 0
    assert await sql_storage.take_token("new", 2, 1_000, t + 1_000) == 0  # too soon to prune
    assert await keys() == ["new", "old", "slow"]
    assert await sql_storage.take_token("newer", 2, 1_000, t + 60_000) == 0
    assert await keys() == ["newer", "slow"]


@pytest.mark.anyio
async def test_upgrade_reports_revisions_and_is_idempotent(sql_storage: SqlStorage) -> None:
    head = migrate.head()
    assert head is not None
    assert await migrate.current(sql_storage.engine) == head
    before_after = await migrate.upgrade(sql_storage.engine, sql_storage.settings.schema)
    assert before_after == (head, head)


@pytest.mark.anyio
async def test_without_auto_migrate_an_empty_database_is_refused(
    backend: str, tmp_path: Path
) -> None:
    if backend == "sqlite":
        url, schema = sqlite_url(tmp_path / "chat.db"), None
    else:
        url, schema = postgres_url(), unique_name("chatcore_test")
    storage = await provide(url, auto_migrate=False, schema=schema)
    with pytest.raises(migrate.SchemaNotReady, match="run `chatcore db upgrade`"):
        await storage.start()
    with pytest.raises(RuntimeError, match="not started"):
        storage.engine  # noqa: B018 - start() cleaned up after itself


@pytest.mark.anyio
async def test_nodes_starting_together_migrate_once_on_postgres() -> None:
    require_url("PostgreSQL", postgres_url())
    schema = unique_name("chatcore_test")
    nodes = [await provide(postgres_url(), schema=schema) for _ in range(3)]
    try:
        results = await gather(*(node.start() for node in nodes))
        assert results == [None, None, None]
        user = await make_user(nodes[0], "shared")
        assert await nodes[2].get_user(user.id) == user
        with pytest.raises(ChatError):
            await make_user(nodes[1], "SHARED")
    finally:
        for node in nodes:
            await node.close()
        await drop_schema(schema)


# --- the `db` commands ------------------------------------------------------------------------


def cli_group() -> click.Group:
    group = click.Group("chatcore")
    chatcore_sql.chatcore_register_commands(cli=group)
    return group


def write_config(path: Path, url: str) -> Path:
    # The memory broker stays: a config whose broker URL no plugin serves is refused.
    disabled = ", ".join(f'"{name}"' for name in OTHER_PLUGINS if name != "chatcore_memory")
    path.write_text(f'disabled_plugins = [{disabled}]\n[storage]\nurl = "{url}"\n')
    return path


def test_db_commands_on_sqlite(tmp_path: Path) -> None:
    db_file = tmp_path / "data" / "chat.db"
    config = write_config(tmp_path / "server.toml", sqlite_url(db_file))
    runner = CliRunner()
    head = migrate.head()

    result = runner.invoke(cli_group(), ["db", "current", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"none (head is {head}")

    result = runner.invoke(cli_group(), ["db", "upgrade", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert result.output == f"database schema upgraded: none -> {head} (head)\n"
    assert db_file.exists()

    result = runner.invoke(cli_group(), ["db", "upgrade"], env={"CHATCORE_CONFIG": str(config)})
    assert result.exit_code == 0, result.output
    assert result.output == f"database schema already at {head} (head)\n"

    result = runner.invoke(cli_group(), ["db", "current", "--config", str(config)])
    assert (result.exit_code, result.output) == (0, f"{head} (head)\n")


def test_db_commands_report_errors_on_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = tmp_path / "missing.toml"
    result = runner.invoke(cli_group(), ["db", "upgrade", "--config", str(missing)])
    assert result.exit_code == 2  # a config problem, as for every command
    assert result.output == f"{missing}: no such file\n"

    config = write_config(tmp_path / "broker.toml", "memory://")
    result = runner.invoke(cli_group(), ["db", "current", "--config", str(config)])
    assert result.exit_code == 2
    assert result.output == (
        f"{config}: storage.url: no loaded plugin serves memory:// URLs; expected one of: "
        "postgres://, postgresql://, postgresql+asyncpg://, sqlite://, sqlite+aiosqlite://\n"
    )

    # A database that cannot be opened: the driver's message, one line, no traceback.
    config = write_config(tmp_path / "bad.toml", sqlite_url(tmp_path / "chat.db" / "x"))
    (tmp_path / "chat.db").write_text("a file where a folder should be")
    result = runner.invoke(cli_group(), ["db", "upgrade", "--config", str(config)])
    assert result.exit_code == 1
    assert result.output.startswith("error: cannot open the SQLite database ")
    assert result.output.count("\n") == 1
    assert "Traceback" not in result.output
