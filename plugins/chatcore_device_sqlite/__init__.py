"""chatcore_device_sqlite: the client role's built-in device store, one SQLite file.

`[device_store] path` names the file (default `./data/client.db`, relative to the working
directory; the folder is made if missing). Several processes of one device (the app and its
push handler) may open it at once. The store: `chatcore_device_sqlite.store.SqliteDeviceStore`;
its schema and how it is upgraded: `chatcore_device_sqlite.schema`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chatcore.hookspecs import hookimpl
from chatcore.lazy import lazy_exports

if TYPE_CHECKING:
    from chatcore_device_sqlite.store import SqliteDeviceStore

chatcore_role = "client"  # the role it serves (chatcore.roles)

__all__ = ["SqliteDeviceStore", "chatcore_device_store"]

# SQLAlchemy loads when the store is built: `chatcore --help` loads this package too.
__getattr__ = lazy_exports(__name__, {"SqliteDeviceStore": "chatcore_device_sqlite.store"})


@hookimpl
def chatcore_device_store(client: Any) -> SqliteDeviceStore:
    """The store in the file of `client.settings.device_store.path` (not opened yet)."""
    from chatcore_device_sqlite.store import SqliteDeviceStore

    return SqliteDeviceStore(client.settings.device_store.path)
