"""What is SQLite-specific in chatcore_device_sqlite: the plugin's hook, connection setup, the
schema version and its upgrades, a second process on the same file, and the full-text index
(checked against its content with FTS5's own integrity check)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import pytest
from anyio.abc import Process

import chatcore_device_sqlite
from chatcore.errors import StartupError
from chatcore.plugins import PluginHost
from chatcore.settings import build_settings
from chatcore.testing.device_store_contract import ME, account, entry, message, room, seqs
from chatcore_device_sqlite import SqliteDeviceStore, schema
from chatcore_device_sqlite.search_query import fts_query

pytestmark = pytest.mark.anyio


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "client.db"


@pytest.fixture
async def store(path: Path) -> AsyncIterator[SqliteDeviceStore]:
    store = SqliteDeviceStore(path)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def read_file(path: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows read from the file by a plain sqlite3 connection: what any SQLite client sees."""
    with closing(sqlite3.connect(path)) as db:
        return db.execute(sql, params).fetchall()


async def fts_is_consistent(store: SqliteDeviceStore) -> None:
    """FTS5's integrity check against the content (the searchable messages): raises when the
    index holds a word the content lacks or lacks one it holds."""
    async with store.engine.begin() as conn:
        await conn.exec_driver_sql(
            "INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)"
        )


# --- the plugin --------------------------------------------------------------------------------


async def test_the_plugin_builds_the_store_from_the_config(tmp_path: Path) -> None:
    host = PluginHost.load(["chatcore_device_sqlite"], entry_points=False, role="client")
    where = tmp_path / "deep" / "folder" / "device.db"
    settings = build_settings({"role": "client", "device_store": {"path": str(where)}})
    # The hook reads nothing of the client but its settings.
    built = host.hook.chatcore_device_store(client=SimpleNamespace(settings=settings))
    assert isinstance(built, SqliteDeviceStore) and built.path == where
    assert chatcore_device_sqlite.chatcore_role == "client"
    assert not where.parent.exists()  # built, not opened: nothing on disk yet
    await built.open()
    try:
        assert where.is_file()  # the folders were made
    finally:
        await built.close()


async def test_a_store_not_open_says_so(path: Path) -> None:
    store = SqliteDeviceStore(path)
    with pytest.raises(RuntimeError, match="not open"):
        await store.list_rooms()
    await store.open()
    await store.close()
    with pytest.raises(RuntimeError, match="not open"):
        await store.add_messages([message("r", 1)], ME)


# --- connections -------------------------------------------------------------------------------


async def test_every_connection_is_set_up_for_sharing(store: SqliteDeviceStore) -> None:
    names = ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
    async with store.engine.connect() as first, store.engine.connect() as second:
        for conn in (first, second):  # two pooled connections, each set up on connect
            found = [(await conn.exec_driver_sql(f"PRAGMA {n}")).scalar() for n in names]
            assert found == ["wal", 1, 5000, 1]  # synchronous 1 is NORMAL


async def test_queries_use_the_indexes(store: SqliteDeviceStore) -> None:
    """History, unread counts and cursors read the (room_id, seq) index, never a whole table:
    their cost does not grow with the messages of other rooms or older pages."""

    async def plan(sql: str, *params: Any) -> str:
        async with store.engine.connect() as conn:
            rows = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)
            return "\n".join(str(row[-1]) for row in rows)

    history = await plan(
        "SELECT * FROM messages WHERE room_id = ? AND seq < ? ORDER BY seq DESC LIMIT 50", "r", 9
    )
    assert "USING INDEX" in history and "room_id=? AND seq<?" in history, history
    assert "TEMP B-TREE" not in history  # read in index order, not sorted afterwards
    rooms_plan = await plan("SELECT * FROM (" + _summaries_sql() + ")")
    assert "SCAN m " not in rooms_plan and "SCAN u" not in rooms_plan, rooms_plan


def _summaries_sql() -> str:
    from chatcore_device_sqlite.rooms import _SUMMARIES

    return _SUMMARIES


# --- schema version and upgrades ----------------------------------------------------------------


async def test_a_new_file_gets_the_newest_schema(store: SqliteDeviceStore, path: Path) -> None:
    assert schema.VERSION >= 1
    assert read_file(path, "PRAGMA user_version") == [(schema.VERSION,)]
    tables = {name for (name,) in read_file(path, "SELECT name FROM sqlite_master")}
    expected = {"account", "rooms", "messages", "messages_fts", "contacts", "invitations"}
    assert expected | {"outbox", "settings", "searchable_messages"} <= tables


async def test_a_file_is_upgraded_step_by_step_keeping_its_data(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SqliteDeviceStore(path)
    await store.open()
    await store.save_rooms([room("r")])
    await store.add_messages([message("r", 1, body="kept through the upgrade")], ME)
    await store.close()

    # A later release appends a step; opening the file runs it once, in place.
    step = ["ALTER TABLE rooms ADD COLUMN muted INTEGER NOT NULL DEFAULT 0"]
    monkeypatch.setattr(schema, "UPGRADES", [*schema.UPGRADES, step])
    monkeypatch.setattr(schema, "VERSION", len(schema.UPGRADES))
    upgraded = SqliteDeviceStore(path)
    await upgraded.open()
    try:
        assert read_file(path, "PRAGMA user_version") == [(schema.VERSION,)]
        assert read_file(path, "SELECT id, muted FROM rooms") == [("r", 0)]
        assert [m.body for m in await upgraded.search("upgrade")] == ["kept through the upgrade"]
    finally:
        await upgraded.close()
    reopened = SqliteDeviceStore(path)
    await reopened.open()  # at the newest version: nothing runs again
    await reopened.close()


async def test_a_file_newer_than_the_code_is_refused(path: Path) -> None:
    store = SqliteDeviceStore(path)
    await store.open()
    await store.close()
    with closing(sqlite3.connect(path)) as db:
        db.execute(f"PRAGMA user_version = {schema.VERSION + 1}")
    newer = SqliteDeviceStore(path)
    with pytest.raises(StartupError, match=f"schema version {schema.VERSION + 1}, newer"):
        await newer.open()
    await newer.close()  # safe after a failed open
    assert read_file(path, "PRAGMA user_version") == [(schema.VERSION + 1,)]  # untouched


async def test_stores_opening_a_new_file_together_all_open(tmp_path: Path) -> None:
    """Processes of one device starting at once on a file that does not exist yet: switching
    a new file to WAL refuses a racing connection at once ("database is locked", no busy
    wait), so the store makes the switch alone and retried. Every store opens, the schema is
    made once."""
    for attempt in range(16):  # the race is narrow: give it several new files
        path = tmp_path / f"attempt-{attempt}" / "client.db"
        stores = [SqliteDeviceStore(path) for _ in range(6)]
        try:
            async with anyio.create_task_group() as tg:
                for store in stores:
                    tg.start_soon(store.open)
            await stores[0].add_messages([message("r", 1)], ME)
            assert [seqs(await s.history("r")) for s in stores] == [[1]] * 6
            assert read_file(path, "PRAGMA user_version") == [(schema.VERSION,)]
        finally:
            for store in stores:
                await store.close()


# --- another process on the same file --------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from chatcore_device_sqlite import SqliteDeviceStore
    from chatcore.testing.device_store_contract import ME, entry, message

    async def main(path):
        store = SqliteDeviceStore(path)
        await store.open()
        print("open", flush=True)
        sys.stdin.readline()  # the parent is about to write too: go
        for batch in range(20):
            seqs = range(1001 + batch * 10, 1011 + batch * 10)
            await store.add_messages([message("shared", s, sender="u-push") for s in seqs], ME)
            await store.outbox_add(entry(f"child-{batch}", "shared"))
        await store.patch_settings({"child": True})
        await store.close()

    asyncio.run(main(sys.argv[1]))
    """
)


async def test_a_second_process_writes_while_this_one_does(
    store: SqliteDeviceStore, path: Path
) -> None:
    """The app and its push handler: two processes write to one file at the same time; every
    write of both lands, and each sees the other's."""
    await store.save_account(account())
    await store.save_rooms([room("shared")])
    process: Process = await anyio.open_process([sys.executable, "-c", CHILD, str(path)])
    try:
        assert process.stdout is not None and process.stdin is not None
        with anyio.fail_after(30):
            assert (await process.stdout.receive()).startswith(b"open")
            await process.stdin.send(b"go\n")
            for batch in range(20):
                seqs_here = range(1 + batch * 50, 51 + batch * 50)
                await store.add_messages([message("shared", s) for s in seqs_here], ME)
                await store.outbox_add(entry(f"app-{batch}", "shared"))
            await store.patch_settings({"app": True})
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    stored = seqs(await store.history("shared", limit=10_000))
    assert sorted(stored) == [*range(1, 1001), *range(1001, 1201)]
    assert await store.cursors() == {"shared": 1200}
    outbox = await store.outbox()
    assert len(outbox) == 40 and len({e.position for e in outbox}) == 40
    assert {e.ref for e in outbox} == {f"{who}-{i}" for who in ("app", "child") for i in range(20)}
    assert await store.get_settings() == {"app": True, "child": True}
    summary = await store.get_room("shared")
    assert summary is not None and summary.unread == 1200  # the child's messages are unread too


# --- cancellation ------------------------------------------------------------------------------


async def test_a_cancelled_call_neither_half_writes_nor_keeps_the_lock(path: Path) -> None:
    """A caller cancelled in the middle of a write (an engine shutting down, a UI task
    dropped) gets its CancelledError, the transaction still ends (committed whole), and the
    file's write lock is free for the other process at once."""
    store = SqliteDeviceStore(path)
    other = SqliteDeviceStore(path, busy_timeout_ms=2000)  # a lock left behind: fails in 2 s
    await store.open()
    await other.open()
    try:
        await store.save_rooms([room("r")])
        for k in range(30):
            batch = [message("r", s) for s in range(k * 100 + 1, k * 100 + 101)]
            task = asyncio.create_task(store.add_messages(batch, ME))
            for _ in range(k):  # cancelled at another point of the call each time
                await asyncio.sleep(0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            assert await other.set_read("r", k + 1) == k + 1
    finally:
        await store.close()  # waits for the transactions still running
    stored = set(seqs(await other.history("r", limit=10_000)))
    await other.close()
    for k in range(30):
        sent = set(range(k * 100 + 1, k * 100 + 101))
        assert sent <= stored or not sent & stored, f"batch {k} was half stored"
    assert len(stored) >= 2900, "only a call cancelled before it began stores nothing"


# --- the stored values --------------------------------------------------------------------------


async def test_a_message_id_stored_under_another_seq_is_not_new(
    store: SqliteDeviceStore,
) -> None:
    """Message ids are unique: a second message with a stored id (a server bug, or a forged
    frame) is not stored, and not reported as new."""
    await store.save_rooms([room("r")])
    first = message("r", 1)
    await store.add_messages([first], ME)
    impostor = first.model_copy(update={"seq": 2, "body": "impostor"})
    batch = await store.add_messages([impostor, message("r", 3)], ME)
    assert seqs(batch.new) == [3]
    assert seqs(await store.history("r")) == [3, 1]
    assert await store.cursors() == {"r": 1}


async def test_rows_are_plain_sqlite_values(store: SqliteDeviceStore, path: Path) -> None:
    """Another tool reading the file finds plain values: JSON members, 0/1 flags, integers."""
    await store.save_rooms([room("r", ME, "u-bob")])
    await store.add_messages([message("r", 1, body="", deleted=True)], ME)
    await store.outbox_add(entry("e1", "r"))
    assert read_file(path, "SELECT member_ids, synced_seq FROM rooms") == [('["u-me","u-bob"]', 1)]
    assert read_file(path, "SELECT deleted, typeof(deleted), seq FROM messages") == [
        (1, "integer", 1)
    ]
    assert read_file(path, "SELECT transmitted, attempts, position FROM outbox") == [(0, 0, 1)]


# --- the search index --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "query"),
    [
        ("hello", '"hello"'),
        ("  hello   world ", '"hello" "world"'),
        ("hel*", '"hel"*'),
        ("hel**", '"hel"*'),
        ('say "hi"', '"say" """hi"""'),
        ("NEAR(a b)", '"NEAR(a" "b)"'),
        ("a -- b", '"a" "b"'),
        ("don't", '"don\'t"'),
        ("", None),
        ("*", None),
        ("?! -- ...", None),
        ("_", None),
    ],
)
def test_search_words_become_fts_strings(text: str, query: str | None) -> None:
    assert fts_query(text) == query


async def test_the_index_follows_every_change(store: SqliteDeviceStore) -> None:
    """After inserts, duplicates, edits, deletions, a forgotten room and an account switch,
    the index holds exactly the searchable messages."""
    await store.save_account(account())
    await store.save_rooms([room("a"), room("b")])
    await store.add_messages([message("a", s, body=f"apple {s}") for s in range(1, 30)], ME)
    await store.add_messages([message("a", s, body="ignored duplicate") for s in range(1, 5)], ME)
    await store.add_messages([message("b", 1, body="banana"), message("b", 2, body="")], ME)
    await fts_is_consistent(store)
    assert len(await store.search("apple")) == 29
    assert await store.search("ignored") == []

    await store.update_message(message("a", 1, body="cherry", edited_ts=5))
    await store.update_message(message("a", 2, body="", deleted=True, edited_ts=6))
    await store.update_message(message("a", 2, body="", deleted=True, edited_ts=7))  # again
    await store.update_message(message("b", 2, body="late text", edited_ts=8))  # was empty
    await fts_is_consistent(store)
    assert len(await store.search("apple")) == 27
    assert seqs(await store.search("cherry")) == [1]
    assert seqs(await store.search("late")) == [2]

    await store.forget_room("a")
    await fts_is_consistent(store)
    assert await store.search("apple") == [] and await store.search("cherry") == []
    assert seqs(await store.search("banana")) == [1]

    await store.save_account(account("u-someone-else"))
    await fts_is_consistent(store)
    assert await store.search("banana") == []
    assert await store.search("late") == []


async def test_search_handles_many_matches_and_long_text(store: SqliteDeviceStore) -> None:
    await store.save_rooms([room("r")])
    long_body = " ".join(f"word{i}" for i in range(2000)) + " needle"
    await store.add_messages(
        [message("r", s, body=f"common text {s}") for s in range(1, 501)]
        + [message("r", 501, body=long_body)],
        ME,
    )
    found = await store.search("common", limit=10)
    assert seqs(found) == list(range(500, 490, -1))  # the newest ten
    assert seqs(await store.search("needle")) == [501]
    assert seqs(await store.search("word1999 needle")) == [501]
    assert seqs(await store.search("x" * 10_000)) == []


async def test_a_file_that_cannot_be_opened_is_one_clear_error(tmp_path: Path) -> None:
    not_a_database = tmp_path / "notes.txt"
    not_a_database.write_text("these are not the messages you are looking for\n" * 100)
    blocked = tmp_path / "a-file" / "client.db"
    (tmp_path / "a-file").write_text("a file where the folder should be")
    for path, words in ((not_a_database, "not a database"), (blocked, "File exists")):
        store = SqliteDeviceStore(path)
        with pytest.raises(StartupError, match=f"cannot open the device store {path}: .*{words}"):
            await store.open()
        await store.close()
