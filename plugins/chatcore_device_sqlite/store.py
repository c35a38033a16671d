"""`SqliteDeviceStore`: the client's `chatcore.client.interfaces.DeviceStore` on one SQLite file.

Every statement runs on SQLAlchemy's async engine (aiosqlite's worker threads), so no call
blocks the event loop. Each call is one transaction: reads in a plain (deferred) transaction,
one snapshot for all their queries; writes in `BEGIN IMMEDIATE`, so that the writers of several
processes on the same file (the app and its push handler) queue on the file's lock
(`busy_timeout`) and every write is whole or absent. Within one store the writers also queue
on an asyncio.Lock, to wait without holding a connection (or sleeping in SQLite's busy
handler). Readers never wait for a writer (WAL).

A transaction runs to its end even when its caller is cancelled (it is shielded; the caller
gets its CancelledError at once). Cancelled half-way, a write would leave its connection inside
`BEGIN IMMEDIATE` until the pool got rid of it, and with it the file's write lock: every other
process's writes would wait, then fail. Transactions are milliseconds long; `close()` waits for
those still running.

The SQL of each area lives in a module of its own (`messages`, `rooms`, `outbox`, `contacts`,
`account`); the schema and its upgrades in `schema`.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import anyio
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chatcore.client.models import (
    Account,
    Contact,
    Invitation,
    Message,
    OutboxEntry,
    Room,
    RoomSummary,
    User,
)
from chatcore.errors import StartupError
from chatcore.failures import reason
from chatcore_device_sqlite import account, contacts, messages, outbox, rooms, schema
from chatcore_device_sqlite.connection import (
    BUSY_TIMEOUT_MS,
    create_engine,
    prepare_file,
    writer,
)
from chatcore_device_sqlite.messages import StoredBatch

T = TypeVar("T")
P = ParamSpec("P")

#: A query module's function: it runs its statements on the connection it is given.
Work = Callable[Concatenate[AsyncConnection, P], Awaitable[T]]


class SqliteDeviceStore:
    """The device store in the SQLite file at `path` (its folder is made if missing)."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_ms: int = BUSY_TIMEOUT_MS):
        self.path = Path(path)
        self.busy_timeout_ms = busy_timeout_ms
        self._engine: AsyncEngine | None = None
        self._write_lock = asyncio.Lock()
        self._open_lock = asyncio.Lock()
        self._running: set[asyncio.Future[Any]] = set()

    def __repr__(self) -> str:
        return f"SqliteDeviceStore({str(self.path)!r})"

    # --- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        """Create the file and its folder if missing, and bring the schema to the newest
        version (`schema.upgrade`); a second call does nothing. A file that cannot be opened
        (or is not a device store) is a one-line StartupError."""
        await self._shielded(self._open())

    async def _open(self) -> None:
        async with self._open_lock:  # two concurrent calls open it once
            if self._engine is not None:
                return
            engine = create_engine(self.path, busy_timeout_ms=self.busy_timeout_ms)
            try:
                await anyio.to_thread.run_sync(
                    lambda: prepare_file(self.path, busy_timeout_ms=self.busy_timeout_ms)
                )
                async with writer(engine).begin() as conn:
                    await schema.upgrade(conn, str(self.path))
            except (OSError, sqlite3.Error, DBAPIError) as exc:
                await engine.dispose()
                # The driver's own words (not a folder, no permission, not a database).
                cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
                raise StartupError(
                    f"cannot open the device store {self.path}: {reason(cause)}"
                ) from exc
            except BaseException:
                await engine.dispose()
                raise
            self._engine = engine

    async def close(self) -> None:
        """Wait for the transactions still running, then release the file; safe twice."""
        async with self._open_lock:
            while self._running:
                await asyncio.wait(set(self._running))
            engine, self._engine = self._engine, None
            if engine is not None:
                await engine.dispose()

    @property
    def engine(self) -> AsyncEngine:
        """The store's engine (for tests and tools that read the file with SQL)."""
        if self._engine is None:
            raise RuntimeError(f"{self!r} is not open: call open() first")
        return self._engine

    # --- transactions ------------------------------------------------------------------------

    async def _shielded(self, work: Awaitable[T]) -> T:
        """Run `work` to its end in a task of its own, whatever happens to the caller."""
        task = asyncio.ensure_future(work)
        self._running.add(task)
        task.add_done_callback(_settled)
        task.add_done_callback(self._running.discard)
        return await asyncio.shield(task)

    async def _read(self, work: Work[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        engine = self.engine  # not open: a RuntimeError before anything runs

        async def transaction() -> T:
            async with engine.begin() as conn:
                return await work(conn, *args, **kwargs)

        return await self._shielded(transaction())

    async def _write(self, work: Work[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        immediate = writer(self.engine)

        async def transaction() -> T:
            async with self._write_lock, immediate.begin() as conn:
                return await work(conn, *args, **kwargs)

        return await self._shielded(transaction())

    # --- account -----------------------------------------------------------------------------

    async def get_account(self) -> Account | None:
        return await self._read(account.get)

    async def save_account(self, new: Account) -> None:
        await self._write(account.save, new)

    # --- rooms -------------------------------------------------------------------------------

    async def save_rooms(self, given: Sequence[Room], *, complete: bool = False) -> None:
        await self._write(rooms.save_rooms, given, complete)

    async def forget_room(self, room_id: str) -> None:
        await self._write(rooms.forget_rooms, [room_id])

    async def get_room(self, room_id: str) -> RoomSummary | None:
        return await self._read(rooms.summary, room_id)

    async def list_rooms(self) -> list[RoomSummary]:
        return await self._read(rooms.summaries)

    async def set_read(self, room_id: str, seq: int) -> int:
        return await self._write(rooms.set_read, room_id, seq)

    # --- messages ----------------------------------------------------------------------------

    async def add_messages(self, given: Sequence[Message], own_user_id: str) -> StoredBatch:
        self.engine  # noqa: B018 - not open: a RuntimeError, even for an empty batch
        if not given:
            return StoredBatch((), ())
        return await self._write(messages.add_messages, given, own_user_id)

    async def skip_deleted(self, room_id: str, first_seq: int) -> int:
        return await self._write(messages.skip_deleted, room_id, first_seq)

    async def update_message(self, message: Message) -> bool:
        return await self._write(messages.update_message, message)

    async def history(
        self, room_id: str, *, before_seq: int | None = None, limit: int = 50
    ) -> list[Message]:
        return await self._read(messages.history, room_id, before_seq, limit)

    async def get_message(self, room_id: str, message_id: str) -> Message | None:
        return await self._read(messages.get_message, room_id, message_id)

    async def cursors(self) -> dict[str, int]:
        return await self._read(messages.cursors)

    async def search(
        self, text: str, *, room_id: str | None = None, limit: int = 50
    ) -> list[Message]:
        return await self._read(messages.search, text, room_id, limit)

    # --- contacts ----------------------------------------------------------------------------

    async def save_contacts(self, given: Sequence[Contact]) -> None:
        await self._write(contacts.save, given)

    async def list_contacts(self) -> list[Contact]:
        return await self._read(contacts.listed)

    async def set_presence(self, user_id: str, status: str) -> None:
        """Record a contact's presence ("online" or "offline"; another value is a ValueError,
        as the stored contact could not be read back). A user who is not a contact: nothing."""
        contacts.check_presence(status)
        await self._write(contacts.set_presence, user_id, status)

    async def save_invitations(
        self, incoming: Sequence[Invitation], outgoing: Sequence[Invitation]
    ) -> None:
        await self._write(contacts.save_invitations, incoming, outgoing)

    async def list_invitations(self) -> tuple[list[Invitation], list[Invitation]]:
        return await self._read(contacts.list_invitations)

    async def save_users(self, users: Sequence[User]) -> None:
        await self._write(contacts.save_users, users)

    async def get_users(self, user_ids: Sequence[str]) -> dict[str, User]:
        return await self._read(contacts.get_users, user_ids)

    # --- outbox ------------------------------------------------------------------------------

    async def outbox_add(self, entry: OutboxEntry) -> OutboxEntry:
        """Queue `entry` (its `position` is ignored: the next one is given). A ref the outbox
        holds already is a ValueError."""
        try:
            return await self._write(outbox.add, entry)
        except IntegrityError as exc:
            raise ValueError(f"the outbox already holds an entry with ref {entry.ref!r}") from exc

    async def outbox(
        self, *, room_id: str | None = None, unsent_only: bool = False, limit: int | None = None
    ) -> list[OutboxEntry]:
        return await self._read(outbox.listed, room_id, unsent_only, limit)

    async def outbox_get(self, ref: str) -> OutboxEntry | None:
        return await self._read(outbox.get, ref)

    async def outbox_update(self, ref: str, **changes: Any) -> OutboxEntry | None:
        """Change an entry's fields; a field not in `outbox.UPDATABLE`, or a value its type
        refuses, is a ValueError (and nothing changes)."""
        outbox.check_changes(changes)
        return await self._write(outbox.update, ref, changes)

    async def outbox_transmitted(self, refs: Sequence[str]) -> None:
        await self._write(outbox.transmitted, refs)

    async def outbox_reset_sending(self) -> None:
        await self._write(outbox.reset_sending)

    async def outbox_remove(self, ref: str) -> OutboxEntry | None:
        return await self._write(outbox.remove, ref)

    # --- settings ----------------------------------------------------------------------------

    async def get_settings(self) -> dict[str, Any]:
        return await self._read(account.get_settings)

    async def patch_settings(self, patch: Mapping[str, Any]) -> dict[str, Any]:
        return await self._write(account.patch_settings, patch)


def _settled(task: asyncio.Future[Any]) -> None:
    # A transaction whose caller was cancelled ends alone: its failure, if any, has no one to
    # go to. Reading it here keeps asyncio from logging it as "never retrieved".
    if not task.cancelled():
        task.exception()
