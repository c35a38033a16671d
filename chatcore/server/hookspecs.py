"""The server role's hooks: backends, transports, routes, message events and pushes.

The plugin host adds them, besides the kernel's (`chatcore.hookspecs`, which also explains how
hooks are called), when the config's `role` is `server`. A plugin that serves only the client
role and implements one of them fails to load.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chatcore.hookspecs import hookspec

if TYPE_CHECKING:
    from chatcore.interfaces import AuthBackend, Broker, MediaStore, Storage, Transport
    from chatcore.models import User
    from chatcore.routes import Route
    from chatcore.server.app import App


# --- providers ------------------------------------------------------------------------------


@hookspec(firstresult=True)
def chatcore_storage(app: App) -> Storage | None:
    """Build the storage backend selected by `app.settings.storage.url`.

    First answer wins; answer None for a URL this plugin does not handle. May be async. The
    engine calls `start()` on the result before serving and `close()` at shutdown.

    When `app.may_migrate` is False (admin commands: `App.start(migrate=False)`), the storage
    must not change the schema or create a database, whatever its own settings say: its
    `start()` checks the schema and raises `chatcore.server.app.StartupError` when it is missing or
    older, naming the command that upgrades it (`chatcore db upgrade` for chatcore_sql).
    """


@hookspec(firstresult=True)
def chatcore_auth_backend(app: App) -> AuthBackend | None:
    """Build the auth backend (passwords, access and refresh tokens).

    First answer wins. May be async. Called after storage and broker exist (`app.storage`,
    `app.broker`), so the backend can use them.
    """


@hookspec(firstresult=True)
def chatcore_broker(app: App) -> Broker | None:
    """Build the broker selected by `app.settings.broker.url` (`memory://`, `redis://`, ...).

    First answer wins; answer None for a URL this plugin does not handle. May be async.
    """


@hookspec(firstresult=True)
def chatcore_media_store(app: App) -> MediaStore | None:
    """Build the media store selected by `app.settings.media.url` (an fsspec URL).

    First answer wins; answer None for a URL this plugin does not handle. May be async. A
    server without a media store serves no media endpoints.
    """


@hookspec
def chatcore_sticker_packs(app: App) -> list[Any] | None:
    """Contribute sticker packs, imported when a server node starts.

    Return a list of paths (`str` or `os.PathLike`), each a folder or a zip file laid out as
    for `chatcore stickers import` (image files, optionally a `pack.json` with the pack's `id`,
    `name` and each sticker's `emoji`). All answers are used. May be async. Called after the
    other startup hooks, only when a media store exists; importing is idempotent (the same files
    give the same pack and sticker ids), so every node may import the same packs. A pack that
    cannot be imported stops start-up with the reason.
    """


@hookspec
def chatcore_transports(app: App) -> Transport | list[Transport] | None:
    """Contribute listeners: the REST API, the WebSocket server, ...

    All answers are used; an answer may be one transport or a list. May be async. Transports
    start after storage, broker and auth, in call order, and stop in reverse order.
    """


@hookspec
def chatcore_push_adapters(app: App) -> list[Any] | None:
    """Contribute push adapters (Web Push, FCM, APNs, webhook). All answers are used."""


@hookspec
def chatcore_register_routes(app: App) -> list[Route] | None:
    """Contribute REST routes, framework-neutral (`chatcore.routes.Route`).

    All answers are used. Paths are relative to `/api/v1` unless they start with `//`, which
    mounts them at the server root. A handler receives a `chatcore.routes.Request` and returns
    a JSON-able object (status 200), a `chatcore.routes.Response`, or raises `ChatError`.
    Routes require a valid access token unless declared with `auth=False`. Sync only.
    """


# --- events and filters ---------------------------------------------------------------------


@hookspec
def chatcore_user_registered(app: App, user: User) -> None:
    """Observe a new user, after it is stored. All run; may be async; failures are logged."""


@hookspec
def chatcore_check_message(app: App, sender: User, draft: dict[str, Any]) -> dict[str, Any] | None:
    """Moderate a message before it is stored.

    `draft` holds the client's `room_id`, `kind`, `body`, `media_id`, `sticker_id`,
    `reply_to`. Return None to accept it as it is, or a new draft to rewrite it (the next
    plugin sees the rewrite); raise `ChatError` (usually `forbidden`) to reject it with a
    reason the sender sees. Called in order; may be async. Runs once per message, never per
    recipient. It sees neither retries nor sends by non-members; a send into a direct room
    across a block is refused by storage after it, so a moderator may see one that is then
    refused.
    """


@hookspec
def chatcore_message_stored(app: App, message: Any) -> None:
    """Observe a message after it is committed (bots, webhooks, indexers).

    All run; may be async. Runs after delivery has been started, never delays the `ack`; a
    failing observer is logged and never breaks delivery.
    """


@hookspec
def chatcore_notify(
    app: App, push: dict[str, Any], user_id: str, settings: dict[str, Any], message: Any
) -> dict[str, Any] | bool | None:
    """Decide the push of a new message to a member with no live session on any node.

    Called once per recipient (the push then goes to each of their devices): `push` is what
    the adapters get (see `chatcore.interfaces.PushAdapter`: room and message ids, seq, ts,
    sender, room name, a preview, `direct`, `mention`), `user_id` the recipient, `settings`
    their user settings (read once for all the hooks; do not change it), `message` the stored
    `Message`. Return None to leave the push, a changed push to alter it, or False to veto
    it. Called in order, each sees the previous change; the first False stops it. May be
    async; never delays delivery (pushes are routed after the message went out). A failing
    implementation is logged and skipped.

    The core's own implementation (`chatcore.push_rules`) runs last: it applies the
    recipient's `push` settings (off, per-room and per-kind levels, do-not-disturb hours, no
    preview), so other plugins see the full push. A server with `[push] privacy = "id_only"`
    strips the push to its ids after every implementation has run.
    """
