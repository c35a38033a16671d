"""Schema migrations, run by Alembic programmatically (no alembic.ini needed at runtime).

`upgrade` brings a database to the newest revision in one transaction: on PostgreSQL under a
transaction-scoped advisory lock (several nodes may start at once: one migrates, the others wait
and then find nothing to do), on SQLite under `BEGIN IMMEDIATE` (the database's write lock).
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from chatcore.errors import StartupError
from chatcore_sql.engine import writer

MIGRATIONS = Path(__file__).parent / "migrations"
#: Our own version table, so a database shared with another Alembic-managed app stays apart.
VERSION_TABLE = "chatcore_sql_version"
#: What a database not at head needs; `SqlStorage` adds the config file when there is one.
UPGRADE = "run `chatcore db upgrade`"


class SchemaNotReady(StartupError):
    """The database is not at the revision this code needs, and may not be migrated now
    (`storage.auto_migrate` is off, or an admin command started the app: `app.may_migrate`)."""


def alembic_config(connection: Connection | None = None) -> Config:
    """A Config pointing into this package; env.py runs on `connection` when given."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = connection
    return config


def head() -> str | None:
    """The newest revision shipped with this code."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at (None for an empty database)."""
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


async def upgrade(engine: AsyncEngine, schema: str | None = None) -> tuple[str | None, str | None]:
    """Migrate to head; return (revision before, revision after)."""
    async with writer(engine).begin() as conn:
        return await conn.run_sync(_upgrade, schema)


async def current(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(current_revision)


async def ensure_at_head(
    engine: AsyncEngine | None, database: str = "the database", advice: str = UPGRADE
) -> None:
    """Raise SchemaNotReady unless the database is at head (when it may not be migrated).

    `engine` None stands for a database that does not exist yet (a SQLite file not made);
    `database` names it in the message, `advice` says what to do.
    """
    found = await current(engine) if engine is not None else None
    # Reading the revision scripts is file I/O: keep it off the event loop.
    wanted = await asyncio.to_thread(head)
    if found != wanted:
        if engine is None:
            state = "does not exist"
        else:
            state = "has no chatcore schema" if found is None else f"is at schema revision {found}"
        raise SchemaNotReady(
            f"{database} {state}; this version of chatcore_sql needs schema revision {wanted}: "
            f"{advice}"
        )


def _upgrade(connection: Connection, schema: str | None) -> tuple[str | None, str | None]:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(schema)})
        if schema:
            # After the lock: concurrent CREATE SCHEMA IF NOT EXISTS can still collide.
            quoted = connection.dialect.identifier_preparer.quote_identifier(schema)
            connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {quoted}"))
    before = current_revision(connection)
    command.upgrade(alembic_config(connection), "head")
    return before, current_revision(connection)


def _lock_key(schema: str | None) -> int:
    """A stable signed 64-bit advisory lock key, one per schema."""
    digest = hashlib.sha256(f"chatcore_sql.migrate:{schema or ''}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
