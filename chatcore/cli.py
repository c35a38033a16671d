"""The `chatcore` command line. Plugins add commands through `chatcore_register_commands`.

Plugin modules named in a config can add commands too, so the config named by `--config` (or
`$CHATCORE_CONFIG`) is read before the command line is parsed.

Every command loads every plugin package (to list their commands), so this module and the
plugins' `__init__` import only what that needs; the engine (`chatcore.server.app`) is imported
when a
command builds an app, and `--version` is answered before any plugin loads.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import getpass
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import click

import chatcore
from chatcore.errors import ChatError, StartupError
from chatcore.extras import MissingExtra
from chatcore.hooks import call_all_sync
from chatcore.logs import setup_logging
from chatcore.plugins import PluginError, PluginHost
from chatcore.settings import (
    ROLE_SECTIONS,
    ConfigError,
    config_role,
    plugin_lists,
    read_config_file,
)

if TYPE_CHECKING:
    from chatcore.models import User
    from chatcore.server.app import App

CONFIG_ENV = "CHATCORE_CONFIG"

#: Added to click's "No such command": a plugin's commands exist only once its config is read.
UNKNOWN_COMMAND_HINT = (
    "(commands from plugins named in a config need: chatcore --config FILE CMD, "
    f"or {CONFIG_ENV}=FILE)"
)


class CommandError(click.ClickException):
    """A failure a command reports as one line, `error: ...` on stderr, exit status 1."""

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", file=file, err=True)


def _root_option(name: str) -> Any:
    """The value of a root option (`chatcore --config FILE -v CMD`), None outside a command."""
    ctx = click.get_current_context(silent=True)
    return ctx.find_root().params.get(name) if ctx is not None else None


def _config_after_root(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    # Precedence: `CMD --config FILE`, then the nearest group's (`chatcore client --config FILE
    # CMD`, `chatcore --config FILE CMD`), then $CHATCORE_CONFIG (the root option reads it too).
    if ctx.get_parameter_source(str(param.name)) is click.core.ParameterSource.COMMANDLINE:
        return value
    parent = ctx.parent
    while parent is not None:
        given = parent.params.get("config_path")
        if given is not None:
            return given
        parent = parent.parent
    return value


config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar=CONFIG_ENV,
    callback=_config_after_root,
    help=f"The TOML config file (default: chatcore --config, else ${CONFIG_ENV}, else "
    "built-in defaults).",
)


class RootGroup(click.Group):
    """The `chatcore` group: `--config FILE` and `-v` may come before the command (the config
    also names plugins, whose commands then exist), and an unknown command says how plugin
    commands are found."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params[:0] = [
            click.Option(
                ["--config", "config_path"],
                type=click.Path(dir_okay=False),
                envvar=CONFIG_ENV,
                help=f"The TOML config file of every command (default: ${CONFIG_ENV}); plugins "
                "it names add their commands.",
            ),
            click.Option(
                ["-v", "--verbose"],
                is_flag=True,
                help="Log INFO messages in one-shot commands too (they log warnings only).",
            ),
        ]

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            if args and self.get_command(ctx, args[0]) is None:
                raise click.UsageError(f"{exc.message}\n{UNKNOWN_COMMAND_HINT}", ctx) from None
            raise


@contextlib.contextmanager
def config_errors_reported() -> Iterator[None]:
    """A bad config becomes one line per bad key on stderr and exit status 2; a plugin that
    cannot load, one `error: ...` line (exit 1). Wraps the building of an App or a Client."""
    try:
        yield
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"{exc.source}: {problem}", err=True)
        raise SystemExit(2) from None
    except PluginError as exc:
        raise CommandError(str(exc)) from None


def load_app(config_path: str | None, *, serving: bool = False) -> App:
    """Build an App from a config file, turning config and plugin errors into a clean exit.

    Logging is set up from `[logging]`; unless `serving`, only warnings and errors are shown
    (a one-shot command), or INFO too with `chatcore -v`.
    """
    from chatcore.server.app import App

    with config_errors_reported():
        app = App.from_config(config_path)
    setup_logging(app.settings.logging, one_shot=not serving, verbose=bool(_root_option("verbose")))
    return app


def with_app(start: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a command: add `--config`, pass an App as the first argument.

    With `start=True` the app's backends (storage, broker, auth) are started before the
    command runs and closed after it; transports do not listen, and no schema is changed
    (`App.start(migrate=False)`: a database not at the schema this version needs is an error
    naming `chatcore db upgrade`). The command may be a coroutine function; it runs in a fresh
    event loop. A `ChatError` or `StartupError` (a backend out of reach) becomes a one-line
    `error: ...`, exit 1. It logs warnings and errors only (INFO with `chatcore -v`).
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
                    await app.start(listen=False, migrate=False)
                try:
                    result = fn(app, **kwargs)
                    return await result if asyncio.iscoroutine(result) else result
                finally:
                    if start:
                        await app.stop()

            try:
                return asyncio.run(run())
            except (ChatError, StartupError) as exc:  # MissingExtra is a StartupError
                raise CommandError(str(exc)) from None

        return command

    return decorate


@click.command()
@config_option
def serve(config_path: str | None) -> None:
    """Run a server node in the foreground until SIGTERM or Ctrl-C."""
    app = load_app(config_path, serving=True)
    try:
        asyncio.run(app.serve())
    except StartupError as exc:  # MissingExtra included
        raise CommandError(str(exc)) from None


@click.command("check-config")
@click.argument("file", type=click.Path(dir_okay=False))
def check_config(file: str) -> None:
    """Validate a config file: exit 0 when valid, else one line per bad key."""
    app = load_app(file)
    for advice in app.settings.advice:
        click.echo(f"{file}: warning: {advice}", err=True)
    role = app.settings.role
    others = {name for r, names in ROLE_SECTIONS.items() if r != role for name in names}
    sections = ", ".join(sorted(set(type(app.settings).model_fields) - others))
    click.echo(f"{file}: ok (role {app.settings.role}; keys: {sections})")


@click.command("plugins")
@config_option
def list_plugins(config_path: str | None) -> None:
    """List every plugin, where it came from and its hooks; and those not usable, and why."""
    app = load_app(config_path)
    host = app.plugins
    if not host.describe():
        click.echo(f"no plugin serves the {app.settings.role} role yet")
    for info in host.describe():
        click.echo(f"{info.name}  [{info.source}]")
        for hook in info.hooks:
            click.echo(f"    {hook}")
    missing = host.missing_extras()
    if missing:
        click.echo("\nLoaded, but a config selecting them fails until their extra is installed:")
        for name, extra in missing:
            click.echo(f"  {name}: {extra.problem()}")
    if host.skipped:
        click.echo("\nSkipped:")
        for name, why in host.skipped.items():
            click.echo(f"  {name}: {why}")


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
    from chatcore.server import accounts

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
        marks = (("admin", u.is_admin), ("disabled", u.disabled), ("erased", u.deleted))
        flags = "".join(f"  {mark}" for mark, on in marks if on)
        click.echo(f"{u.id}  {u.username}  {u.display_name}{flags}")


# --- administration (docs/administration.md): every action audited as the console's -------


async def _named_user(app: App, name: str) -> User:
    """The user of this username (case-insensitive); a one-line error when there is none."""
    found = await app.storage.get_user_by_username(name)
    if found is None:
        raise CommandError(f"no user named {name!r}")
    return found


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    password = getpass.getpass("New password: ")
    if getpass.getpass("Again: ") != password:
        raise CommandError("the two passwords differ; nothing changed")
    return password


@user.command("promote")
@click.argument("name")
@with_app()
async def user_promote(app: App, name: str) -> None:
    """Make NAME a server admin (the API cannot: only this command)."""
    from chatcore.server import admin

    found = await admin.set_admin(app, None, (await _named_user(app, name)).id, True)
    click.echo(f"{found.username} is a server admin")


@user.command("demote")
@click.argument("name")
@with_app()
async def user_demote(app: App, name: str) -> None:
    """Make NAME a plain user again."""
    from chatcore.server import admin

    found = await admin.set_admin(app, None, (await _named_user(app, name)).id, False)
    click.echo(f"{found.username} is no longer a server admin")


@user.command("disable")
@click.argument("name")
@with_app()
async def user_disable(app: App, name: str) -> None:
    """End every login of NAME on every node and refuse their logins until enabled."""
    from chatcore.server import admin

    found = await admin.disable(app, None, (await _named_user(app, name)).id)
    click.echo(f"{found.username} is disabled; their logins have ended")


@user.command("enable")
@click.argument("name")
@with_app()
async def user_enable(app: App, name: str) -> None:
    """Let a disabled NAME log in again."""
    from chatcore.server import admin

    found = await admin.enable(app, None, (await _named_user(app, name)).id)
    click.echo(f"{found.username} is enabled")


@user.command("erase")
@click.argument("name")
@click.option(
    "--messages",
    type=click.Choice(["keep", "remove"]),
    default="keep",
    show_default=True,
    help="Keep their messages (shown from a deleted user) or make each a deleted message.",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_app()
async def user_erase(app: App, name: str, messages: str, yes: bool) -> None:
    """Erase NAME: their account and personal data, for a data-erasure request. Cannot be
    undone."""
    from chatcore.server import admin

    found = await _named_user(app, name)
    if not yes:
        kept = "kept" if messages == "keep" else "removed"
        question = f"Erase {found.username} ({found.id}) for good, their messages {kept}?"
        if not click.confirm(question, default=False):
            raise CommandError("nothing erased")
    erasure = await admin.erase(app, None, found.id, "remove" if messages == "remove" else "keep")
    click.echo(
        f"erased {found.id}: left {len(erasure.rooms)} rooms, "
        f"{len(erasure.removed_messages)} messages removed"
    )


@user.command("reset-password")
@click.argument("name")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (for scripts)."
)
@with_app()
async def user_reset_password(app: App, name: str, password_stdin: bool) -> None:
    """Set a new password for NAME (asks twice unless --password-stdin). Their logins stay;
    end them with `chatcore user logins NAME --end-all`."""
    from chatcore.server import admin

    found = await _named_user(app, name)
    await admin.reset_password(app, None, found.id, _read_password(password_stdin))
    click.echo(f"the password of {found.username} is changed")


@user.command("logins")
@click.argument("name")
@click.option("--end", "end_id", default=None, metavar="ID", help="End this login of NAME.")
@click.option("--end-all", is_flag=True, help="End every live login of NAME.")
@with_app()
async def user_logins(app: App, name: str, end_id: str | None, end_all: bool) -> None:
    """List NAME's logins (newest first), or end one or all of them on every node."""
    from chatcore.server import admin

    found = await _named_user(app, name)
    if end_id is not None and end_all:
        raise CommandError("use --end ID or --end-all, not both")
    if end_id is not None or end_all:
        ended = await admin.end_user_logins(app, None, found.id, end_id)
        click.echo(f"ended {len(ended)} logins of {found.username}")
        return
    logins = await app.storage.user_logins(found.id, admin.LOGINS_MAX)
    if not logins:
        click.echo(f"{found.username} has no logins")
    for login in logins:
        state = "live" if login.ended_ts is None else f"ended {_when(login.ended_ts)}"
        click.echo(
            f"{login.id}  started {_when(login.created_ts)}  "
            f"last used {_when(login.last_used_ts)}  {state}"
        )


def _when(ts: int) -> str:
    """A time in ms as the console shows it: UTC, to the second."""
    import datetime

    moment = datetime.datetime.fromtimestamp(ts / 1000, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


@click.command("audit")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 200))
@click.option("--before", default=None, metavar="ID", help="Only entries older than this one.")
@with_app()
async def audit_list(app: App, limit: int, before: str | None) -> None:
    """List the audit log, newest first: id, time, who, action, target, details."""
    import orjson

    from chatcore.server import audit

    entries, _ = await audit.page(app, limit, before)
    if not entries:
        click.echo("the audit log has no entries" + (" before that one" if before else ""))
    for entry in entries:
        actor = entry.actor_id or "console"
        room = f"  room {entry.room_id}" if entry.room_id else ""
        details = orjson.dumps(entry.details).decode()
        click.echo(
            f"{entry.id}  {_when(entry.ts)}  {actor}  {entry.action}  "
            f"{entry.target_kind} {entry.target_id}{room}  {details}"
        )


@click.group()
def retention() -> None:
    """Message retention (docs/protocol.md, Retention)."""


@retention.command("run")
@click.option(
    "--now-ms",
    type=click.IntRange(0),
    default=None,
    hidden=True,
    help="Run as if it were this Unix time in ms (tests: no waiting for days).",
)
@with_app()
async def retention_run(app: App, now_ms: int | None) -> None:
    """Run one retention pass now (unless another node is running one)."""
    from chatcore.server.retention import run_pass

    report = await run_pass(app, now_ts=now_ms)
    if not report.ran:
        raise CommandError("another node is running the retention job now; try again later")
    click.echo(
        f"deleted {report.messages} messages in {report.rooms} rooms, {report.media} media "
        f"({report.blobs} stored files)"
    )


def build_cli(config_path: str | None) -> click.Group:
    """The root group with the core commands plus every plugin's commands."""
    from chatcore.client.cli import client_group  # it imports this module's helpers

    root = RootGroup(
        "chatcore",
        help="chatcore: a plugin-based chat server and client.",
        commands=[serve, check_config, list_plugins, user, audit_list, retention, client_group],
    )
    root = click.version_option(chatcore.__version__, prog_name="chatcore")(root)
    call_all_sync(_plugin_host(config_path).hook.chatcore_register_commands, cli=root)
    return root


def _plugin_host(config_path: str | None) -> PluginHost:
    # A broken config still gets a working CLI: its command reports the problem itself.
    try:
        raw = read_config_file(config_path)
        role = config_role(raw, str(config_path))
    except ConfigError:
        return PluginHost.load()
    try:
        modules, disabled = plugin_lists(raw, str(config_path))
        return PluginHost.load(modules, disabled, role=role)
    except (ConfigError, PluginError):
        return PluginHost.load(role=role)


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
    if args[:1] == ["--version"]:  # what click's version option prints, without the plugins
        click.echo(f"chatcore, version {chatcore.__version__}")
        return
    try:
        build_cli(_config_in(args)).main(args=args, prog_name="chatcore")
    except MissingExtra as exc:
        # Raised while a config is checked (a key only the missing package can check), before
        # any command's own error handling runs.
        error = CommandError(str(exc))
        error.show()
        raise SystemExit(error.exit_code) from None
