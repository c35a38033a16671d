"""Optional dependencies ("extras"): is one installed, and the one-line error when it is not.

A plugin whose backend needs packages the base install lacks declares them once, as a module
attribute its package `__init__` defines without importing them:

    EXTRA = Extra("redis", "the Redis broker", {"redis": "redis"})

and calls `EXTRA.require()` only when the config selects that backend, just before importing
the module that needs them. The base install never pays for (or breaks on) a backend nobody
asked for, and `chatcore plugins` lists the plugins whose `EXTRA` is missing.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping

from chatcore.errors import StartupError

__all__ = ["Extra", "MissingExtra"]


class MissingExtra(StartupError):
    """A backend the config selects needs packages that are not installed; the message is the
    one line to show: what needs which packages, and the pip command that installs them.

    Raised while the config is validated (a key only that backend can check) or while the app
    starts, never by a config that does not select the backend."""


class Extra:
    """The optional packages of one backend, and the `chatcore[...]` extra that installs them."""

    __slots__ = ("modules", "name", "what")

    def __init__(self, name: str, what: str, modules: Mapping[str, str]) -> None:
        self.name = name  # the extra in `pip install 'chatcore[NAME]'`
        self.what = what  # the subject of the message: "the Redis broker"
        self.modules = dict(modules)  # top-level module imported -> the package that has it

    def __repr__(self) -> str:
        return f"Extra({self.name!r}, {self.what!r}, {self.modules!r})"

    @property
    def pip(self) -> str:
        """The command that installs what is missing."""
        return f"pip install 'chatcore[{self.name}]'"

    def missing(self) -> list[str]:
        """The packages not installed, found without importing anything."""
        return [
            package
            for module, package in self.modules.items()
            if importlib.util.find_spec(module) is None
        ]

    def problem(self) -> str | None:
        """The one line `require` raises, or None when everything is installed."""
        missing = self.missing()
        if not missing:
            return None
        if len(missing) == 1:
            names = f"the {missing[0]} package"
        else:
            names = f"the {', '.join(missing[:-1])} and {missing[-1]} packages"
        return f"{self.what} needs {names}: {self.pip}"

    def require(self) -> None:
        """Raise `MissingExtra` unless every package is installed."""
        problem = self.problem()
        if problem is not None:
            raise MissingExtra(problem)
