"""Admin commands never change a schema: only `chatcore serve` (and `chatcore db upgrade`)
migrate. Run as real processes, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory
from cli_support import chatcore_cli, node_config, one_error_line
from sqlalchemy import create_engine

from chatcore.testing.services import postgres_fetch, postgres_storage_section
from chatcore_sql.migrate import alembic_config, current_revision


def sqlite_tables(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return [name for (name,) in rows]


def test_admin_commands_on_a_missing_sqlite_database_create_nothing(tmp_path):
    config = node_config(tmp_path)
    for args, stdin in [
        (("user", "list"), None),
        (("user", "create", "alice", "--password-stdin"), "correct horse battery\n"),
        (("stickers", "import", str(tmp_path)), None),  # a plugin command (with_app)
    ]:
        line = one_error_line(chatcore_cli(*args, "--config", str(config), stdin=stdin))
        assert line.startswith(f"error: SQLite database {tmp_path / 'chat.db'} does not exist;")
        assert line.endswith(f"run `chatcore db upgrade --config {config}`")
    assert not (tmp_path / "chat.db").exists()


def test_user_list_on_an_empty_sqlite_database_creates_no_table(tmp_path):
    config = node_config(tmp_path)
    (tmp_path / "chat.db").touch()
    line = one_error_line(chatcore_cli("user", "list", "--config", str(config)))
    assert "has no chatcore schema" in line and "chatcore db upgrade --config" in line
    assert sqlite_tables(tmp_path / "chat.db") == []


def test_user_list_on_an_older_schema_leaves_it_as_it_is(tmp_path):
    config = node_config(tmp_path)
    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_revision(script.get_current_head())
    assert head is not None and isinstance(head.down_revision, str)
    older = head.down_revision
    engine = create_engine(f"sqlite:///{tmp_path / 'chat.db'}")
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), older)
        line = one_error_line(chatcore_cli("user", "list", "--config", str(config)))
        assert f"is at schema revision {older};" in line
        assert f"needs schema revision {head.revision}" in line
        with engine.connect() as conn:
            assert current_revision(conn) == older
    finally:
        engine.dispose()


def test_user_list_on_an_empty_postgres_schema_creates_nothing(tmp_path):
    with postgres_storage_section(prefix="cli") as storage:
        config = node_config(tmp_path, storage=storage)
        line = one_error_line(chatcore_cli("user", "list", "--config", str(config)))
        assert "PostgreSQL at" in line and "has no chatcore schema" in line
        assert line.endswith(f"run `chatcore db upgrade --config {config}`")
        schemas, tables = asyncio.run(schema_and_tables(storage["url"], storage["schema"]))
        assert (schemas, tables) == (0, 0)

        upgraded = chatcore_cli("db", "upgrade", "--config", str(config))
        assert upgraded.returncode == 0, upgraded.stderr
        listed = chatcore_cli("user", "list", "--config", str(config))
        assert listed.returncode == 0, listed.stderr


async def schema_and_tables(url: str, schema: str) -> tuple[int, int]:
    """How many schemas named `schema` exist (0 or 1), and how many tables are in it."""
    schemas = await postgres_fetch(
        url, "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1", schema
    )
    tables = await postgres_fetch(
        url, "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1", schema
    )
    return schemas[0][0], tables[0][0]
