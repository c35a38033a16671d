"""The storage contract on chatcore_sql (SQLite file and PostgreSQL), plus what is SQL-specific:
SQLite connection setup, migrations (and their agreement with tables.py), the `db` commands."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import click
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import Connection, text

import chatcore_sql
from chatcore.app import App
from chatcore.errors import ChatError
from chatcore.hooks import call_first
from chatcore.settings import ConfigError
from chatcore.testing.services import postgres_url, require_url, unique_name
from chatcore.testing.storage_contract import FAR, StorageContract, gather, make_user
from chatcore_sql import migrate
from chatcore_sql.settings import async_url
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


@pytest.mark.anyio
async def test_other_urls_are_left_to_other_plugins() -> None:
    for url in ("memory://", "mysql://u@h/db", "redis://localhost", "not a url"):
        app = make_app(url)
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


# --- migrations -------------------------------------------------------------------------------


def schema_drift(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"version_table": migrate.VERSION_TABLE, "compare_type": True}
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
    disabled = ", ".join(f'"{name}"' for name in OTHER_PLUGINS)
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
    assert result.exit_code == 1
    assert result.output == f"Error: {missing}: no such file\n"

    config = write_config(tmp_path / "broker.toml", "memory://")
    result = runner.invoke(cli_group(), ["db", "current", "--config", str(config)])
    assert result.exit_code == 1
    assert result.output == "Error: storage.url 'memory://' is not a SQLite or PostgreSQL URL\n"

    # A database that cannot be opened: the driver's message, one line, no traceback.
    config = write_config(tmp_path / "bad.toml", sqlite_url(tmp_path / "chat.db" / "x"))
    (tmp_path / "chat.db").write_text("a file where a folder should be")
    result = runner.invoke(cli_group(), ["db", "upgrade", "--config", str(config)])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1
    assert "Traceback" not in result.output
