"""The media cache contract on chatcore_media_cache (a folder with an SQLite index), plus what is
its own: the plugin's hook, where files go, the index's mode, damaged and orphaned files, a
restart, and two real processes sharing one folder."""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import anyio
import pytest

from chatcore.client.interfaces import MediaCache
from chatcore.plugins import PluginHost
from chatcore.settings import build_settings
from chatcore.testing.media_cache_contract import (
    MAX_BYTES,
    MediaCacheContract,
    content_of,
    contract_settings,
    put,
)
from chatcore_media_cache.disk import FILES_DIR, INDEX_NAME, ORPHAN_AGE_SECONDS, DiskMediaCache

pytestmark = pytest.mark.anyio


async def opened(folder: Path) -> DiskMediaCache:
    cache = DiskMediaCache(contract_settings(folder))
    await cache.open()
    return cache


class TestDiskMediaCache(MediaCacheContract):
    @pytest.fixture
    async def cache(self, tmp_path: Path) -> AsyncIterator[DiskMediaCache]:
        cache = await opened(tmp_path / "cache")
        try:
            yield cache
        finally:
            await cache.close()

    @pytest.fixture
    async def other_cache(
        self, tmp_path: Path, cache: DiskMediaCache
    ) -> AsyncIterator[DiskMediaCache]:
        other = await opened(tmp_path / "cache")
        try:
            yield other
        finally:
            await other.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def cache(tmp_path: Path) -> AsyncIterator[DiskMediaCache]:
    cache = await opened(tmp_path / "cache")
    try:
        yield cache
    finally:
        await cache.close()


def test_the_client_role_builds_the_cache_from_its_section(tmp_path: Path) -> None:
    host = PluginHost.load(role="client")
    settings = build_settings(
        {"role": "client", "media_cache": {"path": str(tmp_path / "m"), "max_bytes": 5000}}
    )
    built = host.hook.chatcore_media_cache(client=SimpleNamespace(settings=settings))
    assert isinstance(built, MediaCache)
    assert isinstance(built, DiskMediaCache)
    assert built.settings.path == str(tmp_path / "m")
    assert built.settings.max_bytes == 5000


async def test_files_live_in_the_folder_named_by_a_hash(
    cache: DiskMediaCache, tmp_path: Path
) -> None:
    files = (tmp_path / "cache" / FILES_DIR).resolve()
    for key in ("../../../outside", "/tmp/absolute", "m1@thumb256"):
        kept = await put(cache, key, b"data")
        path = Path(kept.path)
        assert path.is_relative_to(files), path
        assert path.parent.parent == files
        assert all(c in "0123456789abcdef-" for c in path.name), path.name
    assert not (tmp_path / "outside").exists()


async def test_the_index_is_sqlite_in_wal_mode(cache: DiskMediaCache, tmp_path: Path) -> None:
    await put(cache, "m1", b"data", etag='"e"')
    index = tmp_path / "cache" / INDEX_NAME
    with sqlite3.connect(index) as db:  # a second reader, as another process would be
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        row = db.execute("SELECT key, size, content_type, etag FROM entries").fetchone()
    assert row == ("m1", 4, "image/png", '"e"')


async def test_a_damaged_file_is_not_served(cache: DiskMediaCache) -> None:
    kept = await put(cache, "m1", b"the whole file")
    await anyio.Path(kept.path).write_bytes(b"the wh")  # cut short (a crash, a full disk)
    assert await cache.get("m1") is None
    assert await cache.usage() == 0
    assert not await anyio.Path(kept.path).exists()


async def test_the_cache_survives_a_restart(tmp_path: Path) -> None:
    first = await opened(tmp_path / "cache")
    kept = await put(first, "m1", b"kept across restarts", etag='"1"')
    await first.close()
    second = await opened(tmp_path / "cache")
    try:
        got = await second.get("m1")
        assert got is not None and got.etag == '"1"' and got.fetched_ts == kept.fetched_ts
        assert await content_of(got) == b"kept across restarts"
    finally:
        await second.close()


async def test_open_deletes_old_files_no_entry_names(tmp_path: Path) -> None:
    first = await opened(tmp_path / "cache")
    kept = await put(first, "m1", b"indexed")
    await first.close()
    folder = Path(kept.path).parent
    old_orphan, young_orphan = folder / ("0" * 64 + "-00000000"), folder / ("1" * 64 + "-00000000")
    old_orphan.write_bytes(b"left by a crash")
    young_orphan.write_bytes(b"maybe another process's put, not indexed yet")
    long_ago = time.time() - ORPHAN_AGE_SECONDS - 60
    os.utime(old_orphan, (long_ago, long_ago))
    os.utime(kept.path, (long_ago, long_ago))

    second = await opened(tmp_path / "cache")
    try:
        assert not old_orphan.exists()
        assert young_orphan.exists()
        assert await second.get("m1") is not None
    finally:
        await second.close()


#: Run by another Python process: put 15 files of 90 bytes into the cache at argv[1].
OTHER_PROCESS = """
import sys, anyio
from chatcore_media_cache.disk import DiskMediaCache
from chatcore.testing.media_cache_contract import contract_settings

async def main():
    cache = DiskMediaCache(contract_settings(sys.argv[1]))
    await cache.open()
    for i in range(15):
        assert await cache.put(f"p{i}", b"p" * 90, content_type="a/b", etag=None) is not None
        await cache.get(f"p{i}")
    await cache.close()

anyio.run(main)
"""


async def test_two_processes_share_one_folder(cache: DiskMediaCache, tmp_path: Path) -> None:
    folder = str(tmp_path / "cache")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

    async def other_process() -> None:
        await anyio.run_process([sys.executable, "-c", OTHER_PROCESS, folder], env=env)

    async def this_process() -> None:
        for i in range(15):
            await put(cache, f"q{i}", b"q" * 90)
            await cache.get(f"q{i}")

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(other_process)
            tg.start_soon(this_process)
    usage = await cache.usage()
    assert usage <= MAX_BYTES
    kept = [await cache.get(f"{p}{i}") for p in "pq" for i in range(15)]
    assert sum(k.size for k in kept if k is not None) == usage
    for k in kept:
        if k is not None:
            assert await content_of(k) == k.key[0].encode() * 90
