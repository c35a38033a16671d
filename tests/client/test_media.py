"""The media client (`chatcore.client.media.MediaClient`) with the disk cache
(`chatcore_media_cache`) against a real server: uploads with progress, views served from the
cache without a request, thumbnails, revalidation by ETag, eviction, files too large to keep,
and a file the server stopped sharing."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from api_support import People, Person, png_bytes
from PIL import Image

from chatcore.client.api import UPLOAD_CHUNK_BYTES, ApiError
from chatcore.client.media import MediaClient, cache_key
from chatcore.settings import MediaCacheSettings
from chatcore.testing.media_cache_contract import content_of, next_millisecond
from chatcore.testing.server import ServerProcess
from chatcore_media_cache.disk import DiskMediaCache

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

CacheOpener = Callable[..., Any]


@pytest.fixture
def open_cache(tmp_path: Path) -> Callable[..., Any]:
    """`async with open_cache(max_bytes=...) as cache`: a disk cache in its own folder."""
    count = 0

    @asynccontextmanager
    async def opened(**settings: Any) -> AsyncIterator[DiskMediaCache]:
        nonlocal count
        count += 1
        cache = DiskMediaCache(MediaCacheSettings(path=str(tmp_path / f"cache{count}"), **settings))
        await cache.open()
        try:
            yield cache
        finally:
            await cache.close()

    return opened


def downloads(person: Person, media_id: str) -> int:
    """GET requests this person's client made for the media (its file or thumbnails)."""
    return sum(
        1 for s in person.transport.sent if s.method == "GET" and f"/media/{media_id}" in s.path
    )


async def test_upload_a_file_reports_progress_chunk_by_chunk(
    server: ServerProcess, tmp_path: Path, open_cache: CacheOpener
) -> None:
    image = png_bytes(300, 300, noise=True)  # about 270 KB: four 64 KiB chunks and a bit
    path = tmp_path / "photo.png"
    await anyio.Path(path).write_bytes(image)
    async with People(server) as people, open_cache() as cache:
        ann = await people.person()
        seen: list[tuple[int, int]] = []
        media = await MediaClient(ann.api, cache).upload(
            path, progress=lambda sent, total: seen.append((sent, total))
        )
        assert (media.size, media.content_type, media.filename) == (
            len(image), "image/png", "photo.png",
        )  # fmt: skip
        assert (media.width, media.height) == (300, 300)
        sent = [s for s, _ in seen]
        assert sent[0] == 0 and sent[-1] == len(image)
        assert sent == sorted(set(sent)), "increasing"
        assert sent[1:-1] == list(range(UPLOAD_CHUNK_BYTES, len(image), UPLOAD_CHUNK_BYTES))
        assert {total for _, total in seen} == {len(image)}

        status, body, _ = await ann.api.download(media.id)
        assert (status, body) == (200, image), "the server got the file intact"


async def test_upload_bytes(server: ServerProcess, open_cache: CacheOpener) -> None:
    image = png_bytes(100, 100, noise=True)
    async with People(server) as people, open_cache() as cache:
        ann = await people.person()
        seen: list[tuple[int, int]] = []
        media = await MediaClient(ann.api, cache).upload(image, progress=lambda *p: seen.append(p))
        assert media.size == len(image) and media.filename is None
        assert seen[0] == (0, len(image)) and seen[-1] == (len(image), len(image))


async def test_a_second_view_makes_no_request(
    server: ServerProcess, open_cache: CacheOpener
) -> None:
    image = png_bytes(50, 40)
    async with People(server) as people, open_cache() as cache:
        ann = await people.person()
        media = MediaClient(ann.api, cache)
        uploaded = await media.upload(image, filename="pic.png")

        first = await media.open(uploaded.id)
        assert first.key == uploaded.id == cache_key(uploaded.id)
        assert (first.size, first.content_type) == (len(image), "image/png")
        assert first.etag == f'"{uploaded.sha256}"'
        assert await content_of(first) == image
        assert downloads(ann, uploaded.id) == 1

        second = await media.open(uploaded.id)
        assert downloads(ann, uploaded.id) == 1, "served from the cache"
        assert second.path == first.path and await content_of(second) == image


async def test_a_thumbnail_is_cached_apart(server: ServerProcess, open_cache: CacheOpener) -> None:
    async with People(server) as people, open_cache() as cache:
        ann = await people.person()
        media = MediaClient(ann.api, cache)
        uploaded = await media.upload(png_bytes(300, 200), filename="wide.png")

        thumb = await media.open(uploaded.id, thumbnail=64)
        assert thumb.key == f"{uploaded.id}@thumb64" and thumb.content_type == "image/png"
        with Image.open(io.BytesIO(await content_of(thumb))) as picture:
            assert max(picture.size) <= 64 and picture.size[0] > picture.size[1]
        assert await cache.get(uploaded.id) is None, "the original is not fetched for it"
        await media.open(uploaded.id, thumbnail=64)
        assert downloads(ann, uploaded.id) == 1


async def test_a_stale_copy_is_revalidated_by_etag(
    server: ServerProcess, open_cache: CacheOpener
) -> None:
    image = png_bytes(60, 60)
    async with People(server) as people, open_cache(revalidate_after_seconds=0) as cache:
        ann = await people.person()
        media = MediaClient(ann.api, cache)
        uploaded = await media.upload(image)
        first = await media.open(uploaded.id)
        await next_millisecond(first.fetched_ts)

        again = await media.open(uploaded.id)
        last = ann.transport.sent[-1]
        assert (last.method, last.status) == ("GET", 304)
        assert last.headers["if-none-match"] == first.etag
        assert again.path == first.path and await content_of(again) == image
        assert again.fetched_ts > first.fetched_ts, "marked as checked just now"
        assert await cache.usage() == len(image)


async def test_a_file_no_longer_shared_leaves_the_cache(
    server: ServerProcess, open_cache: CacheOpener
) -> None:
    async with People(server) as people, open_cache(revalidate_after_seconds=0) as cache:
        ann, bob = await people.people(2)
        room = await bob.api.create_direct(ann.id)
        shared = await bob.api.upload(png_bytes(), filename="for-ann.png")
        message = await bob.api.send_message(
            room.id, {"ref": "pic", "kind": "media", "media_id": shared.id}
        )
        media = MediaClient(ann.api, cache)
        assert (await media.open(shared.id)).size == shared.size

        await bob.api.delete_message(room.id, message.id)  # deleting stops the sharing
        with pytest.raises(ApiError) as caught:
            await media.open(shared.id)
        assert (caught.value.status, caught.value.code) == (404, "not_found")
        assert await cache.get(shared.id) is None
        assert await cache.usage() == 0


async def test_the_least_recently_viewed_file_is_evicted(
    server: ServerProcess, open_cache: CacheOpener
) -> None:
    images = [png_bytes(80, 80, noise=True) for _ in range(3)]
    cap = max(len(i) for i in images) * 2 + 100  # room for two of the three
    async with People(server) as people, open_cache(max_bytes=cap) as cache:
        ann = await people.person()
        media = MediaClient(ann.api, cache)
        first, second, third = [await media.upload(image) for image in images]
        await media.open(first.id)
        await media.open(second.id)
        await media.open(first.id)  # viewed again: second is now the least recent
        await media.open(third.id)

        assert await cache.get(second.id) is None
        assert await cache.get(first.id) is not None and await cache.get(third.id) is not None
        assert await cache.usage() <= cap
        await media.open(second.id)
        assert downloads(ann, second.id) == 2, "an evicted file is downloaded again"


async def test_a_file_over_the_per_file_cap_goes_to_a_temporary_file(
    server: ServerProcess, open_cache: CacheOpener, tmp_path: Path
) -> None:
    image = png_bytes(64, 64, noise=True)
    temp_dir = tmp_path / "shown"
    await anyio.Path(temp_dir).mkdir()
    async with People(server) as people, open_cache(max_file_bytes=len(image) - 1) as cache:
        ann = await people.person()
        media = MediaClient(ann.api, cache, temp_dir=temp_dir)
        uploaded = await media.upload(image)

        shown = await media.open(uploaded.id)
        assert Path(shown.path).parent == temp_dir
        assert (shown.size, shown.content_type) == (len(image), "image/png")
        assert await content_of(shown) == image
        assert await cache.get(uploaded.id) is None and await cache.usage() == 0

        again = await media.open(uploaded.id)
        assert again.path != shown.path and downloads(ann, uploaded.id) == 2
        for path in (shown.path, again.path):  # the caller's files: deleted when done
            await anyio.Path(path).unlink()
