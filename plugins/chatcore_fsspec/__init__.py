"""chatcore_fsspec: the built-in media store, any fsspec filesystem chosen by `[media] url`.

`file://./data/media` (the default: a folder, created on first start), `memory://` (one process,
for tests), `s3://BUCKET/PREFIX` through s3fs (`chatcore[s3]`; endpoint and credentials in
`storage_options`, or the usual AWS environment), or any other fsspec URL. Several nodes share
media by sharing one URL (an object store, or a shared folder). Configured by `[media]`
(`FsspecMediaSettings`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel

from chatcore.hookspecs import hookimpl
from chatcore_fsspec.settings import FsspecMediaSettings
from chatcore_fsspec.store import FsspecMediaStore, handles

if TYPE_CHECKING:
    from chatcore.app import App

__all__ = ["FsspecMediaSettings", "FsspecMediaStore", "chatcore_media_store"]


@hookimpl
def chatcore_settings_models() -> dict[str, type[BaseModel]]:
    return {"media": FsspecMediaSettings}


@hookimpl
def chatcore_media_store(app: App) -> FsspecMediaStore | None:
    settings = app.settings.section("media", FsspecMediaSettings)
    return FsspecMediaStore(settings) if handles(settings.url) else None
