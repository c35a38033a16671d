"""Calling pluggy hooks from async code.

pluggy is synchronous: an `async def` implementation returns a coroutine object, which a
`firstresult` hook would take as its answer. These helpers walk the implementations themselves
and await one at a time, so "first answer" stops at the first value that is not None, no
coroutine is left un-awaited, and an implementation may be sync or async.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from pluggy import HookCaller

log = logging.getLogger("chatcore.hooks")


async def resolve(value: Any) -> Any:
    """Await `value` when it is awaitable; return it otherwise."""
    if inspect.isawaitable(value):
        return await value
    return value


def _implementations(hook: HookCaller, reverse: bool = False) -> list[Any]:
    # pluggy calls the end of get_hookimpls() first: the plugin registered last, with
    # tryfirst/trylast already sorted in. We keep that order (or its reverse, for shutdown).
    impls = hook.get_hookimpls()
    return impls if reverse else impls[::-1]


def _call(impl: Any, kwargs: dict[str, Any]) -> Any:
    return impl.function(*(kwargs[name] for name in impl.argnames))


async def call_first(hook: HookCaller, **kwargs: Any) -> Any:
    """The first answer that is not None, in pluggy's call order (last registered first)."""
    for impl in _implementations(hook):
        result = await resolve(_call(impl, kwargs))
        if result is not None:
            return result
    return None


async def call_all(hook: HookCaller, *, reverse: bool = False, **kwargs: Any) -> list[Any]:
    """Every answer that is not None, in pluggy's call order (or its reverse)."""
    results = []
    for impl in _implementations(hook, reverse=reverse):
        result = await resolve(_call(impl, kwargs))
        if result is not None:
            results.append(result)
    return results


async def call_observers(hook: HookCaller, *, reverse: bool = False, **kwargs: Any) -> None:
    """Call every implementation; a failure is logged and never stops the others."""
    for impl in _implementations(hook, reverse=reverse):
        try:
            await resolve(_call(impl, kwargs))
        except Exception:
            log.exception("plugin %s failed in %s", impl.plugin_name, hook.name)


async def call_filter(hook: HookCaller, name: str, value: Any, **kwargs: Any) -> Any:
    """Pass `value` (as argument `name`) through every implementation in call order; an answer
    that is not None replaces it for the next one. Return the final value."""
    for impl in _implementations(hook):
        result = await resolve(_call(impl, {**kwargs, name: value}))
        if result is not None:
            value = result
    return value


async def call_decision(hook: HookCaller, name: str, value: Any, **kwargs: Any) -> Any:
    """Like `call_filter`, for hooks that may veto: the first answer of False stops the chain
    and is returned. An implementation that fails is logged and skipped (the value goes on
    unchanged), so one broken plugin cannot stop what the others decide."""
    for impl in _implementations(hook):
        try:
            result = await resolve(_call(impl, {**kwargs, name: value}))
        except Exception:
            log.exception("plugin %s failed in %s", impl.plugin_name, hook.name)
            continue
        if result is False:
            return False
        if result is not None:
            value = result
    return value


def call_all_sync(hook: HookCaller, **kwargs: Any) -> list[Any]:
    """Every answer of a sync-only hook, in pluggy's call order."""
    results = []
    for impl in _implementations(hook):
        result = _call(impl, kwargs)
        if inspect.isawaitable(result):
            close = getattr(result, "close", None)
            if close:
                close()
            raise TypeError(f"{impl.plugin_name}: {hook.name} must not be async")
        if result is not None:
            results.append(result)
    return results
