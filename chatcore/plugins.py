"""The plugin manager: one per app, and the typed facade the engine calls hooks through.

Plugins come from three places, in this order: the core's own plugin, every entry point of the
group `chatcore` (the built-ins and installed third-party packages), and the modules named in
the config's `plugins`. Names in `disabled_plugins` are blocked before anything loads.
`check_pending()` then fails start-up on any `chatcore_*` function that matches no hook, so a
misspelled hook never goes silently unused.

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

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
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
    ) -> PluginHost:
        """Build a manager: core, entry points, `modules`, then `extra` plugin objects."""
        host = cls()
        for name in disabled:
            host.pm.set_blocked(name)
        from chatcore.server import core_plugin
        from chatcore.server.push import rules as push_rules

        host.register(core_plugin, "chatcore.core", source="core")
        # Its own plugin, so a deployment with other push rules can disable it by name.
        host.register(push_rules, "chatcore.push_rules", source="core")
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
            self.register(plugin, ep.name, source=f"entry point{dist}")

    def register(self, plugin: object, name: str | None = None, source: str = "registered") -> str:
        """Add `plugin` under `name` (its own name when None); a hook wrapper is refused."""
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
                    # An object registered without a name is named by its id(): say its class.
                    shown = type(plugin).__qualname__ if name == str(id(plugin)) else name
                    raise PluginError(
                        f"plugin {shown}: hook {caller.name} is a wrapper; chatcore's hooks may "
                        "be async and are called one implementation at a time, so wrappers are "
                        "not supported; implement it as a plain hook (tryfirst=True or "
                        "trylast=True to run before or after the others)"
                    )

    def check(self) -> None:
        """Fail on any hook implementation that matches no hook specification."""
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(str(exc)) from exc

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
