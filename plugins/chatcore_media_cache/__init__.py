"""chatcore_media_cache: the client's media cache in a folder on disk, configured by
`[media_cache]` (`chatcore.settings.MediaCacheSettings`: `path`, `max_bytes`, `max_file_bytes`,
`revalidate_after_seconds`).

Files are named by a hash of their key and indexed in SQLite (`index.db` in the folder);
several processes of one device (the app and its push handler) may share the folder. See
`chatcore_media_cache.disk` for how.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chatcore.hookspecs import hookimpl
from chatcore.lazy import lazy_exports

if TYPE_CHECKING:
    from chatcore_media_cache.disk import DiskMediaCache

chatcore_role = "client"  # the role it serves (chatcore.roles)

__all__ = ["DiskMediaCache", "chatcore_media_cache"]

# aiosqlite loads when the cache is built: `chatcore --help` loads this package too.
__getattr__ = lazy_exports(__name__, {"DiskMediaCache": "chatcore_media_cache.disk"})


@hookimpl
def chatcore_media_cache(client: Any) -> DiskMediaCache:
    """The cache in the folder of `client.settings.media_cache` (not opened yet)."""
    from chatcore_media_cache.disk import DiskMediaCache

    return DiskMediaCache(client.settings.media_cache)
