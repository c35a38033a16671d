"""Async engines for SQLite (aiosqlite) and PostgreSQL (asyncpg), set up the way storage needs.

SQLite: every new connection gets WAL journal mode, the configured `synchronous` level,
`busy_timeout` and `foreign_keys=ON`. SQLAlchemy, not the sqlite3 driver, emits BEGIN (the recipe
from SQLAlchemy's SQLite docs), so that reads run in real transactions and writers can ask for
`BEGIN IMMEDIATE` through `writer()`: a writer takes the database's write lock up front, so two
writers (in this process or another) queue on `busy_timeout` instead of deadlocking when both
try to upgrade a read lock.

PostgreSQL: an optional schema is put first on every connection's `search_path`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from chatcore.errors import StartupError
from chatcore.failures import reason
from chatcore_sql.settings import SqlStorageSettings

# An execution option carried by the writer engine; the "begin" listener reads it.
WRITE_OPTION = "chatcore_sql_write"


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def is_memory(url: URL) -> bool:
    """True for an in-memory SQLite database (one shared connection)."""
    return is_sqlite(url) and url.database in (None, "", ":memory:")


def sqlite_path(url: URL) -> Path | None:
    """The file of a SQLite URL (relative paths are relative to the working directory)."""
    if not is_sqlite(url) or is_memory(url) or url.query.get("uri") or not url.database:
        return None
    return Path(url.database)


def create_engine(url: URL, settings: SqlStorageSettings) -> AsyncEngine:
    """An engine for `url` (already mapped to its async driver) with the settings applied."""
    options: dict[str, Any] = {"echo": settings.echo}
    if not is_memory(url):  # a memory database is one static connection: nothing to size
        options.update(
            pool_size=settings.pool_size,
            max_overflow=settings.max_overflow,
            pool_timeout=settings.pool_timeout,
        )
    if is_sqlite(url):
        engine = create_async_engine(url, **options)
        _setup_sqlite(engine.sync_engine, settings)
        return engine
    if settings.schema:
        options["connect_args"] = {"server_settings": {"search_path": settings.schema}}
    # A node outlives database restarts: test a pooled connection before handing it out.
    return create_async_engine(url, pool_pre_ping=True, **options)


def describe(url: URL) -> str:
    """The database of `url` for a message, without credentials: `SQLite database PATH`,
    `PostgreSQL at HOST:PORT/DB`."""
    if is_sqlite(url):
        return f"SQLite database {url.database or ':memory:'}"
    return f"PostgreSQL at {url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"


async def reach(engine: AsyncEngine, url: URL) -> None:
    """Open (and return to the pool) one connection; a database out of reach, a refused login
    or a missing database is a one-line StartupError: `cannot connect to PostgreSQL at
    127.0.0.1:5432/chat: Connection refused`."""
    try:
        async with engine.connect():
            pass
    except (OSError, DBAPIError) as exc:
        # The driver's own error says why; SQLAlchemy's wrapper appends the SQL and a link.
        cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
        verb = "open the" if is_sqlite(url) else "connect to"
        raise StartupError(f"cannot {verb} {describe(url)}: {reason(cause)}") from exc


def writer(engine: AsyncEngine) -> AsyncEngine:
    """The same pool, but transactions begin with `BEGIN IMMEDIATE` on SQLite."""
    return engine.execution_options(**{WRITE_OPTION: True})


def create_sqlite_sync_engine(url: URL, settings: SqlStorageSettings) -> Engine:
    """A synchronous engine (the sqlite3 module) on the file of `url`, set up as `create_engine`
    sets up SQLite, holding at most one connection: for a writer that runs whole transactions
    in one thread (`chatcore_sql.sqlite_writer`)."""
    engine = create_sync_engine(
        url.set(drivername="sqlite+pysqlite"),
        echo=settings.echo,
        pool_size=1,
        max_overflow=0,
        connect_args={
            # Made, used and closed in the writer's thread; closed from another only at
            # shutdown.
            "check_same_thread": False,
            # The writer runs its statements on sqlite3 itself, one SQL string per shape of
            # batch (`CompiledSql`): keep every shape prepared (the default keeps 128).
            "cached_statements": 512,
        },
    )
    _setup_sqlite(engine, settings)
    return engine


def _setup_sqlite(engine: Engine, settings: SqlStorageSettings) -> None:
    pragmas = [
        "PRAGMA journal_mode=WAL",
        f"PRAGMA synchronous={settings.sqlite_synchronous}",
        f"PRAGMA busy_timeout={int(settings.busy_timeout_ms)}",
        "PRAGMA foreign_keys=ON",
    ]
    sqlite_connections(engine, pragmas, WRITE_OPTION)


def sqlite_connections(engine: Engine, pragmas: Sequence[str], write_option: str) -> None:
    """Run `pragmas` on every new SQLite connection of `engine`, and let SQLAlchemy, not the
    sqlite3 driver, emit BEGIN: a read then runs in a real transaction (one snapshot), and a
    connection carrying the execution option `write_option` begins with `BEGIN IMMEDIATE`
    (the file's write lock taken up front). The recipe of SQLAlchemy's SQLite docs; the
    client's device store (`chatcore_device_sqlite`) sets its file up the same way."""

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Stop the driver from emitting BEGIN itself (it would skip it for reads and DDL).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            for pragma in pragmas:
                cursor.execute(pragma)
        finally:
            cursor.close()

    def on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get(write_option, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", on_begin)


#: PostgreSQL errors after which a transaction is worth one more try: a deadlock, or a
#: serialization failure.
_RETRY_SQLSTATES = {"40P01", "40001"}


def retryable(exc: DBAPIError) -> bool:
    """True when a transaction the database refused is worth one more try from the start:
    a constraint raced (IntegrityError), or PostgreSQL broke a deadlock or a serialization
    conflict."""
    if isinstance(exc, IntegrityError):
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return sqlstate in _RETRY_SQLSTATES
