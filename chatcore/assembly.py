"""From a config file to validated settings and loaded plugins: the first step of either role.

    assembled = assemble("config/server.toml", overrides={"server": {"port": 0}})
    assembled.settings, assembled.plugins, assembled.source

The file's `role` picks the hooks and plugins (`chatcore.roles`); `overrides` have the file's
shape and win over it; the environment wins over both (`chatcore.settings`). Everything is
checked here, so a wrong config fails before anything starts: `ConfigError` (one line per bad
key) or `PluginError`. `chatcore.App` and `chatcore.Client` are built from what it returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatcore.plugins import PluginHost
from chatcore.roles import Role
from chatcore.settings import (
    ConfigError,
    Settings,
    build_settings,
    config_role,
    plugin_lists,
    read_config_file,
)

__all__ = ["Assembly", "assemble", "deep_merge"]


@dataclass(frozen=True, slots=True)
class Assembly:
    """A validated config and the plugins it loads; `source` names the file in messages."""

    settings: Settings
    plugins: PluginHost
    source: str


def assemble(
    path: str | Path | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    extra_plugins: Iterable[object] = (),
    entry_points: bool = True,
    role: Role | None = None,
) -> Assembly:
    """Read `path` (TOML; None: the built-in defaults), apply `overrides`, load the plugins of
    the config's role (entry points unless `entry_points` is false, the config's `plugins`,
    and `extra_plugins` objects), and validate every section against its model. With `role`,
    a config of the other role is refused first, in one line saying so."""
    source = str(path) if path else "<defaults>"
    raw = deep_merge(read_config_file(path), overrides or {})
    found = config_role(raw, source)
    if role is not None and found != role:
        raise ConfigError(
            source,
            [
                f"role: this file is for a {found} (role = {found!r}, the default when a file "
                f'has none); a {role}\'s config says role = "{role}"'
            ],
        )
    modules, disabled = plugin_lists(raw, source)
    host = PluginHost.load(
        modules, disabled, entry_points=entry_points, extra=extra_plugins, role=found
    )
    return Assembly(build_settings(raw, host.settings_models(), source), host, source)


def deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `extra` merged in, tables key by key (`extra` wins on everything else)."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
