"""`chatcore db ...`: schema commands of the SQL storage.

Alembic and the storage are imported when a command runs: every `chatcore` command (`--help`
too) loads this module to list its commands.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import click

from chatcore.cli import CommandError, config_option, load_app
from chatcore.errors import StartupError
from chatcore_sql.settings import SqlStorageSettings

if TYPE_CHECKING:
    from chatcore_sql.storage import SqlStorage

T = TypeVar("T")


@click.group()
def db() -> None:
    """Database schema of the SQL storage (chatcore_sql)."""


@db.command()
@config_option
def upgrade(config_path: str | None) -> None:
    """Migrate the database to the newest schema revision."""
    from chatcore_sql import migrate

    async def run(storage: SqlStorage) -> tuple[str | None, str | None]:
        return await migrate.upgrade(storage.engine, storage.settings.schema)

    before, after = _run(config_path, run)
    if before == after:
        click.echo(f"database schema already at {after or 'none'} (head)")
    else:
        click.echo(f"database schema upgraded: {before or 'none'} -> {after} (head)")


@db.command()
@config_option
def current(config_path: str | None) -> None:
    """Show the database's schema revision."""
    from chatcore_sql import migrate

    async def run(storage: SqlStorage) -> str | None:
        return await migrate.current(storage.engine)

    found = _run(config_path, run)
    wanted = migrate.head()
    state = "(head)" if found == wanted else f"(head is {wanted}: run `chatcore db upgrade`)"
    click.echo(f"{found or 'none'} {state}")


def _run(config_path: str | None, action: Callable[[SqlStorage], Awaitable[T]]) -> T:
    """Build the storage from the config (without starting the app) and run `action`."""
    storage = _storage(config_path)

    async def main() -> T:
        from chatcore_sql.engine import reach

        await storage.connect()  # not start(): these commands are how an operator migrates
        try:
            await reach(storage.engine, storage.url)  # out of reach: one line, not a traceback
            return await action(storage)
        finally:
            await storage.close()

    try:
        return asyncio.run(main())
    except StartupError as exc:
        raise CommandError(str(exc)) from None
    except Exception as exc:
        raise CommandError(_one_line(exc)) from exc


def _storage(config_path: str | None) -> SqlStorage:
    from chatcore_sql.storage import build_storage  # the CLI imports the engine when it runs

    app = load_app(config_path)  # a bad config: one line per bad key, exit 2
    try:
        settings = app.settings.section("storage", SqlStorageSettings)
        storage = build_storage(settings)
    except Exception as exc:
        raise CommandError(_one_line(exc)) from exc
    if storage is None:
        raise CommandError(f"storage.url {settings.url!r} is not a SQLite or PostgreSQL URL")
    return storage


def _one_line(exc: BaseException) -> str:
    # A driver error reads better than SQLAlchemy's wrapper (which appends the SQL and a link).
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip() or type(exc).__name__
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())
