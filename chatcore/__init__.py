"""chatcore: a plugin-based chat framework.

The core holds the contract (hook specifications, interfaces, wire events, errors), the plugin
manager, configuration and the assembly of an app; every concrete part is a plugin.
"""

from chatcore.app import App
from chatcore.errors import ChatError, ErrorCode
from chatcore.hookspecs import hookimpl
from chatcore.settings import Settings, load_settings

__version__ = "0.1.0"

__all__ = ["App", "ChatError", "ErrorCode", "Settings", "__version__", "hookimpl", "load_settings"]
