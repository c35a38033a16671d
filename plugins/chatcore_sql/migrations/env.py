"""Alembic environment of chatcore_sql.

At runtime `chatcore_sql.migrate` passes an open connection (inside its own transaction) in
`config.attributes["connection"]`. When developers run the `alembic` command themselves (for
example `alembic revision --autogenerate` with an alembic.ini whose `script_location` points
here and whose `sqlalchemy.url` is the database), an async engine is made from that URL.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from chatcore_sql.migrate import VERSION_TABLE
from chatcore_sql.tables import described, metadata

config = context.config


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        # SQLite cannot ALTER most things: future migrations use batch mode there.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=described,  # the search index of migration 0012 (see tables.described)
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_from_url(url: str) -> None:
    from chatcore_sql.engine import create_engine, writer
    from chatcore_sql.settings import SqlStorageSettings, async_url

    parsed = async_url(url)
    if parsed is None:
        raise SystemExit(f"sqlalchemy.url {url!r} is not a SQLite or PostgreSQL URL")
    engine = create_engine(parsed, SqlStorageSettings(url=url))
    try:
        async with writer(engine).begin() as conn:
            await conn.run_sync(run_on)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
elif config.attributes.get("connection") is not None:
    run_on(config.attributes["connection"])
else:
    asyncio.run(run_from_url(config.get_main_option("sqlalchemy.url") or ""))
