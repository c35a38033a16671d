"""`chatcore client ...`: the client library from the command line, for scripts and checks.

Every command takes `--config FILE` (a `role = "client"` config) and `--json` (machine-readable
output: one JSON document, or one JSON object per line for `tail`). Reading commands (`rooms`,
`contacts`, `history`, `outbox`, `search`) read the device store and work with the server down;
`send` queues in the outbox first, so a message typed offline is never lost.

    echo "$PASSWORD" | chatcore client --config client.toml login ann --password-stdin
    chatcore client --config client.toml send ROOM_ID "hello"      # prints sent or queued
    chatcore client --config client.toml tail --json                # one event per line
"""

from __future__ import annotations

import asyncio
import functools
import getpass
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import orjson

from chatcore.cli import CommandError, _root_option, config_errors_reported, config_option
from chatcore.client.errors import ClientError, OutboxError
from chatcore.client.events import as_json, event_line
from chatcore.errors import StartupError
from chatcore.extras import MissingExtra
from chatcore.logs import setup_logging

if TYPE_CHECKING:
    from chatcore.client.app import Client
    from chatcore.client.models import PushNotice

#: How long `send` waits for the ack by default (seconds) before it answers `queued`.
DEFAULT_SEND_WAIT = 10.0

json_option = click.option("--json", "as_json_output", is_flag=True, help="Print JSON.")


@click.group("client", invoke_without_command=True)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="The client's TOML config file (role client), for every subcommand.",
)
@click.pass_context
def client_group(ctx: click.Context, config_path: str | None) -> None:
    """The chat app: with no subcommand, its user interface (the terminal client); the
    subcommands use its engine from the command line (role client)."""
    if ctx.invoked_subcommand is None:
        run_ui(load_client(config_path or _root_option("config_path")), None)


def run_ui(client: Client, push: PushNotice | None) -> None:
    """Run the user interface a plugin provides (`chatcore_client_ui`) until the user quits."""
    ui = client.plugins.hook.chatcore_client_ui(client=client, push=push)
    if ui is None:
        hint = client.plugins.skipped_hint()
        raise CommandError(
            "no plugin provides a user interface (pip install 'chatcore[tui]' for the terminal"
            " client; the subcommands work without one: chatcore client --help)"
            + (f"; {hint}" if hint else "")
        )
    try:
        ui.run()
    except (ClientError, StartupError) as exc:
        raise CommandError(str(exc)) from None


def load_client(config_path: str | None) -> Client:
    """A Client from a config file; config and plugin errors become a clean exit."""
    from chatcore.client import EXTRA

    try:
        EXTRA.require()  # before importing the engine, which imports httpx
    except MissingExtra as exc:
        raise CommandError(str(exc)) from None
    from chatcore.client.app import Client

    with config_errors_reported():
        client = Client.from_config(config_path)
    setup_logging(client.settings.logging, one_shot=True, verbose=bool(_root_option("verbose")))
    return client


def with_client(*, connect: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a command: add `--config` and `--json`, pass a started Client first.

    The command is a coroutine function run in a fresh event loop; `connect` starts the
    connection (commands that only read the device store do not). Client, API and startup
    errors become one line `error: ...`, exit 1.
    """

    def decorate(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
        @config_option
        @json_option
        @functools.wraps(fn)
        def command(config_path: str | None, **kwargs: Any) -> Any:
            client = load_client(config_path)

            async def run() -> Any:
                await client.start(connect=connect)
                try:
                    if connect and not client.logged_in:
                        raise CommandError(
                            "nobody is logged in on this device: chatcore client login NAME"
                        )
                    return await fn(client, **kwargs)
                finally:
                    await client.close()

            try:
                return asyncio.run(run())
            except (ClientError, StartupError) as exc:
                raise CommandError(str(exc)) from None

        return command

    return decorate


def emit(data: Any, as_json_output: bool, text: str) -> None:
    """Print `data` as JSON with `--json`, else the human line(s) `text`."""
    if as_json_output:
        click.echo(orjson.dumps(data, default=_jsonable).decode())
    elif text:
        click.echo(text)


def _jsonable(value: Any) -> Any:
    wire = getattr(value, "model_dump", None)
    if wire is not None:
        return wire(mode="json", exclude_none=True)
    raise TypeError(f"cannot print {type(value).__name__} as JSON")


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    return getpass.getpass("Password: ")


password_option = click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (for scripts)."
)


# --- account ---------------------------------------------------------------------------------


@client_group.command("login")
@click.argument("username")
@password_option
@with_client()
async def login(client: Client, username: str, password_stdin: bool, as_json_output: bool) -> None:
    """Log in on this device (the tokens are kept in the device store)."""
    user = await client.login(username, _read_password(password_stdin))
    emit({"user": user}, as_json_output, f"logged in as {user.username} ({user.id})")


@client_group.command("register")
@click.argument("username")
@password_option
@click.option("--display-name", default=None, help="Shown instead of the username.")
@with_client()
async def register(
    client: Client,
    username: str,
    password_stdin: bool,
    display_name: str | None,
    as_json_output: bool,
) -> None:
    """Create an account on the server (then log in with `login`)."""
    user = await client.register(username, _read_password(password_stdin), display_name)
    emit({"user": user}, as_json_output, f"registered {user.username} ({user.id})")


@client_group.command("logout")
@with_client()
async def logout(client: Client, as_json_output: bool) -> None:
    """End this device's login on the server (history stays readable here)."""
    await client.logout()
    emit({"logged_out": True}, as_json_output, "logged out")


@client_group.command("whoami")
@with_client()
async def whoami(client: Client, as_json_output: bool) -> None:
    """Who is logged in on this device, on which server (from the device store)."""
    account = client.account
    if account is None:
        raise CommandError("nobody has logged in on this device: chatcore client login NAME")
    state = "logged in" if account.tokens is not None else "logged out"
    emit(
        {"user": account.user, "server_url": account.server_url, "logged_in": state == "logged in"},
        as_json_output,
        f"{account.user.username} ({account.user.id}) on {account.server_url}, {state}",
    )


# --- reading the device store ------------------------------------------------------------------


@client_group.command("rooms")
@with_client()
async def rooms(client: Client, as_json_output: bool) -> None:
    """The rooms on this device, most recently active first, with unread counts."""
    summaries = await client.rooms()
    lines = []
    for s in summaries:
        name = s.room.name or "(direct)"
        last = s.last_message.body[:60] if s.last_message else ""
        lines.append(f"{s.room.id}  {s.room.kind:<6}  {name}  unread {s.unread}  {last}")
    emit({"rooms": summaries}, as_json_output, "\n".join(lines) or "no rooms")


@client_group.command("contacts")
@with_client()
async def contacts(client: Client, as_json_output: bool) -> None:
    """Contacts with their last known presence, and pending invitations."""
    found = await client.contacts()
    incoming, outgoing = await client.invitations()
    lines = [f"{c.user.id}  {c.user.username}  {c.presence}" for c in found]
    lines += [f"invited by {i.from_user.username}  ({i.id})" for i in incoming]
    lines += [f"invited {i.to_user.username}  ({i.id})" for i in outgoing]
    data = {"contacts": found, "incoming": incoming, "outgoing": outgoing}
    emit(data, as_json_output, "\n".join(lines) or "no contacts")


@client_group.command("history")
@click.argument("room_id")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10_000))
@with_client()
async def history(client: Client, room_id: str, limit: int, as_json_output: bool) -> None:
    """A room's newest messages from the device store, oldest first (works offline)."""
    if await client.room(room_id) is None:
        raise CommandError(f"no room {room_id} on this device (run `chatcore client sync`)")
    messages = list(reversed(await client.history(room_id, limit=limit)))
    lines = [f"{m.seq:>6}  {m.sender_id}  {_shown_body(m)}" for m in messages]
    emit({"messages": messages}, as_json_output, "\n".join(lines) or "no messages")


@client_group.command("outbox")
@with_client()
async def outbox(client: Client, as_json_output: bool) -> None:
    """Sends not acknowledged yet (pending) or refused by the server (failed)."""
    entries = await client.outbox()
    lines = [
        f"{e.ref}  {e.room_id}  {e.state}"
        + (f" ({e.error_message})" if e.error_message else "")
        + f"  {e.body[:60]}"
        for e in entries
    ]
    emit({"outbox": entries}, as_json_output, "\n".join(lines) or "outbox empty")


@client_group.command("search")
@click.argument("text")
@click.option("--room", "room_id", default=None, help="Only this room.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@with_client()
async def search(
    client: Client, text: str, room_id: str | None, limit: int, as_json_output: bool
) -> None:
    """Full-text search over the messages stored on this device, newest first."""
    found = await client.search(text, room_id=room_id, limit=limit)
    lines = [f"{m.room_id}  {m.seq:>6}  {m.sender_id}  {m.body}" for m in found]
    emit({"messages": found}, as_json_output, "\n".join(lines) or "nothing found")


def _shown_body(message: Any) -> str:
    if message.deleted:
        return "(deleted)"
    if message.kind == "media":
        return f"[file {message.media_id}] {message.body}".rstrip()
    if message.kind == "sticker":
        return f"[sticker {message.sticker_id}]"
    return str(message.body)


# --- talking to the server ---------------------------------------------------------------------


@client_group.command("open")
@click.argument("username")
@with_client()
async def open_direct(client: Client, username: str, as_json_output: bool) -> None:
    """The direct room with a user (made when missing): prints its id."""
    found = [
        u
        for u in await client.api.search_users(username, limit=50)
        if u.username.lower() == username.lower()
    ]
    if not found:
        raise CommandError(f"no user named {username!r} on the server")
    room = await client.api.create_direct(found[0].id)
    await client.store.save_rooms([room])
    emit({"room": room}, as_json_output, room.id)


@client_group.command("send")
@click.argument("room_id")
@click.argument("text")
@click.option(
    "--wait",
    default=DEFAULT_SEND_WAIT,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds to wait for the server's ack before answering `queued`.",
)
@click.option("--file", "file_path", type=click.Path(dir_okay=False, exists=True), default=None)
@with_client(connect=True)
async def send(
    client: Client,
    room_id: str,
    text: str,
    wait: float,
    file_path: str | None,
    as_json_output: bool,
) -> None:
    """Queue a message in the outbox and wait for the ack: prints `sent` or `queued` (exit 0).

    A send the server refuses exits 1 with the server's reason; it stays in the outbox as
    failed (see `outbox`). A queued one is sent by the next `sync`, `tail` or app start.
    """
    if file_path is not None:
        entry = await client.send_file(room_id, Path(file_path))
    else:
        entry = await client.send(room_id, text)
    try:
        async with asyncio.timeout(wait):
            message = await client.wait_sent(entry.ref)
    except TimeoutError:
        emit({"state": "queued", "ref": entry.ref}, as_json_output, "queued")
        return
    except OutboxError as exc:
        raise CommandError(str(exc)) from None
    emit({"state": "sent", "message": message}, as_json_output, "sent")


@client_group.command("sync")
@click.option("--timeout", "limit", default=60.0, show_default=True, type=click.FloatRange(0))
@with_client(connect=True)
async def sync(client: Client, limit: float, as_json_output: bool) -> None:
    """Connect, send the outbox, catch every room up, then exit."""
    try:
        async with asyncio.timeout(limit):
            await client.sync()
    except TimeoutError:
        raise CommandError(
            f"not synced after {limit:g} s (connection: {client.connection_state})"
        ) from None
    summaries = await client.rooms()
    failed = [e for e in await client.outbox() if e.state == "failed"]
    text = f"synced {len(summaries)} rooms" + (f"; {len(failed)} failed sends" if failed else "")
    emit({"rooms": len(summaries), "failed": failed}, as_json_output, text)


@client_group.command("tail")
@with_client(connect=True)
async def tail(client: Client, as_json_output: bool) -> None:
    """Stay connected and print every event as a line (JSON Lines with --json) until Ctrl-C."""
    async for event in client.events():
        if as_json_output:
            click.echo(orjson.dumps(as_json(event)).decode())
        else:
            click.echo(event_line(event))
        sys.stdout.flush()


@client_group.command("push-device")
@click.argument("platform", type=click.Choice(["webhook", "webpush", "fcm", "apns"]))
@click.option("--endpoint", default=None, help="webhook, webpush: the URL pushes go to.")
@click.option("--token", default=None, help="fcm, apns: the device token.")
@with_client()
async def push_device(
    client: Client, platform: str, endpoint: str | None, token: str | None, as_json_output: bool
) -> None:
    """Register this device for pushes (e.g. webhook to a push-receiver); prints its id."""
    device = await client.api.add_push_device(platform, endpoint=endpoint, token=token)
    emit({"device": device}, as_json_output, device.id)


@client_group.command("push-receiver")
@click.option(
    "--listen",
    default="127.0.0.1:8090",
    show_default=True,
    help="HOST:PORT where the server's webhook pushes arrive.",
)
@with_client()
async def push_receiver(client: Client, listen: str, as_json_output: bool) -> None:
    """Receive webhook pushes (signature checked), store their messages, print each one.

    Runs beside the app on the same device store; register its URL with the server as a
    `webhook` push device, e.g. http://127.0.0.1:8090/push.
    """
    from chatcore.client.push_receiver import serve_webhooks

    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise CommandError(f"--listen {listen!r}: expected HOST:PORT")

    async def show(event: Any) -> None:
        if as_json_output:
            click.echo(orjson.dumps(as_json(event)).decode())
        else:
            click.echo(event_line(event))
        sys.stdout.flush()

    await serve_webhooks(client, host, int(port), on_event=show)


@client_group.command("reply-to-push")
@config_option
@click.option(
    "--push",
    "push_file",
    type=click.File("rb"),
    default="-",
    show_default=True,
    help="A file holding the push's JSON as it arrived (webhook body, Web Push data, FCM or"
    " APNs payload); - reads standard input.",
)
def reply_to_push(config_path: str | None, push_file: Any) -> None:
    """Answer a push without opening the app: its quick-reply box alone (e.g. the action of a
    desktop notification). The push's message is stored on the device first."""
    payload = push_file.read()
    client = load_client(config_path)

    async def understood() -> PushNotice:
        await client.start(connect=False)
        try:
            return await client.handle_push(payload)
        finally:
            await client.close()

    try:
        notice = asyncio.run(understood())
    except (ClientError, StartupError) as exc:
        raise CommandError(str(exc)) from None
    # The UI starts a client of its own: a closed one cannot start again.
    run_ui(load_client(config_path), notice)
