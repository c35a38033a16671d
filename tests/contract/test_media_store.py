"""The media store contract on chatcore_fsspec: a folder, memory, and S3 through a real S3 API
(moto's standalone server, started on a loopback port), plus what is fsspec-specific: URLs,
settings, the folder made on first start."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import chatcore_fsspec
from chatcore.hooks import call_first
from chatcore.server.app import App
from chatcore.settings import ConfigError
from chatcore.testing.media_contract import KEY, MediaStoreContract, chunks_of, read_all
from chatcore.testing.s3 import s3_options
from chatcore_fsspec import FsspecMediaSettings, FsspecMediaStore


def settings_for(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, Any]:
    if backend == "file":
        return {"url": f"file://{tmp_path / 'media'}"}
    if backend == "memory":
        return {"url": f"memory://chatcore-test-{uuid.uuid4().hex}"}
    endpoint = request.getfixturevalue("moto_endpoint")
    return {
        "url": f"s3://media-{uuid.uuid4().hex[:12]}/some/prefix",
        "storage_options": s3_options(endpoint),
    }


async def started(settings: dict[str, Any]) -> FsspecMediaStore:
    store = FsspecMediaStore(FsspecMediaSettings(**settings))
    await store.start()
    return store


class TestFsspecMediaStore(MediaStoreContract):
    @pytest.fixture(params=["file", "memory", "s3"])
    def media_settings(self, request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
        return settings_for(str(request.param), tmp_path, request)

    @pytest.fixture
    async def store(self, media_settings: dict[str, Any]) -> AsyncIterator[FsspecMediaStore]:
        store = await started(media_settings)
        try:
            yield store
        finally:
            await store.close()

    @pytest.fixture
    async def other_node(self, media_settings: dict[str, Any]) -> AsyncIterator[FsspecMediaStore]:
        store = await started(media_settings)
        try:
            yield store
        finally:
            await store.close()


# --- fsspec specifics -------------------------------------------------------------------------


def make_app(media: dict[str, Any]) -> App:
    return App.from_config(
        overrides={"media": media}, entry_points=False, extra_plugins=[chatcore_fsspec]
    )


@pytest.mark.anyio
@pytest.mark.parametrize("url", ["file://./media", "memory://x", "s3://bucket/prefix"])
async def test_the_hook_answers_fsspec_urls(url: str) -> None:
    app = make_app({"url": url})
    assert isinstance(await call_first(app.hook.chatcore_media_store, app=app), FsspecMediaStore)


@pytest.mark.anyio
async def test_the_hook_leaves_other_urls_to_other_plugins() -> None:
    app = make_app({"url": "nosuchprotocol://x"})
    assert await call_first(app.hook.chatcore_media_store, app=app) is None


@pytest.mark.anyio
async def test_a_relative_folder_is_made_under_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = await started({"url": "file://./data/media"})
    try:
        assert (tmp_path / "data" / "media").is_dir()
        await store.put(KEY, chunks_of(b"on disk"))
        assert (tmp_path / "data" / "media" / KEY).read_bytes() == b"on disk"
    finally:
        await store.close()


@pytest.mark.anyio
async def test_a_missing_bucket_is_created(moto_endpoint: str) -> None:
    bucket = f"fresh-{uuid.uuid4().hex[:12]}"
    settings = {"url": f"s3://{bucket}", "storage_options": s3_options(moto_endpoint)}
    first = await started(settings)
    await first.put(KEY, chunks_of(b"in a new bucket"))
    second = await started(settings)  # the bucket exists now: nothing to create
    assert await read_all(second, KEY) == b"in a new bucket"
    await first.close()
    await second.close()


@pytest.mark.anyio
async def test_keys_are_the_servers_own(tmp_path: Path) -> None:
    store = await started({"url": f"file://{tmp_path}"})
    try:
        for key in ["../escape", "/abs", "blobs/../../x", "Upper/Case", "a//b", ""]:
            with pytest.raises(ValueError):
                await store.put(key, chunks_of(b"x"))
        assert os.listdir(tmp_path) == []
    finally:
        await store.close()


def test_settings_defaults_and_validation() -> None:
    settings = FsspecMediaSettings()
    assert settings.url == "file://./data/media"
    assert "image/png" in settings.allowed_types and "text/html" not in settings.allowed_types
    policy = settings.policy()
    assert policy.thumbnail_sizes == (64, 128, 256, 512, 1024)
    with pytest.raises(ConfigError, match=r"media.allowed_types.*text/html"):
        make_app({"allowed_types": ["image/png", "text/html"]})
    with pytest.raises(ConfigError, match=r"media.thumbnail_sizes"):
        make_app({"thumbnail_sizes": [8]})
    with pytest.raises(ConfigError, match=r"media.url_ttl_seconds"):
        make_app({"url_ttl_seconds": 1})
