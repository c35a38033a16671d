"""The media cache contract: what every `chatcore.client.interfaces.MediaCache` must do.

A backend runs this suite by subclassing `MediaCacheContract` and providing a fixture `cache`
that yields an opened, empty cache holding at most `MAX_BYTES` in all and `MAX_FILE_BYTES` per
file (`contract_settings(folder)` are such `[media_cache]` settings), and closes it afterwards::

    import pytest
    from chatcore.testing.media_cache_contract import MediaCacheContract, contract_settings

    class TestMyCache(MediaCacheContract):
        @pytest.fixture
        async def cache(self, tmp_path):
            cache = MyCache(contract_settings(tmp_path / "cache"))
            await cache.open()
            yield cache
            await cache.close()

A backend that several processes may share (the app and its push handler on one folder) also
overrides `other_cache`: a second opened cache on the same data, with its own connection; the
sharing tests then run, and are skipped otherwise.

The tests are async and run on anyio's pytest plugin (the `anyio_backend` fixture comes with
this class).
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from chatcore.client.interfaces import MediaCache
from chatcore.client.models import CachedFile
from chatcore.clock import now_ms
from chatcore.settings import MediaCacheSettings

__all__ = ["MAX_BYTES", "MAX_FILE_BYTES", "MediaCacheContract", "contract_settings"]

#: The whole cache's cap in the contract's caches.
MAX_BYTES = 1000
#: The per-file cap in the contract's caches.
MAX_FILE_BYTES = 400
#: One byte over the per-file cap.
TOO_LARGE = b"x" * (MAX_FILE_BYTES + 1)


def contract_settings(folder: str | Path) -> MediaCacheSettings:
    """`[media_cache]` settings with the contract's caps, the cache in `folder`."""
    return MediaCacheSettings(path=str(folder), max_bytes=MAX_BYTES, max_file_bytes=MAX_FILE_BYTES)


async def content_of(cached: CachedFile) -> bytes:
    return await anyio.Path(cached.path).read_bytes()


async def exists(path: str) -> bool:
    return await anyio.Path(path).exists()


async def next_millisecond(after: int) -> None:
    """Wait until the wall clock's millisecond is past `after` (timestamps can then differ)."""
    with anyio.fail_after(1):
        while now_ms() <= after:  # noqa: ASYNC110 (the clock sends no event)
            await anyio.sleep(0.001)


async def put(cache: MediaCache, key: str, data: bytes, etag: str | None = None) -> CachedFile:
    """Put a file the cache must keep."""
    kept = await cache.put(key, data, content_type="image/png", etag=etag)
    assert kept is not None, f"{key}: {len(data)} bytes were not kept"
    return kept


class MediaCacheContract:
    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    @pytest.fixture
    def other_cache(self) -> MediaCache | None:
        """A second cache on the same data as `cache`, for backends that share (None: skip)."""
        return None

    # --- keeping and reading -------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_nothing_is_cached_at_first(self, cache: MediaCache) -> None:
        assert isinstance(cache, MediaCache)
        assert await cache.get("m1") is None
        assert await cache.usage() == 0
        await cache.touch("m1", fetched=True)  # harmless for a key not cached
        await cache.remove("m1")
        assert await cache.get("m1") is None

    @pytest.mark.anyio
    async def test_put_then_get(self, cache: MediaCache) -> None:
        before = now_ms()
        kept = await put(cache, "m1", b"hello", etag='"abc"')
        after = now_ms()
        assert (kept.key, kept.size, kept.content_type) == ("m1", 5, "image/png")
        assert kept.etag == '"abc"'
        assert before <= kept.fetched_ts <= after
        assert before <= kept.accessed_ts <= after
        assert await content_of(kept) == b"hello"

        got = await cache.get("m1")
        assert got is not None
        assert (got.key, got.path, got.size, got.content_type, got.etag, got.fetched_ts) == (
            kept.key, kept.path, kept.size, kept.content_type, kept.etag, kept.fetched_ts,
        )  # fmt: skip
        assert got.accessed_ts >= kept.accessed_ts
        assert await content_of(got) == b"hello"
        assert await cache.usage() == 5

    @pytest.mark.anyio
    async def test_a_file_without_etag(self, cache: MediaCache) -> None:
        await put(cache, "m1", b"no etag")
        got = await cache.get("m1")
        assert got is not None and got.etag is None

    @pytest.mark.anyio
    async def test_an_empty_file(self, cache: MediaCache) -> None:
        await put(cache, "m1", b"")
        got = await cache.get("m1")
        assert got is not None and got.size == 0 and await content_of(got) == b""

    @pytest.mark.anyio
    async def test_keys_are_separate(self, cache: MediaCache) -> None:
        await put(cache, "m1", b"original")
        await put(cache, "m1@thumb256", b"thumb")
        original, thumb = await cache.get("m1"), await cache.get("m1@thumb256")
        assert original is not None and thumb is not None
        assert await content_of(original) == b"original"
        assert await content_of(thumb) == b"thumb"
        assert await cache.usage() == len(b"original") + len(b"thumb")

    @pytest.mark.anyio
    async def test_keys_never_become_paths(self, cache: MediaCache) -> None:
        """Keys come from the server: none may lead a file out of the cache, or clash."""
        keys = ["../../escape", "/etc/passwd", "a/b\\c", "nul\x00byte", "ünïcødé 📎", ".", ""]
        paths = []
        for i, key in enumerate(keys):
            kept = await put(cache, key, bytes([i]) * 10)
            assert ".." not in Path(kept.path).parts
            assert "escape" not in kept.path and "passwd" not in kept.path
            paths.append(kept.path)
        assert len(set(paths)) == len(keys)
        for i, key in enumerate(keys):
            got = await cache.get(key)
            assert got is not None and await content_of(got) == bytes([i]) * 10, key

    # --- touch, remove, replace ----------------------------------------------------------------

    @pytest.mark.anyio
    async def test_get_marks_the_file_accessed(self, cache: MediaCache) -> None:
        kept = await put(cache, "m1", b"x")
        await next_millisecond(kept.accessed_ts)
        got = await cache.get("m1")
        assert got is not None
        assert got.accessed_ts > kept.accessed_ts
        assert got.fetched_ts == kept.fetched_ts  # viewing is not revalidating

    @pytest.mark.anyio
    async def test_touch_fetched_marks_the_file_revalidated(self, cache: MediaCache) -> None:
        kept = await put(cache, "m1", b"x")
        await next_millisecond(kept.fetched_ts)
        await cache.touch("m1")
        got = await cache.get("m1")
        assert got is not None and got.fetched_ts == kept.fetched_ts
        await cache.touch("m1", fetched=True)
        got = await cache.get("m1")
        assert got is not None and got.fetched_ts > kept.fetched_ts

    @pytest.mark.anyio
    async def test_remove(self, cache: MediaCache) -> None:
        kept = await put(cache, "m1", b"gone soon")
        await put(cache, "m2", b"stays")
        await cache.remove("m1")
        assert await cache.get("m1") is None
        assert not await exists(kept.path), "the file is deleted"
        assert await cache.usage() == len(b"stays")
        await cache.remove("m1")  # removing again is harmless

    @pytest.mark.anyio
    async def test_put_replaces_the_older_copy(self, cache: MediaCache) -> None:
        first = await put(cache, "m1", b"first version, longer", etag='"1"')
        second = await put(cache, "m1", b"second", etag='"2"')
        got = await cache.get("m1")
        assert got is not None
        assert (got.size, got.etag) == (6, '"2"')
        assert await content_of(got) == b"second"
        assert await content_of(second) == b"second"
        assert await cache.usage() == 6, "the older copy no longer counts"
        if first.path != second.path:
            assert not await exists(first.path), "the older copy's file is deleted"

    # --- caps and eviction ---------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_a_file_over_the_per_file_cap_is_not_kept(self, cache: MediaCache) -> None:
        assert await cache.put("big", TOO_LARGE, content_type="a/b", etag=None) is None
        assert await cache.get("big") is None
        assert await cache.usage() == 0
        at_cap = await put(cache, "at-cap", b"x" * MAX_FILE_BYTES)
        assert at_cap.size == MAX_FILE_BYTES

    @pytest.mark.anyio
    async def test_a_new_version_over_the_cap_drops_the_older_copy(self, cache: MediaCache) -> None:
        """The server's file changed and the new one is too large to keep: the cached copy is
        outdated, so it must not be shown again."""
        await put(cache, "m1", b"small old version")
        assert await cache.put("m1", TOO_LARGE, content_type="a/b", etag=None) is None
        assert await cache.get("m1") is None
        assert await cache.usage() == 0

    @pytest.mark.anyio
    async def test_eviction_drops_the_least_recently_accessed(self, cache: MediaCache) -> None:
        a = await put(cache, "a", b"a" * 300)
        b = await put(cache, "b", b"b" * 300)
        await put(cache, "c", b"c" * 300)
        assert await cache.get("a") is not None  # a is now more recent than b
        await put(cache, "d", b"d" * 300)  # 1200 bytes: one file must go
        assert await cache.get("b") is None
        assert not await exists(b.path), "an evicted file is deleted"
        for key in ("a", "c", "d"):
            assert await cache.get(key) is not None, key
        assert await exists(a.path)
        assert await cache.usage() == 900

    @pytest.mark.anyio
    async def test_touch_counts_as_an_access(self, cache: MediaCache) -> None:
        await put(cache, "a", b"a" * 300)
        await put(cache, "b", b"b" * 300)
        await put(cache, "c", b"c" * 300)
        await cache.touch("a")
        await put(cache, "d", b"d" * 300)
        assert await cache.get("b") is None
        assert await cache.get("a") is not None

    @pytest.mark.anyio
    async def test_eviction_drops_as_many_as_needed(self, cache: MediaCache) -> None:
        for key in "abcde":
            await put(cache, key, key.encode() * 200)  # 1000 bytes: full
        await put(cache, "f", b"f" * MAX_FILE_BYTES)  # 1400: the two oldest go
        assert [await cache.get(key) is not None for key in "abcdef"] == [
            False, False, True, True, True, True,
        ]  # fmt: skip
        assert await cache.usage() == MAX_BYTES

    @pytest.mark.anyio
    async def test_replacing_a_key_counts_its_new_size(self, cache: MediaCache) -> None:
        await put(cache, "a", b"a" * 300)
        await put(cache, "b", b"b" * 300)
        await put(cache, "c", b"c" * 300)
        await put(cache, "c", b"C" * 400)  # 1000 bytes: nothing goes
        assert [await cache.get(key) is not None for key in "abc"] == [True, True, True]
        await put(cache, "a", b"A" * 350)  # 1050: b is the least recently accessed now
        assert await cache.get("b") is None
        assert await cache.usage() == 750

    # --- the disk behind the cache's back ------------------------------------------------------

    @pytest.mark.anyio
    async def test_a_file_deleted_on_disk_is_not_cached(self, cache: MediaCache) -> None:
        kept = await put(cache, "m1", b"deleted by someone")
        await anyio.Path(kept.path).unlink()
        assert await cache.get("m1") is None
        assert await cache.usage() == 0, "its entry is dropped"
        again = await put(cache, "m1", b"fetched again")
        assert await content_of(again) == b"fetched again"

    # --- concurrency and sharing ---------------------------------------------------------------

    @pytest.mark.anyio
    async def test_concurrent_puts_and_gets(self, cache: MediaCache) -> None:
        async def put_and_get(i: int) -> None:
            key = f"k{i}"
            await put(cache, key, bytes([i]) * 100)
            got = await cache.get(key)
            if got is not None:  # an eviction by a later put may have come first
                assert await content_of(got) == bytes([i]) * 100

        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(put_and_get, i)
        assert await cache.usage() <= MAX_BYTES
        kept = [await cache.get(f"k{i}") for i in range(20)]
        assert sum(k.size for k in kept if k is not None) == await cache.usage()

    @pytest.mark.anyio
    async def test_close_twice(self, cache: MediaCache) -> None:
        await cache.close()
        await cache.close()

    @pytest.mark.anyio
    async def test_caches_on_the_same_data_share_it(
        self, cache: MediaCache, other_cache: MediaCache | None
    ) -> None:
        if other_cache is None:
            pytest.skip("this backend does not share data between instances")
        await put(cache, "m1", b"shared")
        got = await other_cache.get("m1")
        assert got is not None and await content_of(got) == b"shared"
        await other_cache.remove("m1")
        assert await cache.get("m1") is None
        # Eviction counts what both put, by the order of both's accesses.
        await put(cache, "a", b"a" * 300)
        await put(other_cache, "b", b"b" * 300)
        await put(cache, "c", b"c" * 300)
        assert await other_cache.get("a") is not None
        await put(other_cache, "d", b"d" * 300)
        assert await cache.get("b") is None
        assert await cache.usage() == await other_cache.usage() == 900

    @pytest.mark.anyio
    async def test_caches_on_the_same_data_write_at_once(
        self, cache: MediaCache, other_cache: MediaCache | None
    ) -> None:
        if other_cache is None:
            pytest.skip("this backend does not share data between instances")

        async def fill(target: MediaCache, prefix: str) -> None:
            for i in range(10):
                await put(target, f"{prefix}{i}", prefix.encode() * 90)

        async with anyio.create_task_group() as tg:
            tg.start_soon(fill, cache, "x")
            tg.start_soon(fill, other_cache, "y")
        usage = await cache.usage()
        assert usage <= MAX_BYTES
        kept = [await cache.get(f"{p}{i}") for p in "xy" for i in range(10)]
        assert sum(k.size for k in kept if k is not None) == usage
