"""The async-aware hook helpers: first answer, all answers, isolated observers, no wrappers,
and the trace of `CHATCORE_TRACE_HOOKS`."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from chatcore import hookimpl
from chatcore.hooks import (
    TRACE_VARIABLE,
    call_all,
    call_all_sync,
    call_first,
    call_observers,
    trace_hooks,
)
from chatcore.plugins import PluginError, PluginHost


def host_with(*plugins: object) -> PluginHost:
    return PluginHost.load(entry_points=False, extra=plugins)


class AsyncNone:
    calls = 0

    @hookimpl
    async def chatcore_storage(self, app):
        AsyncNone.calls += 1
        return None


class SyncAnswer:
    @hookimpl
    def chatcore_storage(self, app):
        return "sync-storage"


class AsyncAnswer:
    @hookimpl
    async def chatcore_storage(self, app):
        return "async-storage"


@pytest.mark.anyio
async def test_first_answer_skips_an_async_none_and_awaits_it():
    """An async implementation answering None does not win (pluggy alone would stop there)."""
    AsyncNone.calls = 0
    host = host_with(SyncAnswer(), AsyncNone())  # AsyncNone registered last: called first
    assert await call_first(host.hook.chatcore_storage, app=None) == "sync-storage"
    assert AsyncNone.calls == 1


@pytest.mark.anyio
async def test_first_answer_stops_at_the_first_value():
    host = host_with(SyncAnswer(), AsyncAnswer())
    assert await call_first(host.hook.chatcore_storage, app=None) == "async-storage"


@pytest.mark.anyio
async def test_first_answer_is_none_when_nobody_answers():
    assert await call_first(host_with(AsyncNone()).hook.chatcore_storage, app=None) is None


class Transports:
    def __init__(self, name: str, is_async: bool):
        self.name = name
        if is_async:
            async def chatcore_transports(app):
                return [self.name]
        else:
            def chatcore_transports(app):
                return self.name
        self.chatcore_transports = hookimpl(chatcore_transports)


@pytest.mark.anyio
async def test_all_answers_mixes_sync_and_async_in_call_order():
    host = host_with(Transports("a", False), Transports("b", True))
    assert await call_all(host.hook.chatcore_transports, app=None) == [["b"], "a"]
    assert await call_all(host.hook.chatcore_transports, app=None, reverse=True) == ["a", ["b"]]


@pytest.mark.anyio
async def test_a_failing_observer_is_logged_and_the_others_still_run(caplog):
    seen = []

    class Broken:
        @hookimpl
        async def chatcore_user_registered(self, app, user):
            raise RuntimeError("boom")

    class Good:
        @hookimpl
        def chatcore_user_registered(self, app, user):
            seen.append(user)

    host = host_with(Good(), Broken())
    with caplog.at_level(logging.ERROR, logger="chatcore.hooks"):
        await call_observers(host.hook.chatcore_user_registered, app=None, user="u1")
    assert seen == ["u1"]
    assert "failed in chatcore_user_registered" in caplog.text


def test_sync_only_hook_rejects_a_coroutine_without_leaking_it():
    class AsyncModels:
        @hookimpl
        async def chatcore_settings_models(self):
            return {}

    host = host_with(AsyncModels())
    with pytest.raises(TypeError, match="must not be async"):
        call_all_sync(host.hook.chatcore_settings_models)


# --- wrappers are refused ---------------------------------------------------------------------


class NewStyleWrapper:
    @hookimpl(wrapper=True)
    def chatcore_storage(self, app):
        return (yield)


class OldStyleWrapper:
    @hookimpl(hookwrapper=True)
    def chatcore_transports(self, app):
        yield


@pytest.mark.parametrize(
    ("plugin", "hook"),
    [(NewStyleWrapper(), "chatcore_storage"), (OldStyleWrapper(), "chatcore_transports")],
)
def test_a_hook_wrapper_is_refused_at_registration(plugin, hook):
    """A wrapper (new or old style) stops loading with an error naming plugin and hook."""
    with pytest.raises(PluginError) as refused:
        PluginHost.load(entry_points=False, extra=[plugin])
    message = str(refused.value)
    assert f"hook {hook} is a wrapper" in message
    assert "wrappers are not supported" in message
    assert message.startswith(f"plugin {type(plugin).__name__}: ")


@pytest.mark.anyio
async def test_a_refused_wrapper_leaves_nothing_behind():
    """After the refusal the host answers as if the wrapper had never been offered."""
    host = host_with(SyncAnswer())
    with pytest.raises(PluginError, match=r"^plugin wrapping: hook chatcore_storage is a wrapper"):
        host.register(NewStyleWrapper(), "wrapping")
    assert not host.pm.has_plugin("wrapping")
    assert await call_first(host.hook.chatcore_storage, app=None) == "sync-storage"


# --- CHATCORE_TRACE_HOOKS ---------------------------------------------------------------------


@pytest.fixture
def tracing() -> Iterator[None]:
    """Hook tracing on for one test, as the variable turns it on at import."""
    logger = logging.getLogger("chatcore.hooks")
    level = logger.level
    trace_hooks()
    yield
    trace_hooks(False)
    logger.setLevel(level)


def traced(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "chatcore.hooks"]


@pytest.mark.anyio
@pytest.mark.usefixtures("tracing")
async def test_tracing_logs_each_implementation_with_its_plugin_and_time(caplog):
    """A sync and an async implementation each log the hook, the plugin and the ms taken."""
    host = PluginHost.load(entry_points=False)
    host.register(SyncAnswer(), "sync_plugin")
    host.register(AsyncNone(), "async_plugin")  # registered last: asked first
    with caplog.at_level(logging.INFO):
        assert await call_first(host.hook.chatcore_storage, app=None) == "sync-storage"
    lines = traced(caplog)
    assert len(lines) == 2, lines
    assert lines[0].startswith("hook chatcore_storage: plugin async_plugin took ")
    assert lines[1].startswith("hook chatcore_storage: plugin sync_plugin took ")
    assert all(line.endswith(" ms") for line in lines)


@pytest.mark.usefixtures("tracing")
def test_tracing_says_when_an_implementation_raises(caplog):
    """A sync-only hook is traced too, and a failing implementation is logged as such."""

    class Broken:
        @hookimpl
        def chatcore_settings_models(self):
            raise RuntimeError("boom")

    host = PluginHost.load(entry_points=False)
    host.register(Broken(), "broken")
    with caplog.at_level(logging.INFO), pytest.raises(RuntimeError):
        call_all_sync(host.hook.chatcore_settings_models)
    [line] = traced(caplog)
    assert line.startswith("hook chatcore_settings_models: plugin broken took ")
    assert line.endswith(" ms and raised")


@pytest.mark.anyio
async def test_without_tracing_hook_calls_log_nothing(caplog):
    """Tracing off (the default), a call that succeeds logs nothing at any level."""
    trace_hooks(False)
    host = host_with(SyncAnswer(), AsyncNone())
    with caplog.at_level(logging.DEBUG, logger="chatcore.hooks"):
        await call_first(host.hook.chatcore_storage, app=None)
    assert traced(caplog) == []


def test_the_variable_turns_tracing_on_at_import():
    """A fresh process with CHATCORE_TRACE_HOOKS=1 traces, though its logging says WARNING."""
    script = textwrap.dedent(
        """
        import logging

        import click

        from chatcore.hooks import call_all_sync
        from chatcore.plugins import PluginHost

        logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
        host = PluginHost.load(entry_points=False)
        call_all_sync(host.hook.chatcore_register_commands, cli=click.Group())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, TRACE_VARIABLE: "1"},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "chatcore.hooks: hook chatcore_register_commands: plugin chatcore.core took " in (
        done.stderr
    )
