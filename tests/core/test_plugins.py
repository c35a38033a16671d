"""The plugin manager: where plugins come from, blocking, and misspelled hooks."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from chatcore import hookimpl
from chatcore.plugins import PluginError, PluginHost

PLUGIN_DIR = str(__import__("pathlib").Path(__file__).resolve().parents[1] / "plugins")


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


# --- entry points that fail to import ------------------------------------------------------

FAKE_MODULES = {
    # Loads, and declares an extra whose package is not installed.
    "fakeplug_ok": (
        "from chatcore import hookimpl\n"
        "from chatcore.extras import Extra\n"
        "EXTRA = Extra('fake', 'the fake backend', {'fakeplug_no_such_dep': 'fake-dep'})\n"
        "@hookimpl\n"
        "def chatcore_startup(app):\n"
        "    return None\n"
    ),
    "fakeplug_needs_dep": "import fakeplug_no_such_dep\n",
    "fakeplug_crashes": "raise RuntimeError('boom\\n  on two lines')\n",
}
SKIPPED = "entry point (fakeplug 1.0) cannot be imported"
MISSING_DEP = f"{SKIPPED}: No module named 'fakeplug_no_such_dep'"
FAKE_EXTRA = "the fake backend needs the fake-dep package: pip install 'chatcore[fake]'"


@pytest.fixture
def fake_distribution(tmp_path, monkeypatch):
    """An installed distribution `fakeplug` with three entry points in the group `chatcore`:
    a real dist-info folder on sys.path, found by importlib.metadata like any package."""
    info = tmp_path / "fakeplug-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeplug\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[chatcore]\n"
        "fakeplug_ok = fakeplug_ok\n"
        "fakeplug_missing = fakeplug_needs_dep\n"
        "fakeplug_crashes = fakeplug_crashes\n"
    )
    for name, source in FAKE_MODULES.items():
        (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in FAKE_MODULES:
        sys.modules.pop(name, None)


def test_an_entry_point_that_fails_to_import_is_skipped_with_its_reason(fake_distribution):
    host = PluginHost.load()
    found = names(host)
    assert found["fakeplug_ok"] == "entry point (fakeplug 1.0)"
    assert found["chatcore_sql"].startswith("entry point")  # the others load all the same
    assert host.skipped == {
        "fakeplug_missing": MISSING_DEP,
        "fakeplug_crashes": f"{SKIPPED}: boom on two lines",
    }


def test_a_config_plugin_that_fails_to_import_still_fails_loudly(fake_distribution):
    with pytest.raises(PluginError, match="'fakeplug_needs_dep' cannot be imported"):
        PluginHost.load(["fakeplug_needs_dep"])


def test_a_disabled_entry_point_is_not_imported_at_all(fake_distribution):
    host = PluginHost.load(disabled=["fakeplug_missing", "fakeplug_crashes"])
    assert host.skipped == {}


def test_plugins_whose_extra_is_missing_are_listed(fake_distribution):
    missing = dict(PluginHost.load().missing_extras())
    assert list(missing) == ["fakeplug_ok"]  # the test venv has every built-in's extra
    assert missing["fakeplug_ok"].problem() == FAKE_EXTRA


@pytest.mark.anyio
async def test_no_provider_names_the_skipped_plugins_in_one_line(fake_distribution, tmp_path):
    from chatcore.server.app import App, StartupError

    class KafkaBroker:
        """A broker plugin that does not say which URLs it serves: start-up asks it."""

        @hookimpl
        def chatcore_broker(self, app):
            return None  # its client library is missing, say

    overrides = {
        "storage": {"url": f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}"},
        "broker": {"url": "kafka://127.0.0.1:9092"},
    }
    app = App.from_config(None, overrides=overrides, extra_plugins=[KafkaBroker()])
    with pytest.raises(StartupError) as raised:
        await app.start(listen=False)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(
        "no plugin provides the broker for broker.url = 'kafka://127.0.0.1:9092'; skipped plugins: "
    )
    assert f"fakeplug_missing: {MISSING_DEP}" in message
    assert f"fakeplug_crashes: {SKIPPED}: boom" in message


def test_the_plugins_command_lists_skipped_plugins_and_missing_extras(fake_distribution):
    result = subprocess.run(
        [sys.executable, "-m", "chatcore", "plugins"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(fake_distribution)},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "fakeplug_ok  [entry point (fakeplug 1.0)]" in out
    assert f"  fakeplug_ok: {FAKE_EXTRA}" in out
    assert f"  fakeplug_missing: {MISSING_DEP}" in out
    assert "Traceback" not in result.stderr
