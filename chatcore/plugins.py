"""The plugin manager: one per app, and the typed facade the engine calls hooks through.

A host assembles one role (`chatcore.roles`): it knows the kernel's hooks and that role's, and
loads only the plugins that serve it. Plugins come from three places, in this order: the core's
own plugins (the server's), every entry point of the group `chatcore` (the built-ins and
installed third-party packages), and the modules named in the config's `plugins`. Names in
`disabled_plugins` are blocked before anything loads. An entry point of the other role is left
out (`chatcore plugins` does not list it); a module named in the config, or an object
registered, of the other role is an error. The check then fails start-up on any `chatcore_*`
function that matches no hook, so a misspelled hook never goes silently unused; a plugin
serving both roles may implement the other role's hooks, which this host never calls.

An entry point that fails to import (a half-installed package, a dependency missing) is
skipped, with the reason kept in `PluginHost.skipped`: one broken package must not break every
command. A module named in the config's `plugins` still fails loudly: the user asked for it.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pluggy
from pydantic import BaseModel

from chatcore import hookspecs
from chatcore.extras import Extra
from chatcore.failures import one_line
from chatcore.hooks import call_all_sync
from chatcore.roles import ROLES, Role, RoleError, plugin_roles, role_hookspecs

GROUP = "chatcore"


class PluginError(Exception):
    """A plugin that cannot be loaded: not importable, or implementing an unknown hook."""


@dataclass(frozen=True)
class PluginInfo:
    name: str
    source: str  # "core", "entry point (dist x.y)", "config", "registered"
    hooks: tuple[str, ...]


class PluginHost:
    """Owns one pluggy manager; the rest of the engine goes through these methods."""

    def __init__(self, role: Role = "server") -> None:
        self.role: Role = role
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.pm.add_hookspecs(role_hookspecs(role))
        self._sources: dict[str, str] = {}
        #: Entry points not loaded because their import failed: name -> why (one line).
        self.skipped: dict[str, str] = {}

    @classmethod
    def load(
        cls,
        modules: Iterable[str] = (),
        disabled: Iterable[str] = (),
        *,
        entry_points: bool = True,
        extra: Iterable[object] = (),
        role: Role = "server",
    ) -> PluginHost:
        """Build a manager for `role`: core, entry points, `modules`, then `extra` objects."""
        host = cls(role)
        for name in disabled:
            host.pm.set_blocked(name)
        if role == "server":
            host._register_server_core()
        if entry_points:
            host._load_entry_points()
        for module_name in modules:
            if host.pm.is_blocked(module_name) or host.pm.has_plugin(module_name):
                continue
            try:
                module = importlib.import_module(module_name)
            except ImportError as exc:
                raise PluginError(f"plugin {module_name!r} cannot be imported: {exc}") from exc
            host.register(module, module_name, source="config")
        for plugin in extra:
            host.register(plugin, source="registered")
        host.check()
        return host

    def _register_server_core(self) -> None:
        from chatcore.server import core_plugin
        from chatcore.server.push import rules as push_rules

        self.register(core_plugin, "chatcore.core", source="core")
        # Its own plugin, so a deployment with other push rules can disable it by name.
        self.register(push_rules, "chatcore.push_rules", source="core")

    def _load_entry_points(self) -> None:
        for ep in importlib.metadata.entry_points(group=GROUP):
            if self.pm.is_blocked(ep.name) or self.pm.get_plugin(ep.name) is not None:
                continue
            dist = f" ({ep.dist.name} {ep.dist.version})" if ep.dist else ""
            try:
                plugin = ep.load()
            except Exception as exc:  # whatever a broken package raises, the others still load
                self.skipped[ep.name] = f"entry point{dist} cannot be imported: {one_line(exc)}"
                continue
            try:
                roles = self._roles_of(plugin, ep.name)
            except PluginError as exc:  # a bad chatcore_role: skipped like a broken import
                self.skipped[ep.name] = f"entry point{dist}: {exc}"
                continue
            if self.role not in roles:
                continue  # another role's plugin: installed beside this one, not for this process
            self.register(plugin, ep.name, source=f"entry point{dist}")

    def register(self, plugin: object, name: str | None = None, source: str = "registered") -> str:
        """Add `plugin` under `name` (its own name when None); a hook wrapper is refused, and so
        is a plugin that does not serve this host's role."""
        roles = self._roles_of(plugin, name)
        if self.role not in roles:
            raise PluginError(
                f"plugin {_shown(plugin, name)} serves the {' and '.join(roles)} role, "
                f"not the {self.role} role this host assembles (the config's `role`)"
            )
        registered = self.pm.register(plugin, name)
        if registered is None:  # blocked
            return name or ""
        self._refuse_wrappers(plugin, registered)
        self._sources[registered] = source
        return registered

    def _refuse_wrappers(self, plugin: object, name: str) -> None:
        # chatcore.hooks calls implementations itself, one at a time and awaiting each: a
        # wrapper would run as a plain implementation and its generator count as an answer.
        for caller in self.pm.get_hookcallers(plugin) or []:
            for impl in caller.get_hookimpls():
                if impl.plugin is plugin and (impl.wrapper or impl.hookwrapper):
                    self.pm.unregister(plugin)
                    raise PluginError(
                        f"plugin {_shown(plugin, name)}: hook {caller.name} is a wrapper; "
                        "chatcore's hooks may be async and are called one implementation at "
                        "a time, so wrappers are not supported; implement it as a plain hook "
                        "(tryfirst=True or trylast=True to run before or after the others)"
                    )

    def _roles_of(self, plugin: object, name: str | None) -> tuple[Role, ...]:
        try:
            return tuple(sorted(plugin_roles(plugin)))
        except RoleError as exc:
            raise PluginError(f"plugin {_shown(plugin, name)}: {exc}") from None

    def check(self) -> None:
        """Fail on any hook implementation that matches no hook specification of this role.

        What pluggy's `check_pending` does, but a plugin serving several roles may implement
        the hooks of the others: this host never calls them. A plugin serving only this role
        may not: it says which role it is meant for, and a hook of another role means a mistake.
        """
        others = {
            hook: role
            for role in ROLES
            if role != self.role
            for hook in vars(role_hookspecs(role))
            if hook.startswith("chatcore_")
        }
        for hook, caller in vars(self.pm.hook).items():
            if hook.startswith("_") or caller.has_spec():
                continue
            for impl in caller.get_hookimpls():
                if impl.optionalhook:
                    continue
                shown = _shown(impl.plugin, impl.plugin_name)
                other = others.get(hook)
                if other is None:
                    raise PluginError(f"unknown hook {hook!r} in plugin {shown}")
                if self._roles_of(impl.plugin, impl.plugin_name) == (self.role,):
                    raise PluginError(
                        f"plugin {shown} serves the {self.role} role only, but implements "
                        f"{hook}, a hook of the {other} role: fix its chatcore_role or drop "
                        "the hook"
                    )

    @property
    def hook(self) -> Any:
        return self.pm.hook

    def describe(self) -> list[PluginInfo]:
        """Every loaded plugin with where it came from and the hooks it implements."""
        infos = []
        for name, plugin in self.pm.list_name_plugin():
            if plugin is None:  # a blocked name
                continue
            hooks = tuple(sorted(c.name for c in self.pm.get_hookcallers(plugin) or []))
            infos.append(PluginInfo(name, self._sources.get(name, "registered"), hooks))
        return infos

    def skipped_hint(self) -> str:
        """The skipped entry points for an error message ("skipped plugins: name: why; ..."),
        empty when none was skipped."""
        if not self.skipped:
            return ""
        return "skipped plugins: " + "; ".join(f"{n}: {why}" for n, why in self.skipped.items())

    def missing_extras(self) -> list[tuple[str, Extra]]:
        """Loaded plugins whose optional packages (their module's `EXTRA`) are not installed:
        a config selecting them fails at start with `EXTRA.problem()`."""
        found = []
        for name, plugin in self.pm.list_name_plugin():
            extra = getattr(plugin, "EXTRA", None)
            if isinstance(extra, Extra) and extra.missing():
                found.append((name, extra))
        return found

    def settings_models(self) -> list[tuple[str, type[BaseModel]]]:
        """Every (section, model) contributed through `chatcore_settings_models`."""
        pairs = []
        for answer in call_all_sync(self.hook.chatcore_settings_models):
            for section, model in answer.items():
                if not (inspect.isclass(model) and issubclass(model, BaseModel)):
                    raise PluginError(f"config section {section!r}: {model!r} is not a model")
                pairs.append((section, model))
        return pairs


def _shown(plugin: object, name: str | None) -> str:
    """How errors name a plugin: an object registered without a name is named by its id() by
    pluggy, so say its class instead."""
    name = name or getattr(plugin, "__name__", None)
    if name is None or name == str(id(plugin)):
        return type(plugin).__qualname__
    return name
