"""Calling pluggy hooks from async code.

pluggy is synchronous: an `async def` implementation returns a coroutine object, which a
`firstresult` hook would take as its answer. These helpers walk the implementations themselves
and await one at a time, so "first answer" stops at the first value that is not None, no
coroutine is left un-awaited, and an implementation may be sync or async.

Because pluggy's own call loop is bypassed, pluggy's hook wrappers could not work here (the
plugin host refuses them) and `add_hookcall_monitoring` sees nothing. `CHATCORE_TRACE_HOOKS=1`
logs every call instead: the hook, each implementation's plugin and the time it took.
"""

from __future__ import annotations

import inspect
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from pluggy import HookCaller

log = logging.getLogger(__name__)

#: Set (to anything but 0) when the process starts, it turns `trace_hooks` on.
TRACE_VARIABLE = "CHATCORE_TRACE_HOOKS"


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


def _invoke(impl: Any, kwargs: dict[str, Any]) -> Any:
    return impl.function(*(kwargs[name] for name in impl.argnames))


async def _run_plain(hook: HookCaller, impl: Any, kwargs: dict[str, Any]) -> Any:
    # `resolve` inlined: this runs for every implementation of every hook, per message too.
    result = _invoke(impl, kwargs)
    if inspect.isawaitable(result):
        return await result
    return result


def _call_plain(hook: HookCaller, impl: Any, kwargs: dict[str, Any]) -> Any:
    return _invoke(impl, kwargs)


@contextmanager
def _timed(hook: HookCaller, impl: Any) -> Iterator[None]:
    start = time.perf_counter()
    outcome = " and raised"
    try:
        yield
        outcome = ""
    finally:
        took = (time.perf_counter() - start) * 1000
        log.info("hook %s: plugin %s took %.3f ms%s", hook.name, impl.plugin_name, took, outcome)


async def _run_traced(hook: HookCaller, impl: Any, kwargs: dict[str, Any]) -> Any:
    with _timed(hook, impl):
        return await _run_plain(hook, impl, kwargs)


def _call_traced(hook: HookCaller, impl: Any, kwargs: dict[str, Any]) -> Any:
    with _timed(hook, impl):
        return _invoke(impl, kwargs)


# How the helpers call one implementation (awaiting it, or not): picked by `trace_hooks`, so
# an untraced call costs no check of whether tracing is on.
_run: Callable[[HookCaller, Any, dict[str, Any]], Awaitable[Any]] = _run_plain
_call: Callable[[HookCaller, Any, dict[str, Any]], Any] = _call_plain


def trace_hooks(on: bool = True) -> None:
    """Log (logger `chatcore.hooks`, INFO) every implementation these helpers call from now
    on: the hook, the plugin and how long it took, awaiting included; or stop (`on=False`).

    `CHATCORE_TRACE_HOOKS=1` turns it on when chatcore is imported. The logger gets its own
    level of INFO (unless it has a lower one), so the trace shows whatever level the root
    logger is given later.
    """
    global _run, _call
    _run, _call = (_run_traced, _call_traced) if on else (_run_plain, _call_plain)
    if on and not logging.NOTSET < log.level <= logging.INFO:
        log.setLevel(logging.INFO)


async def call_first(hook: HookCaller, **kwargs: Any) -> Any:
    """The first answer that is not None, in pluggy's call order (last registered first)."""
    for impl in _implementations(hook):
        result = await _run(hook, impl, kwargs)
        if result is not None:
            return result
    return None


async def call_all(hook: HookCaller, *, reverse: bool = False, **kwargs: Any) -> list[Any]:
    """Every answer that is not None, in pluggy's call order (or its reverse)."""
    results = []
    for impl in _implementations(hook, reverse=reverse):
        result = await _run(hook, impl, kwargs)
        if result is not None:
            results.append(result)
    return results


async def call_observers(hook: HookCaller, *, reverse: bool = False, **kwargs: Any) -> None:
    """Call every implementation; a failure is logged and never stops the others."""
    for impl in _implementations(hook, reverse=reverse):
        try:
            await _run(hook, impl, kwargs)
        except Exception:
            log.exception("plugin %s failed in %s", impl.plugin_name, hook.name)


async def call_filter(hook: HookCaller, name: str, value: Any, **kwargs: Any) -> Any:
    """Pass `value` (as argument `name`) through every implementation in call order; an answer
    that is not None replaces it for the next one. Return the final value."""
    for impl in _implementations(hook):
        result = await _run(hook, impl, {**kwargs, name: value})
        if result is not None:
            value = result
    return value


async def call_decision(hook: HookCaller, name: str, value: Any, **kwargs: Any) -> Any:
    """Like `call_filter`, for hooks that may veto: the first answer of False stops the chain
    and is returned. An implementation that fails is logged and skipped (the value goes on
    unchanged), so one broken plugin cannot stop what the others decide."""
    for impl in _implementations(hook):
        try:
            result = await _run(hook, impl, {**kwargs, name: value})
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
        result = _call(hook, impl, kwargs)
        if inspect.isawaitable(result):
            close = getattr(result, "close", None)
            if close:
                close()
            raise TypeError(f"{impl.plugin_name}: {hook.name} must not be async")
        if result is not None:
            results.append(result)
    return results


if os.environ.get(TRACE_VARIABLE, "") not in ("", "0"):
    trace_hooks()
