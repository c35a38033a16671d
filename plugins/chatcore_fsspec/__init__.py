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

from chatcore.extras import Extra
from chatcore.hookspecs import hookimpl
from chatcore.lazy import lazy_exports
from chatcore_fsspec.settings import FsspecMediaSettings

if TYPE_CHECKING:
    from chatcore.server.app import App
    from chatcore_fsspec.store import FsspecMediaStore

chatcore_role = "server"  # the role it serves (chatcore.roles)

__all__ = ["EXTRA", "FsspecMediaSettings", "FsspecMediaStore", "chatcore_media_store"]

#: What an `s3://` URL needs (local folders and `memory://` come with the base install).
EXTRA = Extra("s3", "S3 media storage", {"s3fs": "s3fs"})
S3_PROTOCOLS = ("s3", "s3a")

# fsspec loads when the store is built: `chatcore --help` loads this package too.
__getattr__ = lazy_exports(__name__, {"FsspecMediaStore": "chatcore_fsspec.store"})


@hookimpl
def chatcore_settings_models() -> dict[str, type[BaseModel]]:
    return {"media": FsspecMediaSettings}


@hookimpl
def chatcore_media_store(app: App) -> FsspecMediaStore | None:
    settings = app.settings.section("media", FsspecMediaSettings)
    from chatcore_fsspec.store import FsspecMediaStore, handles

    if not handles(settings.url):
        return None
    if settings.url.partition("://")[0].lower() in S3_PROTOCOLS:
        EXTRA.require()
    return FsspecMediaStore(settings)
