"""The client role assembled: `chatcore.Client`, the one object a program or a UI holds.

    async with chatcore.Client.from_config("config/client.toml") as client:
        if client.account is None:
            await client.login("ann", password)
        await client.send(room_id, "hello")          # queued in the outbox, sent when online
        async for event in client.events():          # ordered, typed (chatcore.client.events)
            ...

It is assembled from the client role's plugins like a server node from the server's: the
device store and the media cache come from provider hooks, every event also goes through the
`chatcore_client_event` hook. Everything readable (`rooms`, `history`, `contacts`, `outbox`,
`search`) is read from the device store, so it works with the server down; the connection
(`chatcore.client.connection`) keeps the store up to date while it can.

SKELETON: signatures and docstrings are the contract; bodies arrive with the implementation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from typing import Any

from chatcore.client.api import Api
from chatcore.client.events import ClientEvent, ConnectionState
from chatcore.client.interfaces import DeviceStore, MediaCache
from chatcore.client.models import (
    Account,
    CachedFile,
    Contact,
    Invitation,
    Message,
    OutboxEntry,
    PushNotice,
    RoomSummary,
    User,
)
from chatcore.plugins import PluginHost
from chatcore.settings import Settings


class Client:
    """A chat app's engine: one account on one server, its device store and media cache."""

    def __init__(self, settings: Settings, plugins: PluginHost, source: str = "<config>") -> None:
        raise NotImplementedError

    @classmethod
    def from_config(
        cls,
        path: str | Path | None = None,
        *,
        overrides: Mapping[str, Any] | None = None,
        extra_plugins: Iterable[object] = (),
        entry_points: bool = True,
    ) -> Client:
        """Read `path` (TOML, `role = "client"`), apply `overrides`, load the client's plugins,
        validate. Raises `ConfigError` or `PluginError` before anything starts."""
        raise NotImplementedError

    @classmethod
    def for_server(cls, server_url: str, data_dir: str | Path, **settings: Any) -> Client:
        """A client without a config file: `server_url`, its device store and media cache in
        `data_dir`; `settings` are more `[client]` keys (e.g. `ping_interval_seconds=5`)."""
        raise NotImplementedError

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self, *, connect: bool = True) -> None:
        """Open the device store and media cache; with `connect` (and an account logged in),
        start the connection in the background (it reconnects by itself until `close`)."""
        raise NotImplementedError

    async def close(self) -> None:
        """Stop the connection, close the store and cache. The outbox stays for next time."""
        raise NotImplementedError

    async def __aenter__(self) -> Client:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- parts -------------------------------------------------------------------------------

    settings: Settings
    plugins: PluginHost

    @property
    def api(self) -> Api:
        raise NotImplementedError

    @property
    def store(self) -> DeviceStore:
        raise NotImplementedError

    @property
    def media_cache(self) -> MediaCache:
        raise NotImplementedError

    @property
    def account(self) -> Account | None:
        """Who is logged in here (from the device store), None before the first login."""
        raise NotImplementedError

    @property
    def user(self) -> User:
        """The logged-in user; `LoggedOut` when none."""
        raise NotImplementedError

    @property
    def connection_state(self) -> ConnectionState:
        raise NotImplementedError

    # --- account -----------------------------------------------------------------------------

    async def register(self, username: str, password: str, display_name: str | None = None) -> User:
        raise NotImplementedError

    async def login(self, username: str, password: str) -> User:
        """Log in, keep the tokens in the device store, and connect (when started with it)."""
        raise NotImplementedError

    async def logout(self) -> None:
        """End the login on the server (every token of it, on every node) and forget the
        tokens here; history stays readable until another account logs in."""
        raise NotImplementedError

    # --- events ------------------------------------------------------------------------------

    def events(self) -> AsyncIterator[ClientEvent]:
        """Every event from now on, in order, until the client closes. Each call is its own
        subscriber; an iterator nobody reads keeps its events queued (memory)."""
        raise NotImplementedError

    async def wait_for_state(self, state: ConnectionState) -> None:
        """Return once the connection is in `state` (at once if it is). Bound it with
        `asyncio.timeout`."""
        raise NotImplementedError

    async def sync(self) -> None:
        """Connect if needed, wait until every room is caught up and the outbox holds nothing
        but failed entries. Bound it with `asyncio.timeout`."""
        raise NotImplementedError

    # --- reading (device store: works offline) --------------------------------------------------

    async def rooms(self) -> list[RoomSummary]:
        raise NotImplementedError

    async def room(self, room_id: str) -> RoomSummary | None:
        raise NotImplementedError

    async def history(
        self, room_id: str, *, before_seq: int | None = None, limit: int = 50
    ) -> list[Message]:
        """Stored messages, newest first; when the store holds fewer than `limit` below
        `before_seq` and the server is reachable, older pages are fetched and stored first."""
        raise NotImplementedError

    async def search(
        self, text: str, *, room_id: str | None = None, limit: int = 50
    ) -> list[Message]:
        raise NotImplementedError

    async def contacts(self) -> list[Contact]:
        raise NotImplementedError

    async def invitations(self) -> tuple[list[Invitation], list[Invitation]]:
        raise NotImplementedError

    # --- sending (outbox: works offline) -------------------------------------------------------

    async def send(self, room_id: str, body: str, *, reply_to: str | None = None) -> OutboxEntry:
        """Queue a text message: stored with its local echo before any network call; sent
        (and re-sent with the same ref after reconnects) until acked. Returns the entry."""
        raise NotImplementedError

    async def send_file(
        self, room_id: str, path: str | Path, *, reply_to: str | None = None
    ) -> OutboxEntry:
        """Queue a file: uploaded when online, then sent as a media message."""
        raise NotImplementedError

    async def send_sticker(self, room_id: str, sticker_id: str) -> OutboxEntry:
        raise NotImplementedError

    async def outbox(self, room_id: str | None = None) -> list[OutboxEntry]:
        """Pending and failed sends, in send order."""
        raise NotImplementedError

    async def resend(self, ref: str) -> OutboxEntry:
        """Queue a failed entry again (same ref)."""
        raise NotImplementedError

    async def edit_pending(self, ref: str, body: str) -> OutboxEntry:
        """Change the text of an entry not yet transmitted, or failed; `OutboxError` else."""
        raise NotImplementedError

    async def cancel(self, ref: str) -> OutboxEntry:
        """Drop an entry not yet transmitted, or failed; `OutboxError` else."""
        raise NotImplementedError

    async def wait_sent(self, ref: str) -> Message:
        """The stored message once `ref` is acked; `OutboxError` when it failed."""
        raise NotImplementedError

    # --- live (need the connection; ignored offline) ----------------------------------------------

    async def mark_read(self, room_id: str, seq: int) -> None:
        """Record the read position on the device now, and on the server when connected."""
        raise NotImplementedError

    async def typing(self, room_id: str, active: bool = True) -> None:
        raise NotImplementedError

    # --- media -------------------------------------------------------------------------------

    async def open_media(self, media_id: str, *, thumbnail: int | None = None) -> CachedFile:
        """The file of a media (or its thumbnail), from the cache when there, else downloaded
        into it. A file over the cache's per-file cap is written to a temporary file."""
        raise NotImplementedError

    # --- pushes ------------------------------------------------------------------------------

    async def handle_push(self, push: Mapping[str, Any]) -> PushNotice:
        """A push's payload (see `chatcore.client.push`) into a `PushReceived` event; fetches
        and stores the message of an id-only push when the server is reachable."""
        raise NotImplementedError

    async def reply(self, room_id: str, body: str, *, reply_to: str | None = None) -> OutboxEntry:
        """Answer in a room without opening it (a notification's quick reply): queued like any
        send, and sent through REST at once when no connection is up."""
        raise NotImplementedError
