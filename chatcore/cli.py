"""The `chatcore` command line. Plugins add commands through `chatcore_register_commands`.

Plugin modules named in a config can add commands too, so the config named by `--config` (or
`$CHATCORE_CONFIG`) is read before the command line is parsed.
"""

from __future__ import annotations

import asyncio
import functools
import getpass
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

import chatcore
from chatcore.app import App, StartupError
from chatcore.errors import ChatError
from chatcore.hooks import call_all_sync
from chatcore.logs import setup_logging
from chatcore.plugins import PluginError, PluginHost
from chatcore.settings import ConfigError, plugin_lists, read_config_file

CONFIG_ENV = "CHATCORE_CONFIG"

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar=CONFIG_ENV,
    help=f"The TOML config file (default: ${CONFIG_ENV}, else built-in defaults).",
)


def load_app(config_path: str | None) -> App:
    """Build an App from a config file, turning config and plugin errors into a clean exit."""
    try:
        app = App.from_config(config_path)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"{exc.source}: {problem}", err=True)
        raise SystemExit(2) from None
    except PluginError as exc:
        raise click.ClickException(str(exc)) from None
    setup_logging(app.settings.logging)
    return app


def with_app(start: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a command: add `--config`, pass an App as the first argument.

    With `start=True` the app's backends (storage, broker, auth) are started before the
    command runs and closed after it; transports do not listen. The command may be a coroutine
    function; it runs in a fresh event loop. A `ChatError` becomes a one-line error, exit 1.
    Put it below `@group.command()` and the command's own options:

        @cli.command()
        @click.argument("name")
        @with_app()
        async def hello(app, name): ...
    """

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @config_option
        @functools.wraps(fn)
        def command(config_path: str | None, **kwargs: Any) -> Any:
            app = load_app(config_path)

            async def run() -> Any:
                if start:
                    await app.start(listen=False)
                try:
                    result = fn(app, **kwargs)
                    return await result if asyncio.iscoroutine(result) else result
                finally:
                    if start:
                        await app.stop()

            try:
                return asyncio.run(run())
            except (ChatError, StartupError) as exc:
                raise click.ClickException(str(exc)) from None

        return command

    return decorate


@click.command()
@config_option
def serve(config_path: str | None) -> None:
    """Run a server node in the foreground until SIGTERM or Ctrl-C."""
    app = load_app(config_path)
    try:
        asyncio.run(app.serve())
    except StartupError as exc:
        raise click.ClickException(str(exc)) from None


@click.command("check-config")
@click.argument("file", type=click.Path(dir_okay=False))
def check_config(file: str) -> None:
    """Validate a config file: exit 0 when valid, else one line per bad key."""
    app = load_app(file)
    sections = ", ".join(sorted(type(app.settings).model_fields))
    click.echo(f"{file}: ok (role {app.settings.role}; keys: {sections})")


@click.command("plugins")
@config_option
def list_plugins(config_path: str | None) -> None:
    """List every loaded plugin, where it came from and the hooks it implements."""
    app = load_app(config_path)
    for info in app.plugins.describe():
        click.echo(f"{info.name}  [{info.source}]")
        for hook in info.hooks:
            click.echo(f"    {hook}")


@click.group()
def user() -> None:
    """Manage users."""


@user.command("create")
@click.argument("username")
@click.option("--display-name", default=None, help="Shown instead of the username.")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (for scripts)."
)
@with_app()
async def user_create(
    app: App, username: str, display_name: str | None, password_stdin: bool
) -> None:
    """Create a user (asks for the password unless --password-stdin)."""
    from chatcore import accounts

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
    created = await accounts.register(app, username, password, display_name)
    click.echo(f"created {created.username} ({created.id})")


@user.command("list")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10_000))
@with_app()
async def user_list(app: App, limit: int) -> None:
    """List users by username."""
    for u in await app.storage.list_users(limit):
        click.echo(f"{u.id}  {u.username}  {u.display_name}")


def build_cli(config_path: str | None) -> click.Group:
    """The root group with the core commands plus every plugin's commands."""
    root = click.Group(
        "chatcore",
        help="chatcore: a plugin-based chat server and client.",
        commands=[serve, check_config, list_plugins, user],
    )
    root = click.version_option(chatcore.__version__, prog_name="chatcore")(root)
    call_all_sync(_plugin_host(config_path).hook.chatcore_register_commands, cli=root)
    return root


def _plugin_host(config_path: str | None) -> PluginHost:
    # A broken config still gets a working CLI: its command reports the problem itself.
    try:
        modules, disabled = plugin_lists(read_config_file(config_path), str(config_path))
        return PluginHost.load(modules, disabled)
    except (ConfigError, PluginError):
        return PluginHost.load()


def _config_in(argv: Sequence[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
    if len(argv) >= 2 and argv[0] == "check-config":
        return argv[1]
    return os.environ.get(CONFIG_ENV)


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    build_cli(_config_in(args)).main(args=args, prog_name="chatcore")
