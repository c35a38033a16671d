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

The parts, each in its module: the event stream (`stream`), the outbox's operations
(`outbox`) and its sender (`sender`), the storing of arriving messages (`inbox`), the
connection (`connection`) with its catch-up (`sync`) and frame handling (`live`), and the lock
that lets one process of the device hold the connection (`lock`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from chatcore.assembly import assemble
from chatcore.client.api import Api
from chatcore.client.connection import Connection
from chatcore.client.errors import ApiError, ApiUnavailable, ClientError, LoggedOut, OutboxError
from chatcore.client.events import (
    ClientEvent,
    ConnectionState,
    MessageUpdated,
    RoomChanged,
)
from chatcore.client.inbox import Inbox
from chatcore.client.interfaces import DeviceStore, MediaCache
from chatcore.client.live import contact_changed, refresh_contacts
from chatcore.client.lock import EngineLock, held_exclusively, lock_path, login_lock_path
from chatcore.client.media import MediaClient
from chatcore.client.models import (
    Account,
    CachedFile,
    Contact,
    Invitation,
    Message,
    OutboxEntry,
    PushNotice,
    Room,
    RoomSummary,
    StickerPack,
    Tokens,
    User,
)
from chatcore.client.outbox import Outbox, new_entry
from chatcore.client.sender import RETRIED_CODES
from chatcore.client.stream import EventStream
from chatcore.errors import StartupError
from chatcore.failures import one_line
from chatcore.hooks import call_all, call_first, call_observers
from chatcore.plugins import PluginHost
from chatcore.settings import Settings

#: `sync` reads the outbox at most this often while waiting for it to empty.
SYNC_POLL_SECONDS = 0.05
#: How many users `users()` asks the server for at once.
USER_FETCHES = 8
#: The device settings' keys: this device's preferences, and the server settings last seen.
PREFERENCES = "preferences"
SERVER_SETTINGS = "server_settings"
#: The connection's `detail` in a process that does not hold the device's engine lock.
ANOTHER_PROCESS = "Another process of this device is connected; this one reads and queues only."


class Client:
    """A chat app's engine: one account on one server, its device store and media cache."""

    def __init__(self, settings: Settings, plugins: PluginHost, source: str = "<config>") -> None:
        self.settings = settings
        self.plugins = plugins
        self.source = source
        self._store: DeviceStore | None = None
        self._cache: MediaCache | None = None
        self._api: Api | None = None
        self._media: MediaClient | None = None
        self._account: Account | None = None
        self._stream = EventStream(self._dispatch)
        self._outbox: Outbox | None = None
        self._inbox: Inbox | None = None
        self._connection: Connection | None = None
        self._lock = EngineLock(lock_path(settings.device_store.path))
        self._connect = False
        self._started = False
        self._closed = False
        self._unknown_users: set[str] = set()

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
        assembled = assemble(
            path,
            overrides=overrides,
            extra_plugins=extra_plugins,
            entry_points=entry_points,
            role="client",
        )
        return cls(assembled.settings, assembled.plugins, assembled.source)

    @classmethod
    def for_server(cls, server_url: str, data_dir: str | Path, **settings: Any) -> Client:
        """A client without a config file: `server_url`, its device store and media cache in
        `data_dir`; `settings` are more `[client]` keys (e.g. `ping_interval_seconds=5`)."""
        folder = Path(data_dir)
        overrides = {
            "role": "client",
            "client": {"server_url": server_url, **settings},
            "device_store": {"path": str(folder / "client.db")},
            "media_cache": {"path": str(folder / "media-cache")},
        }
        return cls.from_config(None, overrides=overrides)

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self, *, connect: bool = True) -> None:
        """Open the device store and media cache; with `connect` (and an account logged in),
        start the connection in the background (it reconnects by itself until `close`)."""
        if self._started:
            return
        if self._closed:
            raise StartupError("this client was closed; make a new one")
        if self.settings.role != "client":
            raise StartupError(f"{self.source}: role {self.settings.role!r} is not a client")
        self._connect = connect
        try:
            self._store = await self._provide(
                "chatcore_device_store", "device store", "device_store"
            )
            self._cache = await self._provide("chatcore_media_cache", "media cache", "media_cache")
            self._account = await self._store.get_account()
            client = self.settings.client
            self._api = Api(
                client.server_url,
                tokens=self._usable_tokens(self._account),
                on_tokens=self._tokens_changed,
                timeout=client.request_timeout_seconds,
                shared=_DeviceLogin(self),
            )
            self._media = MediaClient(self._api, self._cache)
            self._stream.start()
            self._outbox = Outbox(self._store, self._stream)
            self._inbox = Inbox(self._store, self._api, self._stream, self._outbox, self._me)
            self._connection = Connection(
                settings=client,
                api=self._api,
                store=self._store,
                stream=self._stream,
                inbox=self._inbox,
                outbox=self._outbox,
                media=self._media,
                me=self._me,
            )
            if not self.logged_in:
                self._connection.state = "logged_out"
            self._started = True
            await call_all(self.plugins.hook.chatcore_startup, app=self)
            if connect:
                await self._take_connection()
        except BaseException:
            await self.close()
            raise

    async def _provide(self, hook_name: str, what: str, section: str) -> Any:
        backend = await call_first(getattr(self.plugins.hook, hook_name), client=self)
        if backend is None:
            hint = self.plugins.skipped_hint() or "is its plugin installed?"
            raise StartupError(
                f"no plugin provides the {what}: the {hook_name} hook had no answer for the "
                f"[{section}] section; {hint}"
            )
        try:
            await backend.open()
        except OSError as exc:
            raise StartupError(f"the {what} cannot open: {one_line(exc)}") from exc
        return backend

    async def close(self) -> None:
        """Stop the connection, close the store and cache. The outbox stays for next time."""
        if self._closed:
            return
        self._closed = True
        if self._connection is not None:
            await self._connection.stop()
        await self._lock.release()
        if self._started:
            await call_observers(self.plugins.hook.chatcore_shutdown, app=self, reverse=True)
        await self._stream.close()
        # The API first: a token refresh in flight still reaches the store (`_tokens_changed`).
        for part in (self._api, self._cache, self._store):
            if part is not None:
                with contextlib.suppress(Exception):
                    await (part.aclose() if isinstance(part, Api) else part.close())

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
        return _started(self._api, "API")

    @property
    def store(self) -> DeviceStore:
        return _started(self._store, "device store")

    @property
    def media_cache(self) -> MediaCache:
        return _started(self._cache, "media cache")

    @property
    def media(self) -> MediaClient:
        """Downloads through the media cache, uploads through the API."""
        return _started(self._media, "media client")

    @property
    def account(self) -> Account | None:
        """Who is logged in here (from the device store), None before the first login."""
        return self._account

    @property
    def logged_in(self) -> bool:
        return self._usable_tokens(self._account) is not None

    @property
    def user(self) -> User:
        """The logged-in user; `LoggedOut` when none."""
        account = self._account
        if account is None or self._usable_tokens(account) is None:
            raise LoggedOut()
        return account.user

    @property
    def connection_state(self) -> ConnectionState:
        return "offline" if self._connection is None else self._connection.state

    @property
    def connection_detail(self) -> str:
        """Why the connection is in its state, for a person (empty when all is well)."""
        return "" if self._connection is None else self._connection.detail

    # --- account -----------------------------------------------------------------------------

    async def register(self, username: str, password: str, display_name: str | None = None) -> User:
        return await self.api.register(username, password, display_name)

    async def login(self, username: str, password: str) -> User:
        """Log in, keep the tokens in the device store, and connect (when started with it)."""
        connection = self._conn
        was_connected = connection.running
        if was_connected:  # the connection of the login this one replaces
            await connection.stop()
        try:
            tokens = await self.api.login(username, password)
        except BaseException:
            if was_connected and self.logged_in:
                connection.start()
            raise
        await self._save_account(self._account_of(tokens))
        await self.store.save_users([tokens.user])
        if self._connect:
            await self._take_connection()
        elif connection.state == "logged_out":
            connection.set_state("offline")
        return tokens.user

    async def logout(self) -> None:
        """End the login on the server (every token of it, on every node) and forget the
        tokens here; history stays readable until another account logs in."""
        connection = self._conn
        # Stopped first: the server closes this login's sessions (4401) when it ends.
        await connection.stop("logged_out", "Logged out.")
        try:
            await self.api.logout()
        except ApiUnavailable:
            pass  # the tokens are forgotten here all the same
        finally:
            if self._account is not None and self._account.tokens is not None:
                await self._save_account(self._account.model_copy(update={"tokens": None}))

    async def _tokens_changed(self, tokens: Tokens | None) -> None:
        """The API's tokens changed (login, refresh, ended): the device store keeps them."""
        if tokens is not None:
            await self._save_account(self._account_of(tokens))
        elif self._account is not None and self._account.tokens is not None:
            await self._save_account(self._account.model_copy(update={"tokens": None}))

    async def _save_account(self, account: Account) -> None:
        await self.store.save_account(account)  # another user: the store wipes the device
        self._account = account
        if self._inbox is not None:
            self._inbox.forget()

    def _account_of(self, tokens: Tokens) -> Account:
        return Account(server_url=self.settings.client.server_url, user=tokens.user, tokens=tokens)

    def _usable_tokens(self, account: Account | None) -> Tokens | None:
        """The account's tokens when they are for the configured server."""
        if account is None or account.tokens is None:
            return None
        same = account.server_url.rstrip("/") == self.settings.client.server_url.rstrip("/")
        return account.tokens if same else None

    def _me(self) -> str:
        return self._account.user.id if self._account is not None else ""

    async def _take_connection(self) -> None:
        """Connect, when logged in and this process holds the device's engine lock."""
        connection = self._conn
        if not self.logged_in:
            connection.set_state("logged_out", "Not logged in.")
        elif await self._lock.acquire():
            connection.start()
        else:
            connection.set_state("offline", ANOTHER_PROCESS)

    # --- events ------------------------------------------------------------------------------

    def events(self) -> AsyncIterator[ClientEvent]:
        """Every event from now on, in order, until the client closes. Each call is its own
        subscriber; an iterator nobody reads keeps its events queued (memory)."""
        return self._stream.subscribe()

    async def publish(self, event: ClientEvent) -> None:
        """Announce `event` to the subscribers and the `chatcore_client_event` hook (for the
        engine's own parts, such as the push handler, after the device store has the change)."""
        self._stream.publish(event)

    async def _dispatch(self, event: ClientEvent) -> None:
        await call_observers(self.plugins.hook.chatcore_client_event, app=self, event=event)

    async def wait_for_state(self, state: ConnectionState) -> None:
        """Return once the connection is in `state` (at once if it is). Bound it with
        `asyncio.timeout`."""
        await self._conn.wait_for(state)

    async def sync(self) -> None:
        """Connect if needed, wait until every room is caught up and the outbox holds nothing
        but failed entries. Bound it with `asyncio.timeout`."""
        store, outbox, connection = self.store, self._queue, self._conn
        if not connection.running:
            if not self.logged_in:
                raise LoggedOut()
            if not await self._lock.acquire():
                raise ClientError(ANOTHER_PROCESS)
            connection.start()
        while True:
            if await connection.wait_for("ready", "logged_out") == "logged_out":
                raise LoggedOut(connection.detail or "The login ended; log in again.")
            changed = outbox.changed.current()
            if not await store.outbox(unsent_only=True, limit=1):  # failed ones stay
                return
            # Woken by changes of the outbox (looked at again at most every SYNC_POLL_SECONDS:
            # every ack changes it), and now and then for another process's.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await changed.wait()
            await asyncio.sleep(SYNC_POLL_SECONDS)

    # --- reading (device store: works offline) --------------------------------------------------

    async def rooms(self) -> list[RoomSummary]:
        return await self.store.list_rooms()

    async def room(self, room_id: str) -> RoomSummary | None:
        return await self.store.get_room(room_id)

    async def history(
        self, room_id: str, *, before_seq: int | None = None, limit: int = 50
    ) -> list[Message]:
        """Stored messages, newest first; when the store holds fewer than `limit` below
        `before_seq` and the server is reachable, older pages are fetched and stored first."""
        store = self.store
        found = await store.history(room_id, before_seq=before_seq, limit=limit)
        if len(found) >= limit or not self.logged_in:
            return found
        oldest = found[-1].seq if found else before_seq
        if oldest is not None and oldest <= 1:
            return found
        try:
            page = await self.api.messages(room_id, before_seq=oldest, limit=limit)
        except (ApiError, ApiUnavailable):
            return found  # what the device has is what it shows
        if not page.messages:
            return found
        await self._arrivals.ensure_rooms([room_id])
        # Older history is not news: stored without `MessageReceived` events.
        await store.add_messages(page.messages, self._me())
        return await store.history(room_id, before_seq=before_seq, limit=limit)

    async def search(
        self, text: str, *, room_id: str | None = None, limit: int = 50
    ) -> list[Message]:
        return await self.store.search(text, room_id=room_id, limit=limit)

    async def contacts(self) -> list[Contact]:
        return await self.store.list_contacts()

    async def invitations(self) -> tuple[list[Invitation], list[Invitation]]:
        return await self.store.list_invitations()

    async def users(self, user_ids: Iterable[str]) -> dict[str, User]:
        """The users among `user_ids` (room members, senders) by id, to show their names: the
        device store's copies first; ids it lacks are asked of the server when logged in, and
        kept. An id neither knows is left out (show the id)."""
        wanted = list(dict.fromkeys(user_ids))
        found = await self.store.get_users(wanted)
        missing = [i for i in wanted if i not in found and i not in self._unknown_users]
        if missing and self.logged_in:
            fetched = await self._fetch_users(missing)
            await self.store.save_users(list(fetched.values()))
            found.update(fetched)
        return found

    async def _fetch_users(self, user_ids: list[str]) -> dict[str, User]:
        limit = asyncio.Semaphore(USER_FETCHES)

        async def fetch(user_id: str) -> User | None:
            async with limit:
                try:
                    return await self.api.user(user_id)
                except ApiError as exc:
                    if exc.status == 404:  # gone from the server: not asked again this run
                        self._unknown_users.add(user_id)
                    return None
                except (ApiUnavailable, LoggedOut):
                    return None

        users = await asyncio.gather(*(fetch(i) for i in user_ids))
        return {u.id: u for u in users if u is not None}

    # --- people (the server; the device store follows, and events announce it) ----------------

    async def search_users(self, query: str, limit: int = 20) -> list[User]:
        """Users whose username or display name starts with `query` (the server's search)."""
        users = await self.api.search_users(query, limit)
        await self.store.save_users(users)
        return users

    async def invite(
        self, user_id: str | None = None, *, username: str | None = None
    ) -> Invitation:
        """Invite a user to be a contact (by id or username); see docs/protocol.md, Contacts."""
        if (user_id is None) == (username is None):
            raise ClientError("invite takes exactly one of user_id or username")
        invitation = await self.api.invite(user_id=user_id, username=username)
        event = "accepted" if invitation.status == "accepted" else "invited"
        await self._contacts_changed(event, invitation=invitation)
        return invitation

    async def accept_invitation(self, invitation_id: str) -> Contact:
        contact = await self.api.accept_invitation(invitation_id)
        await self._contacts_changed("accepted", user=contact.user)
        return contact

    async def decline_invitation(self, invitation_id: str) -> None:
        """Decline an invitation to this user, or cancel one of this user's."""
        await self.api.decline_invitation(invitation_id)
        await self._contacts_changed("removed")

    async def remove_contact(self, user_id: str) -> None:
        await self.api.remove_contact(user_id)
        await self._contacts_changed("removed", user_id=user_id)

    async def block(self, user_id: str) -> None:
        """Block a user: the contact ends and neither can reach the other (docs/protocol.md)."""
        await self.api.block(user_id)
        await self._contacts_changed("blocked", user_id=user_id)

    async def unblock(self, user_id: str) -> None:
        await self.api.unblock(user_id)
        await self._contacts_changed("unblocked", user_id=user_id)

    async def blocked(self) -> list[User]:
        """The users this user blocks (the server's list)."""
        return await self.api.blocks()

    async def _contacts_changed(
        self,
        event: str,
        *,
        invitation: Invitation | None = None,
        user: User | None = None,
        user_id: str | None = None,
    ) -> None:
        """After a contact action: contacts and invitations read again into the device store,
        then `ContactChanged` (the server's own `contact` event may follow: the same lists)."""
        try:
            contacts = await refresh_contacts(self.store, self.api)
        except (ApiError, ApiUnavailable):
            # The action itself is done; the lists come again with the server's own event,
            # or at the next connection.
            contacts = await self.store.list_contacts()
        if user is None and user_id is not None:
            user = (await self.users([user_id])).get(user_id)
        self._stream.publish(contact_changed(event, invitation, user, contacts, self._me()))

    # --- rooms and messages over REST ------------------------------------------------------------

    async def open_direct(self, user_id: str) -> RoomSummary:
        """The direct room with `user_id` (created when there is none), stored on the device."""
        return await self._room_stored(await self.api.create_direct(user_id))

    async def create_group(self, name: str, member_ids: Iterable[str] = ()) -> RoomSummary:
        """A new group room with this user as its owner and `member_ids` as members."""
        return await self._room_stored(await self.api.create_group(name, list(member_ids)))

    async def _room_stored(self, room: Room) -> RoomSummary:
        await self.store.save_rooms([room])
        self._stream.publish(RoomChanged(room))
        summary = await self.store.get_room(room.id)
        if summary is None:  # forgotten at once by a concurrent catch-up: the room as it came
            return RoomSummary(room=room)
        return summary

    async def edit(self, room_id: str, message_id: str, body: str) -> Message:
        """Edit a message of this user's (sent; for a queued one use `edit_pending`)."""
        message = await self.api.edit_message(room_id, message_id, body)
        await self._message_changed(message)
        return message

    async def delete(self, room_id: str, message_id: str) -> Message | None:
        """Delete a sent message (this user's, or any in a group this user owns); the message
        as deleted, None when the device did not hold it."""
        await self.api.delete_message(room_id, message_id)
        stored = await self.store.get_message(room_id, message_id)
        if stored is None:
            return None
        deleted = stored.model_copy(
            update={"deleted": True, "body": "", "media_id": None, "sticker_id": None}
        )
        await self._message_changed(deleted)
        return deleted

    async def _message_changed(self, message: Message) -> None:
        if await self.store.update_message(message):
            self._stream.publish(MessageUpdated(message))

    async def sticker_packs(self) -> list[StickerPack]:
        """The server's sticker packs, with their stickers."""
        return await self.api.sticker_packs()

    # --- profile and settings ------------------------------------------------------------------

    async def set_profile(
        self, *, display_name: str | None = None, avatar: str | Path | None = None
    ) -> User:
        """Change this user's display name and/or avatar (a file path, uploaded first)."""
        avatar_id = None
        if avatar is not None:
            avatar_id = (await self.media.upload(Path(avatar))).id
        user = await self.api.update_profile(display_name=display_name, avatar_media_id=avatar_id)
        await self.store.save_users([user])
        if self._account is not None:
            tokens = self._account.tokens
            if tokens is not None:
                tokens = tokens.model_copy(update={"user": user})
            await self._save_account(
                self._account.model_copy(update={"user": user, "tokens": tokens})
            )
        return user

    async def account_settings(self) -> dict[str, Any]:
        """This user's settings on the server (`/me/settings`; push preferences under `push`,
        docs/push.md). Offline: the copy last seen on this device."""
        try:
            settings = await self.api.settings()
        except (ApiUnavailable, LoggedOut):
            return dict((await self.store.get_settings()).get(SERVER_SETTINGS, {}))
        await self._keep_server_settings(settings)
        return settings

    async def update_account_settings(self, patch: Mapping[str, Any]) -> dict[str, Any]:
        """Apply a JSON merge patch to this user's server settings; the whole object after it.
        The server refuses (`ApiError`, 400) what does not fit, and nothing is saved."""
        settings = await self.api.patch_settings(patch)
        await self._keep_server_settings(settings)
        return settings

    async def _keep_server_settings(self, settings: dict[str, Any]) -> None:
        # Replaced whole (a merge patch would keep keys the server has dropped).
        await self.store.patch_settings({SERVER_SETTINGS: None})
        await self.store.patch_settings({SERVER_SETTINGS: settings})

    async def preferences(self) -> dict[str, Any]:
        """This device's own choices (a UI's theme, layout...), kept in the device store."""
        return dict((await self.store.get_settings()).get(PREFERENCES, {}))

    async def set_preferences(self, patch: Mapping[str, Any]) -> dict[str, Any]:
        """Apply a JSON merge patch to this device's preferences; the whole object after it."""
        settings = await self.store.patch_settings({PREFERENCES: dict(patch)})
        return dict(settings.get(PREFERENCES, {}))

    # --- sending (outbox: works offline) -------------------------------------------------------

    async def send(self, room_id: str, body: str, *, reply_to: str | None = None) -> OutboxEntry:
        """Queue a text message: stored with its local echo before any network call; sent
        (and re-sent with the same ref after reconnects) until acked. Returns the entry."""
        return await self._queued(new_entry(room_id, body=body, reply_to=reply_to))

    async def send_file(
        self, room_id: str, path: str | Path, *, reply_to: str | None = None
    ) -> OutboxEntry:
        """Queue a file: uploaded when online, then sent as a media message."""
        given = Path(path)
        resolved = await asyncio.to_thread(given.resolve)
        if not await asyncio.to_thread(resolved.is_file):
            raise OutboxError(f"There is no file at {given}.")
        entry = new_entry(room_id, kind="media", file_path=resolved, reply_to=reply_to)
        return await self._queue.add(entry)

    async def send_sticker(self, room_id: str, sticker_id: str) -> OutboxEntry:
        return await self._queued(new_entry(room_id, kind="sticker", sticker_id=sticker_id))

    async def _queued(self, entry: OutboxEntry) -> OutboxEntry:
        """Queue `entry`. When another process of the device holds the connection (this one is
        a push handler, or a `chatcore client send` beside the app), also send it over REST at
        once: the connected process would only see it at its next reconnect."""
        entry = await self._queue.add(entry)
        if self._conn.running or not await self._lock.held_elsewhere():
            return entry
        return await self._send_over_rest(entry)

    async def outbox(self, room_id: str | None = None) -> list[OutboxEntry]:
        """Pending and failed sends, in send order."""
        return await self.store.outbox(room_id=room_id)

    async def resend(self, ref: str) -> OutboxEntry:
        """Queue a failed entry again (same ref)."""
        return await self._queue.resend(ref)

    async def edit_pending(self, ref: str, body: str) -> OutboxEntry:
        """Change the text of an entry not yet transmitted, or failed; `OutboxError` else."""
        return await self._queue.edit(ref, body)

    async def cancel(self, ref: str) -> OutboxEntry:
        """Drop an entry not yet transmitted, or failed; `OutboxError` else."""
        return await self._queue.cancel(ref)

    async def wait_sent(self, ref: str) -> Message:
        """The stored message once `ref` is acked; `OutboxError` when it failed."""
        return await self._queue.wait_sent(ref)

    # --- live (need the connection; ignored offline) ----------------------------------------------

    async def mark_read(self, room_id: str, seq: int) -> None:
        """Record the read position on the device now, and on the server when connected."""
        await self.store.set_read(room_id, seq)
        frame = {"type": "read", "room_id": room_id, "seq": seq}
        if await self._conn.send_frame(frame):
            return
        with contextlib.suppress(ApiUnavailable, LoggedOut):
            await self.api.mark_read(room_id, seq)

    async def typing(self, room_id: str, active: bool = True) -> None:
        await self._conn.send_frame({"type": "typing", "room_id": room_id, "active": active})

    # --- media -------------------------------------------------------------------------------

    async def open_media(self, media_id: str, *, thumbnail: int | None = None) -> CachedFile:
        """The file of a media (or its thumbnail), from the cache when there, else downloaded
        into it. A file over the cache's per-file cap is written to a temporary file."""
        return await self.media.open(media_id, thumbnail=thumbnail)

    # --- pushes ------------------------------------------------------------------------------

    async def handle_push(self, push: Mapping[str, Any]) -> PushNotice:
        """A push's payload (see `chatcore.client.push`) into a `PushReceived` event; fetches
        and stores the message of an id-only push when the server is reachable."""
        from chatcore.client.push import handle_push

        return await handle_push(self, push)

    async def reply(self, room_id: str, body: str, *, reply_to: str | None = None) -> OutboxEntry:
        """Answer in a room without opening it (a notification's quick reply): queued like any
        send, and sent through REST at once when no connection is up."""
        outbox, connection = self._queue, self._conn
        entry = await outbox.add(new_entry(room_id, body=body, reply_to=reply_to))
        if connection.state == "ready":
            return entry
        return await self._send_over_rest(entry)

    async def _send_over_rest(self, entry: OutboxEntry) -> OutboxEntry:
        """Send `entry` with `POST /rooms/{id}/messages`; the entry as it is afterwards."""
        store, outbox = self.store, self._queue
        async with outbox.lock:  # taken from the sender's sight: marked on its way
            current = await store.outbox_get(entry.ref)
            if current is None or current.state != "pending":
                return current or entry
            await store.outbox_transmitted([entry.ref])
        try:
            message = await self.api.send_message(entry.room_id, entry.frame_fields())
        except ApiError as exc:
            if exc.code in RETRIED_CODES or isinstance(exc, LoggedOut):
                return await self._back_to_pending(entry)
            return await outbox.fail(entry.ref, exc.code, exc.message) or entry
        except ApiUnavailable:
            return await self._back_to_pending(entry)
        if await self._lock.held_elsewhere():
            # The process holding the connection gets the message live and stores it (which
            # settles the entry there, and announces it to its UI); stored here first, the
            # store would call it a duplicate and that process would never show it.
            outbox.resolve(message)
        else:
            await self._arrivals.add([message], live=True)
        return entry.model_copy(update={"state": "sent", "transmitted": True})

    async def _back_to_pending(self, entry: OutboxEntry) -> OutboxEntry:
        updated = await self.store.outbox_update(entry.ref, state="pending")
        self._queue.changed.notify()
        return updated or entry

    # --- inside ------------------------------------------------------------------------------

    @property
    def _conn(self) -> Connection:
        return _started(self._connection, "connection")

    @property
    def _queue(self) -> Outbox:
        return _started(self._outbox, "outbox")

    @property
    def _arrivals(self) -> Inbox:
        return _started(self._inbox, "inbox")


def _started(value: Any, what: str) -> Any:
    if value is None:
        raise RuntimeError(f"the {what} is available once the client has started")
    return value


class _DeviceLogin:
    """The login as every process of this device shares it (`chatcore.client.api.SharedLogin`):
    refreshed under the device's login lock, the newest tokens read from the device store."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._path = login_lock_path(client.settings.device_store.path)

    def exclusive(self) -> AbstractAsyncContextManager[None]:
        return held_exclusively(self._path)

    async def latest(self) -> Tokens | None:
        account = await self._client.store.get_account()
        return self._client._usable_tokens(account)
