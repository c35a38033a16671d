"""Names a package re-exports but imports only when first used (PEP 562).

The `chatcore` command loads every plugin package to collect its commands, so a package's
`__init__` must stay cheap and must not import an optional dependency. Its public names still
work: `from chatcore_redis import RedisBroker` imports `chatcore_redis.broker` at that moment.

    if TYPE_CHECKING:  # for type checkers; at run time the names come from __getattr__
        from chatcore_redis.broker import RedisBroker
    __getattr__ = lazy_exports(__name__, {"RedisBroker": "chatcore_redis.broker"})
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` for `package`: `names` maps each name to the module defining it."""
    where = dict(names)

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)  # the next lookup skips this function
        return value

    return __getattr__
