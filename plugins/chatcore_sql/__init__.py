"""chatcore_sql: the built-in storage plugin, SQL through SQLAlchemy 2 async.

SQLite (aiosqlite, the embedded default: `sqlite+aiosqlite:///./data/chat.db`) or PostgreSQL
(asyncpg: `postgresql+asyncpg://user@host/db`); `sqlite://` and `postgresql://` URLs are mapped
to those drivers. The schema is managed by Alembic (`chatcore db upgrade`, or automatically at
start with `storage.auto_migrate`, the default).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatcore.extras import Extra
from chatcore.hookspecs import hookimpl
from chatcore.lazy import lazy_exports
from chatcore_sql.settings import SqlStorageSettings

if TYPE_CHECKING:
    import click
    from pydantic import BaseModel

    from chatcore.server.app import App
    from chatcore_sql.storage import SqlStorage, build_storage

chatcore_role = "server"  # the role it serves (chatcore.roles)

__all__ = ["EXTRA", "SqlStorage", "SqlStorageSettings", "build_storage"]

#: What a PostgreSQL URL needs (SQLite comes with the base install).
EXTRA = Extra("postgres", "PostgreSQL storage", {"asyncpg": "asyncpg"})

# SQLAlchemy and Alembic load when storage is built: `chatcore --help` loads this package too.
__getattr__ = lazy_exports(
    __name__, dict.fromkeys(("SqlStorage", "build_storage"), "chatcore_sql.storage")
)


@hookimpl
def chatcore_settings_models() -> dict[str, type[BaseModel]]:
    return {"storage": SqlStorageSettings}


@hookimpl
def chatcore_storage(app: App) -> SqlStorage | None:
    from chatcore_sql.storage import build_storage

    settings = app.settings.section("storage", SqlStorageSettings)
    return build_storage(settings, may_migrate=app.may_migrate, config=app.source)


@hookimpl
def chatcore_register_commands(cli: click.Group) -> None:
    from chatcore_sql.cli import db

    cli.add_command(db)
