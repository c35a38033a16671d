"""The client role's backends: the device store and the media cache.

The engine codes against these protocols; plugins provide them through the
`chatcore_device_store` and `chatcore_media_cache` hooks (`chatcore.client.hookspecs`). Every
implementation passes the contract suites in `chatcore.testing.device_store_contract` and
`chatcore.testing.media_cache_contract`. No method may block the event loop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from chatcore.client.models import (
    Account,
    CachedFile,
    Contact,
    Invitation,
    Message,
    OutboxEntry,
    Room,
    RoomSummary,
    User,
)


class StoredBatch(Protocol):
    """What `DeviceStore.add_messages` did, for the events the engine then emits."""

    #: Messages stored by this call, in the order given (duplicates of stored ones left out).
    new: Sequence[Message]
    #: Outbox entries this call removed, each with the message that acknowledged it.
    acked: Sequence[tuple[OutboxEntry, Message]]


@runtime_checkable
class DeviceStore(Protocol):
    """Everything the device keeps: account, rooms, contacts, messages, outbox, settings.

    One store serves one account on one server. Several processes of the same device (the app
    and its push handler) may open the same store at once.
    """

    async def open(self) -> None:
        """Create or upgrade the schema; ready to use after this."""

    async def close(self) -> None:
        """Release the store; safe to call twice."""

    # --- account -------------------------------------------------------------------------

    async def get_account(self) -> Account | None:
        """The account logged in on this device (tokens None after a logout), if any."""

    async def save_account(self, account: Account) -> None:
        """Keep `account` (replacing the one kept). A different user or server than the
        stored account's first wipes everything else the store holds (another person's
        history must not show)."""

    # --- rooms ---------------------------------------------------------------------------

    async def save_rooms(self, rooms: Sequence[Room], *, complete: bool = False) -> None:
        """Insert or update rooms (name, members, owner, last_seq). The device's own read
        positions and cursors are kept. With `complete`, `rooms` is every room of the user:
        any other stored room is forgotten (left while offline), with its messages."""

    async def forget_room(self, room_id: str) -> None:
        """Remove a room the user left, with its messages; its outbox entries become failed."""

    async def get_room(self, room_id: str) -> RoomSummary | None:
        """One room as `list_rooms` shows it."""

    async def list_rooms(self) -> list[RoomSummary]:
        """Every room, most recently active first (newest stored message ts, else newest known)."""

    async def set_read(self, room_id: str, seq: int) -> int:
        """Move the room's read position forward to `seq` (never backwards); the new position."""

    # --- messages ------------------------------------------------------------------------

    async def add_messages(self, messages: Sequence[Message], own_user_id: str) -> StoredBatch:
        """Store messages, in one transaction, keyed by (room_id, seq): one already stored is
        left as it is (to change a stored one, use `update_message`). A message of
        `own_user_id` whose (room_id, ref) matches an outbox entry removes the entry (the
        local echo becomes the stored message). Each room's cursor (`synced_seq`) advances
        over the seqs now stored without a gap, in the same transaction."""

    async def skip_deleted(self, room_id: str, first_seq: int) -> int:
        """The server no longer has the room's messages below `first_seq` (retention deleted
        them): move the room's cursor up to `first_seq - 1` when it is lower, then over the
        seqs stored without a gap from there, in one transaction; return the cursor."""

    async def update_message(self, message: Message) -> bool:
        """Replace a stored message (an edit or a deletion) by (room_id, seq); False when it
        is not stored (it will come with the next catch-up)."""

    async def history(
        self, room_id: str, *, before_seq: int | None = None, limit: int = 50
    ) -> list[Message]:
        """The newest `limit` stored messages of the room below `before_seq`, newest first."""

    async def get_message(self, room_id: str, message_id: str) -> Message | None:
        """A stored message by its id."""

    async def cursors(self) -> dict[str, int]:
        """Each stored room's `synced_seq`: the catch-up starts above it."""

    async def search(
        self, text: str, *, room_id: str | None = None, limit: int = 50
    ) -> list[Message]:
        """Full-text search over stored non-deleted messages (words, prefix with `*`), newest
        first; `text` is the user's, never a query language that can fail."""

    # --- contacts ------------------------------------------------------------------------

    async def save_contacts(self, contacts: Sequence[Contact]) -> None:
        """Replace the contact list."""

    async def list_contacts(self) -> list[Contact]:
        """The contacts, by username."""

    async def set_presence(self, user_id: str, status: str) -> None:
        """Record a contact's presence (kept so the list shows the last known state)."""

    async def save_invitations(
        self, incoming: Sequence[Invitation], outgoing: Sequence[Invitation]
    ) -> None:
        """Replace the pending invitations."""

    async def list_invitations(self) -> tuple[list[Invitation], list[Invitation]]:
        """Pending (incoming, outgoing) invitations, newest first."""

    async def save_users(self, users: Sequence[User]) -> None:
        """Keep users the device has seen (room members, senders, contacts), replacing the
        copies kept: their names show offline."""

    async def get_users(self, user_ids: Sequence[str]) -> dict[str, User]:
        """The kept users among `user_ids`, by id; ids never saved are left out."""

    # --- outbox --------------------------------------------------------------------------

    async def outbox_add(self, entry: OutboxEntry) -> OutboxEntry:
        """Queue a send (its local echo), committed before this returns; the entry with its
        `position` set (after every other entry)."""

    async def outbox(
        self, *, room_id: str | None = None, unsent_only: bool = False, limit: int | None = None
    ) -> list[OutboxEntry]:
        """Pending, sending and failed entries, by position; with `unsent_only` not the failed
        ones, and at most `limit` (the sender reads only the head of a long outbox)."""

    async def outbox_get(self, ref: str) -> OutboxEntry | None:
        """One entry by its ref."""

    async def outbox_update(self, ref: str, **changes: Any) -> OutboxEntry | None:
        """Change an entry's fields (state, transmitted, attempts, error_code, error_message,
        body, media_id, file_path); the entry after the change, None if it is gone."""

    async def outbox_transmitted(self, refs: Sequence[str]) -> None:
        """Mark entries as on the wire, in one transaction: state *sending*, `transmitted`
        true, `attempts` + 1 (the sender calls it for a whole window before writing it)."""

    async def outbox_reset_sending(self) -> None:
        """Every *sending* entry back to *pending* (the connection that carried them is gone;
        they are sent again, with the same refs)."""

    async def outbox_remove(self, ref: str) -> OutboxEntry | None:
        """Remove an entry (cancelled); the removed entry, None if it was not there."""

    # --- settings ------------------------------------------------------------------------

    async def get_settings(self) -> dict[str, Any]:
        """The device's settings (UI choices, the user's server settings as last seen)."""

    async def patch_settings(self, patch: Mapping[str, Any]) -> dict[str, Any]:
        """Apply a JSON merge patch (RFC 7396); the whole object after it."""


@runtime_checkable
class MediaCache(Protocol):
    """Downloaded media on local disk, with a size cap and eviction by last access.

    Keys are the engine's (a media id, with the thumbnail size when it is one). A file larger
    than the per-file cap is never kept. Several processes may share one cache folder.
    """

    async def open(self) -> None:
        """Create the folder and index if missing."""

    async def close(self) -> None:
        """Release the cache; safe to call twice."""

    async def get(self, key: str) -> CachedFile | None:
        """The cached file for `key`, marking it as just accessed; None when not cached."""

    async def put(
        self, key: str, data: bytes, *, content_type: str, etag: str | None
    ) -> CachedFile | None:
        """Keep `data` under `key` (replacing an older copy), then evict the least recently
        accessed files until the cache is within its cap. None when `data` is over the
        per-file cap (nothing kept)."""

    async def touch(self, key: str, *, fetched: bool = False) -> None:
        """Mark `key` accessed (and, with `fetched`, revalidated with the server just now)."""

    async def remove(self, key: str) -> None:
        """Drop `key` (the server no longer serves it)."""

    async def usage(self) -> int:
        """Bytes the cache holds."""


@runtime_checkable
class ClientUI(Protocol):
    """An interactive user interface of the client role (`chatcore_client_ui` provides it)."""

    def run(self) -> None:
        """Show the interface until the user quits: start the client given to the provider,
        own the terminal (or window) and the event loop, close the client at the end. Called
        once, from a thread with no running event loop."""
