"""The kernel's hooks, those of every role, and the markers plugins use (`hookimpl`).

The hooks are the contract between the core and its plugins, split by role: this module holds
the ones every process calls (config sections, commands, startup and shutdown);
`chatcore.server.hookspecs` holds the server's (backends, transports, message events, pushes)
and `chatcore.client.hookspecs` the client's. The plugin host adds this module's hooks and
those of the config's `role` (`chatcore.roles`); a plugin says which roles it serves with a
module attribute `chatcore_role` (docs/plugins.md).

A plugin is a module or object with functions named after these hooks, marked with
`@chatcore.hookimpl`. Every hook may be implemented by a plain function or by a coroutine
function; the engine awaits what is awaitable (`chatcore.hooks`). Arguments are passed by name,
and an implementation may accept only the ones it needs.

Two kinds of hooks:

* **Providers** build a backend from the config. "First answer" hooks are asked plugin by
  plugin (last registered first, so a plugin named in the config overrides a built-in) and the
  first answer that is not None wins; a plugin answers None when the config does not select it
  (for example a storage URL of another scheme). "All answers" hooks collect every answer.
* **Events and filters** let plugins observe or shape what happens. Unless a hook says
  otherwise, every implementation is called one at a time, in pluggy's order: the plugin
  registered last first (plugins named in the config come after the built-ins), with
  `tryfirst`/`trylast` honoured.

An exception raised by a provider stops start-up with a clear error. Observers
(`chatcore_message_stored`, `chatcore_user_registered`, `chatcore_client_event`) are isolated:
a failing one is logged and the rest still run.

Hook wrappers (`@hookimpl(wrapper=True)` or `hookwrapper=True`) are refused when a plugin is
registered: implementations may be async and are called one at a time, so there is no single
call for a wrapper to wrap. For the same reason pluggy's `add_hookcall_monitoring` sees no
calls; `CHATCORE_TRACE_HOOKS=1` logs each implementation's plugin and time instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click
    from pydantic import BaseModel

    from chatcore.server.app import App

PROJECT = "chatcore"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- configuration and commands -------------------------------------------------------------


@hookspec
def chatcore_settings_models() -> dict[str, type[BaseModel]] | None:
    """Contribute the config sections this plugin reads.

    Return `{section_name: PydanticModel}`. All answers are used. When several plugins
    contribute a model for the same section, the section accepts the keys of all of them (the
    models are combined by inheritance): a backend for an area subclasses the area's base model
    from `chatcore.settings` (`StorageSettings`, `BrokerSettings`, `MediaSettings`) and adds its
    own keys. Models should forbid unknown keys (`chatcore.settings.Section` does). Sync only:
    called before the event loop runs, and by `chatcore check-config`.
    """


@hookspec
def chatcore_register_commands(cli: click.Group) -> None:
    """Add commands to the `chatcore` command line.

    `cli` is the root click group. Use `@chatcore.cli.with_app()` on a command to receive a
    started `App` built from `--config`. All implementations are called; sync only.
    """


# --- lifecycle ------------------------------------------------------------------------------


@hookspec
def chatcore_startup(app: App) -> None:
    """Called once all backends have started and before any transport listens.

    All implementations run, in order; may be async. An exception stops start-up.
    """


@hookspec
def chatcore_shutdown(app: App) -> None:
    """Called after every transport has stopped and before backends close.

    All implementations run, in the reverse of the startup order; may be async. An exception is
    logged and shutdown goes on.
    """
