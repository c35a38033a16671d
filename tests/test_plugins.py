"""The plugin manager: where plugins come from, blocking, and misspelled hooks."""

from __future__ import annotations

import sys

import pytest

from chatcore import hookimpl
from chatcore.plugins import PluginError, PluginHost

PLUGIN_DIR = str(__import__("pathlib").Path(__file__).parent / "plugins")


@pytest.fixture
def sample_on_path(monkeypatch):
    monkeypatch.syspath_prepend(PLUGIN_DIR)
    yield
    sys.modules.pop("sample_plugin", None)


def names(host: PluginHost) -> dict[str, str]:
    return {info.name: info.source for info in host.describe()}


def test_builtin_plugins_come_from_entry_points():
    found = names(PluginHost.load())
    builtins = ("chatcore_sql", "chatcore_auth", "chatcore_memory", "chatcore_rest", "chatcore_ws")
    for builtin in builtins:
        assert found[builtin].startswith("entry point")
    assert found["chatcore.core"] == "core"


def test_disabled_plugins_are_not_loaded():
    assert "chatcore_ws" not in names(PluginHost.load(disabled=["chatcore_ws"]))


def test_a_module_named_in_the_config_is_loaded_with_its_hooks(sample_on_path):
    host = PluginHost.load(["sample_plugin"], entry_points=False)
    info = next(i for i in host.describe() if i.name == "sample_plugin")
    assert info.source == "config"
    assert set(info.hooks) == {
        "chatcore_settings_models",
        "chatcore_startup",
        "chatcore_register_routes",
        "chatcore_register_commands",
    }


def test_a_missing_module_is_a_clear_error():
    with pytest.raises(PluginError, match="'no_such_plugin_xyz' cannot be imported"):
        PluginHost.load(["no_such_plugin_xyz"], entry_points=False)


def test_a_misspelled_hook_fails_at_load():
    class Typo:
        @hookimpl
        def chatcore_storag(self, app):  # one letter short
            return None

    with pytest.raises(PluginError, match="chatcore_storag"):
        PluginHost.load(entry_points=False, extra=[Typo()])


def test_each_host_is_independent():
    """One manager per app: registering into one does not leak into another."""

    class Extra:
        @hookimpl
        def chatcore_startup(self, app):
            return None

    first = PluginHost.load(entry_points=False, extra=[Extra()])
    second = PluginHost.load(entry_points=False)
    assert len(first.describe()) == len(second.describe()) + 1
