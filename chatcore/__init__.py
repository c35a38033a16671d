"""chatcore: a plugin-based chat framework.

The core holds the contract (hook specifications, interfaces, wire events, errors), the plugin
manager, configuration and the assembly of an app; every concrete part is a plugin.
"""

from typing import TYPE_CHECKING

from chatcore.lazy import lazy_exports

if TYPE_CHECKING:
    from chatcore.client.app import Client
    from chatcore.errors import ChatError, ErrorCode
    from chatcore.hookspecs import hookimpl
    from chatcore.server.app import App
    from chatcore.settings import Settings, load_settings

__version__ = "0.1.0"

__all__ = [
    "App",
    "ChatError",
    "Client",
    "ErrorCode",
    "Settings",
    "__version__",
    "hookimpl",
    "load_settings",
]

# Imported on first use: `import chatcore` (every plugin does) must not load the whole engine,
# or `chatcore --help` would pay for it.
__getattr__ = lazy_exports(
    __name__,
    {
        "App": "chatcore.server.app",
        "Client": "chatcore.client.app",
        "ChatError": "chatcore.errors",
        "ErrorCode": "chatcore.errors",
        "hookimpl": "chatcore.hookspecs",
        "Settings": "chatcore.settings",
        "load_settings": "chatcore.settings",
    },
)
