"""chatcore_sql: the built-in storage plugin, SQL through SQLAlchemy 2 async.

SQLite (aiosqlite, the embedded default: `sqlite+aiosqlite:///./data/chat.db`) or PostgreSQL
(asyncpg: `postgresql+asyncpg://user@host/db`); `sqlite://` and `postgresql://` URLs are mapped
to those drivers. The schema is managed by Alembic (`chatcore db upgrade`, or automatically at
start with `storage.auto_migrate`, the default).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatcore.hookspecs import hookimpl
from chatcore_sql.settings import SqlStorageSettings
from chatcore_sql.storage import SqlStorage, build_storage

if TYPE_CHECKING:
    import click
    from pydantic import BaseModel

    from chatcore.app import App

__all__ = ["SqlStorage", "SqlStorageSettings", "build_storage"]


@hookimpl
def chatcore_settings_models() -> dict[str, type[BaseModel]]:
    return {"storage": SqlStorageSettings}


@hookimpl
def chatcore_storage(app: App) -> SqlStorage | None:
    return build_storage(app.settings.section("storage", SqlStorageSettings))


@hookimpl
def chatcore_register_commands(cli: click.Group) -> None:
    from chatcore_sql.cli import db

    cli.add_command(db)
