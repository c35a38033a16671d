"""Media for a user interface: files shown from the device's cache, uploads through the API.

    media = MediaClient(api, cache)
    shown = await media.open(message.media_id)                 # a local file to display
    thumb = await media.open(message.media_id, thumbnail=256)
    sent = await media.upload(Path("photo.png"), progress=on_progress)

`open` answers from the cache without asking the server while the cached copy is younger than
`revalidate_after_seconds`; an older copy is checked with its ETag (an unchanged file costs a
304 and no bytes); a file the server no longer serves to this user (404) leaves the cache.
A file larger than the cache keeps (`put` answers None) is written to a temporary file instead:
see `MediaClient.open`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import anyio

from chatcore.client.api import Api, Progress
from chatcore.client.errors import ApiError
from chatcore.client.interfaces import MediaCache
from chatcore.client.models import CachedFile, Media
from chatcore.clock import now_ms

__all__ = ["DEFAULT_REVALIDATE_AFTER_SECONDS", "MediaClient", "cache_key"]

#: When neither the caller nor the cache says (`[media_cache] revalidate_after_seconds`).
DEFAULT_REVALIDATE_AFTER_SECONDS = 86_400.0
#: Prefix of the temporary files of media too large for the cache.
TEMP_PREFIX = "chatcore-media-"


def cache_key(media_id: str, thumbnail: int | None = None) -> str:
    """The cache's key of a media file, or of one of its thumbnails."""
    return media_id if thumbnail is None else f"{media_id}@thumb{thumbnail}"


class MediaClient:
    """Downloads through a cache, uploads through the API: the one object a UI uses for media.

    `revalidate_after_seconds` defaults to the cache's own (`DiskMediaCache` has the setting),
    else a day. `temp_dir` is where files too large for the cache go (default: the system's
    temporary folder)."""

    def __init__(
        self,
        api: Api,
        cache: MediaCache,
        *,
        revalidate_after_seconds: float | None = None,
        temp_dir: str | Path | None = None,
    ) -> None:
        self.api = api
        self.cache = cache
        if revalidate_after_seconds is None:
            revalidate_after_seconds = float(
                getattr(cache, "revalidate_after_seconds", DEFAULT_REVALIDATE_AFTER_SECONDS)
            )
        self.revalidate_after_ms = int(revalidate_after_seconds * 1000)
        self.temp_dir = None if temp_dir is None else str(temp_dir)

    async def open(self, media_id: str, *, thumbnail: int | None = None) -> CachedFile:
        """A local file with the media's bytes (or its thumbnail's: `thumbnail` is the size).

        From the cache with no request while the copy is fresh; a stale copy is revalidated
        (304: kept and marked fetched; 200: replaced). `ApiError` not_found when the server
        does not serve it to this user (any cached copy is dropped), `ApiUnavailable` when it
        cannot be asked.

        A file over the cache's per-file cap is not cached: it is written to a new temporary
        file (`TEMP_PREFIX…` in `temp_dir`, by default the system's temporary folder) and the
        CachedFile points there. That file is the caller's: delete it when done showing it
        (the system's cleaning of its temporary folder removes it otherwise).
        """
        key = cache_key(media_id, thumbnail)
        cached = await self.cache.get(key)
        if cached is not None and now_ms() - cached.fetched_ts < self.revalidate_after_ms:
            return cached
        try:
            status, body, headers = await self.api.download(
                media_id, thumbnail=thumbnail, etag=cached.etag if cached else None
            )
            if status == 304 and cached is not None:
                await self.cache.touch(key, fetched=True)
                still = await self.cache.get(key)
                if still is not None:
                    return still
                # Evicted meanwhile (another process, or a full cache): fetch it whole.
                status, body, headers = await self.api.download(media_id, thumbnail=thumbnail)
        except ApiError as exc:
            if exc.status == 404 and cached is not None:
                await self.cache.remove(key)
            raise
        content_type = headers.get("content-type", "application/octet-stream")
        etag = headers.get("etag")
        kept = await self.cache.put(key, body, content_type=content_type, etag=etag)
        if kept is not None:
            return kept
        path = await anyio.to_thread.run_sync(_write_temporary, body, self.temp_dir)
        now = now_ms()
        return CachedFile(
            key=key,
            path=path,
            size=len(body),
            content_type=content_type,
            etag=etag,
            fetched_ts=now,
            accessed_ts=now,
        )

    async def upload(
        self,
        source: Path | bytes,
        *,
        filename: str | None = None,
        progress: Progress | None = None,
    ) -> Media:
        """Upload a file (`Api.upload`): a path (read off the event loop) or bytes."""
        return await self.api.upload(source, filename=filename, progress=progress)


def _write_temporary(data: bytes, folder: str | None) -> str:
    """A new private file (mode 0600) holding `data`; its path."""
    descriptor, path = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=folder)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
    except BaseException:
        os.unlink(path)
        raise
    return path
