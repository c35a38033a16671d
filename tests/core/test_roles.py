"""Each role assembles its own parts: hooks, plugins and config sections (`chatcore.roles`)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from cli_support import chatcore_cli

from chatcore import hookimpl
from chatcore.plugins import PluginError, PluginHost
from chatcore.roles import Role
from chatcore.settings import ConfigError, build_settings, config_role

ROOT = Path(__file__).resolve().parents[2]
SERVER_PLUGINS = (
    "chatcore.core",
    "chatcore.push_rules",
    "chatcore_sql",
    "chatcore_auth",
    "chatcore_memory",
    "chatcore_rest",
    "chatcore_ws",
    "chatcore_fsspec",
    "chatcore_redis",
    "chatcore_nats",
    "chatcore_webpush",
    "chatcore_push_webhook",
    "chatcore_fcm",
    "chatcore_apns",
)


def names(host: PluginHost) -> set[str]:
    return {info.name for info in host.describe()}


def plugin(role: object = None, **hooks: object) -> SimpleNamespace:
    """A plugin object with `hooks` (already marked) and, unless None, a `chatcore_role`."""
    attrs = dict(hooks) if role is None else {"chatcore_role": role, **hooks}
    return SimpleNamespace(**attrs)


@hookimpl
def chatcore_startup(app: object) -> None:
    return None


@hookimpl
def chatcore_storage(app: object) -> None:
    return None


@hookimpl
def chatcore_client_event(app: object, event: object) -> None:
    return None


def test_the_cli_lists_the_client_plugins_and_no_server_plugin_for_the_client_config():
    result = chatcore_cli("plugins", "--config", str(ROOT / "config" / "client.toml"))
    assert result.returncode == 0, result.stderr
    for name in SERVER_PLUGINS:
        assert name not in result.stdout
    assert "chatcore_device_sqlite  [entry point" in result.stdout
    assert "    chatcore_device_store" in result.stdout
    assert "chatcore_media_cache  [entry point" in result.stdout
    assert "    chatcore_media_cache" in result.stdout


def test_the_cli_lists_every_server_plugin_for_the_server_config():
    result = chatcore_cli("plugins", "--config", str(ROOT / "config" / "server.toml"))
    assert result.returncode == 0, result.stderr
    listed = {line.split()[0] for line in result.stdout.splitlines() if line and line[0] != " "}
    assert set(SERVER_PLUGINS) <= listed


def test_a_host_knows_the_kernel_hooks_and_its_role_hooks_only():
    server = PluginHost.load(entry_points=False)
    client = PluginHost.load(entry_points=False, role="client")
    assert server.hook.chatcore_storage.has_spec()
    assert not hasattr(server.hook, "chatcore_client_event")
    assert client.hook.chatcore_client_event.has_spec()
    assert client.hook.chatcore_startup.has_spec()
    assert not hasattr(client.hook, "chatcore_storage")
    assert names(client) == set()  # the core's own plugins are the server's


def test_a_plugin_without_a_role_loads_in_both_roles():
    roles: tuple[Role, ...] = ("server", "client")
    for role in roles:
        # It implements hooks of both roles: each host calls those of its own.
        third_party = plugin(
            chatcore_startup=chatcore_startup,
            chatcore_storage=chatcore_storage,
            chatcore_client_event=chatcore_client_event,
        )
        host = PluginHost.load(entry_points=False, extra=[third_party], role=role)
        impls = host.hook.chatcore_startup.get_hookimpls()
        assert third_party in [impl.plugin for impl in impls]


def test_a_plugin_of_the_other_role_is_refused_clearly():
    with pytest.raises(PluginError, match="serves the client role, not the server role"):
        PluginHost.load(entry_points=False, extra=[plugin("client")])
    with pytest.raises(PluginError, match="serves the server role, not the client role"):
        PluginHost.load(entry_points=False, extra=[plugin(("server",))], role="client")


def test_a_config_module_of_the_other_role_is_refused_clearly():
    with pytest.raises(PluginError, match="chatcore_sql serves the server role"):
        PluginHost.load(["chatcore_sql"], entry_points=False, role="client")


def test_a_client_plugin_implementing_a_server_hook_fails_naming_both():
    wrong = plugin("client", chatcore_storage=chatcore_storage)
    with pytest.raises(PluginError, match="implements chatcore_storage, a hook of the server role"):
        PluginHost.load(entry_points=False, extra=[wrong], role="client")


def test_a_plugin_serving_both_roles_says_so_with_a_tuple():
    both = plugin(("server", "client"), chatcore_client_event=chatcore_client_event)
    host = PluginHost.load(entry_points=False, extra=[both])
    assert len(host.describe()) == len(PluginHost.load(entry_points=False).describe()) + 1


def test_a_role_that_names_no_role_is_an_error():
    with pytest.raises(PluginError, match="chatcore_role 'browser' names no role"):
        PluginHost.load(entry_points=False, extra=[plugin("browser")])


def test_a_misspelled_hook_is_still_unknown_in_the_client_role():
    typo = plugin("client", chatcore_client_evnt=chatcore_client_event)
    with pytest.raises(PluginError, match="unknown hook 'chatcore_client_evnt'"):
        PluginHost.load(entry_points=False, extra=[typo], role="client")


def test_the_role_is_read_before_plugins_load_and_the_environment_wins(monkeypatch):
    assert config_role({}, "f.toml") == "server"
    assert config_role({"role": "client"}, "f.toml") == "client"
    monkeypatch.setenv("CHATCORE_ROLE", "server")
    assert config_role({"role": "client"}, "f.toml") == "server"
    monkeypatch.setenv("CHATCORE_ROLE", "phone")
    with pytest.raises(ConfigError, match="role: "):
        config_role({}, "f.toml")


def test_a_client_config_has_the_client_sections():
    raw = {"role": "client", "device_store": {"path": "a.db"}, "media_cache": {"path": "m"}}
    settings = build_settings(raw)
    assert settings.device_store.path == "a.db"
    assert settings.media_cache.path == "m"


def test_a_client_config_never_selects_the_server_storage_or_media():
    raw = {"role": "client", "storage": {"url": "sqlite+aiosqlite:///x.db"}, "media": {}}
    with pytest.raises(ConfigError) as caught:
        build_settings(raw, source="client.toml")
    assert [p.split(":")[0] for p in caught.value.problems] == ["storage", "media"]
    assert "a section of the server role" in caught.value.problems[0]


def test_a_server_section_from_the_environment_is_refused_too(monkeypatch):
    monkeypatch.setenv("CHATCORE_STORAGE__URL", "sqlite+aiosqlite:///x.db")
    with pytest.raises(ConfigError, match="storage: a section of the server role"):
        build_settings({"role": "client"})


def test_a_server_config_may_not_have_the_client_sections():
    with pytest.raises(ConfigError, match="device_store: a section of the client role"):
        build_settings({"device_store": {"path": "a.db"}})


def test_the_shipped_client_config_checks():
    result = chatcore_cli("check-config", str(ROOT / "config" / "client.toml"))
    assert result.returncode == 0, result.stderr
    assert "role client" in result.stdout
    keys = set(result.stdout.split("keys: ", 1)[1].rstrip(")\n").split(", "))
    assert {"client", "device_store", "media_cache"} <= keys
    assert not keys & {"storage", "media", "broker", "server"}, keys


def test_serve_with_the_client_config_says_how_a_client_config_is_used(tmp_path):
    result = chatcore_cli("serve", "--config", str(ROOT / "config" / "client.toml"), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {ROOT / 'config' / 'client.toml'}: role 'client' cannot serve: a client config "
        f"is used by `chatcore client --config {ROOT / 'config' / 'client.toml'} ...` "
        "(see docs/client.md)"
    )
