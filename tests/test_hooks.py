"""The async-aware hook helpers: first answer, all answers, isolated observers."""

from __future__ import annotations

import logging

import pytest

from chatcore import hookimpl
from chatcore.hooks import call_all, call_all_sync, call_first, call_observers
from chatcore.plugins import PluginHost


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
