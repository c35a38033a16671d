"""The media store contract: what every `chatcore.interfaces.MediaStore` must do.

A backend runs this suite by subclassing `MediaStoreContract` and providing a fixture `store`
that yields a started store over empty, private space (and closes it afterwards)::

    import pytest
    from chatcore.testing.media_contract import MediaStoreContract

    class TestMyStore(MediaStoreContract):
        @pytest.fixture
        async def store(self):
            store = MyStore(...)
            await store.start()
            yield store
            await store.close()

A backend whose data several instances can share (several server nodes on one bucket) also
overrides `other_node`: a second started store on the same data; the test of sharing between
nodes then runs, and is skipped otherwise.

The tests are async and run on anyio's pytest plugin (the `anyio_backend` fixture comes with
this class).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator

import anyio
import pytest

from chatcore.interfaces import MediaStore
from chatcore.server.media import blob_key, thumbnail_key

SHA = hashlib.sha256(b"x").hexdigest()
KEY = blob_key(SHA)


async def chunks_of(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def read_all(store: MediaStore, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in store.read(key, start, end)])


class Interrupted(Exception):
    pass


class MediaStoreContract:
    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    @pytest.fixture
    def other_node(self) -> MediaStore | None:
        """A second store on the same data as `store`, for backends that share (None: skip)."""
        return None

    # --- writing and reading -----------------------------------------------------------------

    @pytest.mark.anyio
    async def test_put_then_read(self, store: MediaStore) -> None:
        assert await store.put(KEY, chunks_of(b"hello ", b"", b"world")) == 11
        assert await read_all(store, KEY) == b"hello world"
        assert await store.size(KEY) == 11
        assert await store.exists(KEY)

    @pytest.mark.anyio
    async def test_large_content_round_trips_in_chunks(self, store: MediaStore) -> None:
        data = os.urandom(3 * 1024 * 1024 + 17)
        parts = [data[i : i + 100_000] for i in range(0, len(data), 100_000)]
        assert await store.put(KEY, chunks_of(*parts)) == len(data)
        chunks = [chunk async for chunk in store.read(KEY)]
        assert b"".join(chunks) == data
        assert max(len(c) for c in chunks) < len(data), "read streams, in several chunks"

    @pytest.mark.anyio
    async def test_read_a_range(self, store: MediaStore) -> None:
        data = bytes(range(256)) * 4
        await store.put(KEY, chunks_of(data))
        assert await read_all(store, KEY, 10, 20) == data[10:20]
        assert await read_all(store, KEY, 1000) == data[1000:]
        assert await read_all(store, KEY, 0, 1) == data[:1]
        assert await read_all(store, KEY, 1020, 5000) == data[1020:]
        assert await read_all(store, KEY, 5, 5) == b""

    @pytest.mark.anyio
    async def test_put_replaces(self, store: MediaStore) -> None:
        await store.put(KEY, chunks_of(b"first version, longer"))
        await store.put(KEY, chunks_of(b"second"))
        assert await read_all(store, KEY) == b"second"
        assert await store.size(KEY) == 6

    @pytest.mark.anyio
    async def test_empty_content(self, store: MediaStore) -> None:
        assert await store.put(KEY, chunks_of()) == 0
        assert await store.size(KEY) == 0
        assert await read_all(store, KEY) == b""

    @pytest.mark.anyio
    async def test_keys_are_separate(self, store: MediaStore) -> None:
        other = thumbnail_key(SHA, 256, "png")
        await store.put(KEY, chunks_of(b"original"))
        await store.put(other, chunks_of(b"thumb"))
        assert await read_all(store, KEY) == b"original"
        assert await read_all(store, other) == b"thumb"

    # --- what is missing ---------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_missing_keys(self, store: MediaStore) -> None:
        assert await store.size(KEY) is None
        assert not await store.exists(KEY)
        with pytest.raises(FileNotFoundError):
            await read_all(store, KEY)

    @pytest.mark.anyio
    async def test_delete(self, store: MediaStore) -> None:
        await store.put(KEY, chunks_of(b"gone soon"))
        await store.delete(KEY)
        assert await store.size(KEY) is None
        await store.delete(KEY)  # deleting a missing key is harmless

    @pytest.mark.anyio
    async def test_a_failed_put_leaves_nothing(self, store: MediaStore) -> None:
        async def failing() -> AsyncIterator[bytes]:
            yield b"the first part arrived"
            raise Interrupted

        with pytest.raises(Interrupted):
            await store.put(KEY, failing())
        assert await store.size(KEY) is None

    # --- concurrency, sharing, policy ---------------------------------------------------------

    @pytest.mark.anyio
    async def test_concurrent_puts_of_different_keys(self, store: MediaStore) -> None:
        keys = [blob_key(hashlib.sha256(bytes([i])).hexdigest()) for i in range(8)]

        async def put(i: int) -> None:
            await store.put(keys[i], chunks_of(bytes([i]) * (1000 + i)))

        async with anyio.create_task_group() as tg:
            for i in range(len(keys)):
                tg.start_soon(put, i)
        for i, key in enumerate(keys):
            assert await read_all(store, key) == bytes([i]) * (1000 + i)

    @pytest.mark.anyio
    async def test_nodes_share_content(
        self, store: MediaStore, other_node: MediaStore | None
    ) -> None:
        if other_node is None:
            pytest.skip("this backend does not share data between instances")
        await store.put(KEY, chunks_of(b"shared"))
        assert await other_node.size(KEY) == 6
        assert await read_all(other_node, KEY) == b"shared"

    @pytest.mark.anyio
    async def test_policy(self, store: MediaStore) -> None:
        policy = store.policy
        assert policy.allowed_types and all("/" in t for t in policy.allowed_types)
        assert policy.url_ttl_seconds > 0
        assert policy.thumbnail_sizes and min(policy.thumbnail_sizes) > 0
        assert policy.max_image_pixels > 0
