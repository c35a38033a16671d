"""Typed per-app state: `app.state[KEY]`, where `KEY` is a module-level `StateKey[T]`.

Like pytest's `Stash`: a plugin (or the core) makes each key once, at module level, and mypy
knows that `app.state[KEY]` is a `T`. Keys compare by identity, so two plugins never share a
slot by picking the same name.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar, cast, final, overload

__all__ = ["State", "StateKey"]

T = TypeVar("T")
D = TypeVar("D")


@final
class StateKey(Generic[T]):
    """A key of `State` for values of type `T`: `COUNT = StateKey[int]("my_plugin.count")`.

    The name is only for people reading reprs and errors; two keys with the same name are two
    different keys.
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"StateKey({self.name!r})"


@final
class State:
    """What the core and plugins keep per app (`App.state`), by `StateKey`."""

    __slots__ = ("_values",)

    def __init__(self) -> None:
        self._values: dict[StateKey[Any], object] = {}

    def __getitem__(self, key: StateKey[T]) -> T:
        """The value kept under `key`; `KeyError` when there is none."""
        return cast(T, self._values[key])

    def __setitem__(self, key: StateKey[T], value: T) -> None:
        self._values[key] = value

    @overload
    def get(self, key: StateKey[T]) -> T | None: ...

    @overload
    def get(self, key: StateKey[T], default: D) -> T | D: ...

    def get(self, key: StateKey[Any], default: object = None) -> object:
        """The value kept under `key`, or `default` when there is none."""
        return self._values.get(key, default)

    def setdefault(self, key: StateKey[T], default: T) -> T:
        """The value kept under `key`, after keeping `default` there when there was none."""
        return cast(T, self._values.setdefault(key, default))

    def __contains__(self, key: object) -> bool:
        return key in self._values
