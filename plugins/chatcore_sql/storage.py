"""`SqlStorage`: the `chatcore.interfaces.Storage` of record, on SQLite or PostgreSQL.

Every statement runs on SQLAlchemy's async engine (asyncpg, or aiosqlite's worker thread),
except message batches on a SQLite file, which run whole in a thread of their own
(`chatcore_sql.sqlite_writer`: one hop per batch instead of one per statement); either way no
call blocks the event loop. Writes run in one short transaction each.

SQLite allows one writer at a time, and the design wants exactly that: in this process writers
queue on an asyncio.Lock (so they wait without holding a connection or a thread), and their
transactions begin with `BEGIN IMMEDIATE` so that a writer in another process (a CLI command
next to a running server) waits on `busy_timeout` instead of failing with "database is locked".
Readers never wait for writers (WAL). PostgreSQL needs no lock: its row locks decide.

The SQL of each area lives in a module of its own (`chatcore_sql.users`, `rooms`, `messages`,
`contacts`, `media`, `devices`, `push_queue`, `rate_limits`); this class chooses the
transaction each call runs in.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from sqlalchemy import Connection, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chatcore.clock import now_ms
from chatcore.errors import ChatError, ErrorCode, StartupError, bad_request, not_found
from chatcore.failures import reason
from chatcore.models import (
    AdminRoom,
    AdminUser,
    AuditEntry,
    BlockChange,
    ClaimedPush,
    Contact,
    Credentials,
    Device,
    Draft,
    Erasure,
    Invitation,
    InvitationStatus,
    LoginInfo,
    Media,
    Message,
    PurgedMedia,
    PurgedMessages,
    PushAudience,
    QueuedPush,
    RefreshOutcome,
    Report,
    ReportStatus,
    Room,
    RoomBan,
    RoomLogDraft,
    RoomLogEntry,
    RoomRole,
    RoomView,
    Sticker,
    StickerPack,
    Stored,
    User,
)
from chatcore_sql import EXTRA as POSTGRES
from chatcore_sql import admin as admin_sql
from chatcore_sql import (
    contacts,
    devices,
    messages,
    migrate,
    moderation,
    push_queue,
    rate_limits,
    rooms,
)
from chatcore_sql import media as media_sql
from chatcore_sql import reports as reports_sql
from chatcore_sql import retention as retention_sql
from chatcore_sql import search as search_sql
from chatcore_sql import users as users_sql
from chatcore_sql.engine import (
    create_engine,
    describe,
    is_memory,
    is_sqlite,
    reach,
    retryable,
    sqlite_path,
    writer,
)
from chatcore_sql.rows import check_text, i64, new_id, plausible, user_of
from chatcore_sql.settings import SqlStorageSettings, async_url
from chatcore_sql.sqlite_writer import (
    SqliteReader,
    SqliteRun,
    SqliteStatements,
    SqliteWriter,
)
from chatcore_sql.tables import user_settings

if TYPE_CHECKING:
    from chatcore_sql.loop_writer import LoopWriter

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How often a SQLite file's WAL is copied into the database (in the background).
CHECKPOINT_SECONDS = 1.0
#: How often SQLite's search index takes in the messages stored since (`search.index_pending`).
#: Searches catch it up first anyway; this only bounds what a search may have to index. Rarely:
#: each pass holds the write lock while it indexes, and acks wait behind it (at 2,000 msg/s, a
#: pass every 0.25-1 s took the ack p99 from ~9 ms to 50-130 ms).
INDEX_SECONDS = 30.0
#: How often (by the callers' clock) a node deletes the rate-limit buckets that are full again.
RATE_LIMIT_PRUNE_MS = 60_000


def build_storage(
    settings: SqlStorageSettings, *, may_migrate: bool = True, config: str | None = None
) -> SqlStorage | None:
    """A (not yet started) SqlStorage for `settings.url`, or None for a URL of another kind.

    `may_migrate` False: `start()` never changes the schema (`App.may_migrate`); `config` is
    the config file (`App.source`), named in the advice given when the schema is not ready.
    """
    url = async_url(settings.url)
    if url is None:
        return None
    if url.get_backend_name() == "postgresql":
        POSTGRES.require()  # else SQLAlchemy fails on `import asyncpg` with a traceback
    return SqlStorage(url, settings, may_migrate=may_migrate, config=config)


class SqlStorage:
    """Storage on SQLAlchemy Core. Build it with `build_storage`; `start()` before use."""

    def __init__(
        self,
        url: URL,
        settings: SqlStorageSettings,
        *,
        may_migrate: bool = True,
        config: str | None = None,
    ) -> None:
        if settings.schema and is_sqlite(url):
            raise ValueError("storage.schema is only supported with PostgreSQL")
        self.url = url
        self.settings = settings
        #: `start()` migrates only when `auto_migrate` is on and this is True.
        self.migrates = settings.auto_migrate and may_migrate
        self._config = config
        self._engine: AsyncEngine | None = None
        self._writer: AsyncEngine | None = None
        self._snapshot: AsyncEngine | None = None
        # Message batches on a SQLite file: one thread hop per batch (see sqlite_writer).
        self._batch_writer: SqliteWriter | None = None
        self._loop_writer: LoopWriter | None = None  # PostgreSQL's batches (loop_writer.py)
        self._sqlite_reader: SqliteReader | None = None  # a SQLite file's hot reads, one hop each
        self._checkpoints: asyncio.Task[None] | None = None
        self._indexing: asyncio.Task[None] | None = None  # SQLite's search index (`start`)
        # One writer at a time on SQLite (see the module docstring). An in-memory database is
        # one shared connection, so there readers take the lock too.
        self._write_lock = asyncio.Lock() if is_sqlite(url) else None
        self._read_lock = self._write_lock if is_memory(url) else None
        #: Message batches the writer may commit at once (`Storage` docs). PostgreSQL locks
        #: rooms, not the database, so batches for different rooms overlap their round trips;
        #: half the pool, so reads always find a connection.
        self.write_lanes = 1 if is_sqlite(url) else max(1, min(4, settings.pool_size // 2))
        self._next_prune_ts = 0  # when `take_token` next deletes full buckets

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("SqlStorage is not started")
        return self._engine

    # --- lifecycle -------------------------------------------------------------------------

    async def connect(self) -> None:
        """Create the SQLite file's folder and the engine; no schema work (see `start`)."""
        path = sqlite_path(self.url)
        if path is not None:
            try:
                await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
            except OSError as exc:
                raise StartupError(
                    f"cannot open the {describe(self.url)}: cannot make its folder "
                    f"{path.parent}: {reason(exc)}"
                ) from exc
        self._engine = create_engine(self.url, self.settings)
        self._writer = writer(self._engine)
        if path is not None:
            self._batch_writer = SqliteWriter(self.url, self.settings)
            self._sqlite_reader = SqliteReader(self.url, self.settings)
            self._checkpoints = asyncio.create_task(self._checkpoint_often(self._sqlite_reader))
        elif not is_sqlite(self.url):
            # Imported here: asyncpg comes with the postgres extra, which SQLite users lack.
            from chatcore_sql.loop_writer import LoopWriter

            self._loop_writer = LoopWriter(self.url, self.settings, self.write_lanes)
            await self._loop_writer.start()
        # Reads of several statements that must agree (a room list and its members): one
        # snapshot. SQLite's read transaction is one already (WAL); PostgreSQL's default,
        # READ COMMITTED, takes a new snapshot per statement.
        self._snapshot = (
            self._engine
            if is_sqlite(self.url)
            else self._engine.execution_options(isolation_level="REPEATABLE READ")
        )

    async def start(self) -> None:
        """Connect, then migrate the schema to head (`migrates`) or check it is there.

        Without migrating nothing is created, not even a SQLite file: a missing or older
        schema raises `migrate.SchemaNotReady`. A database out of reach is a StartupError.
        Migration is start-up work: Alembic loads its few small scripts on the event loop.
        """
        path = sqlite_path(self.url)
        if not self.migrates and path is not None and not await asyncio.to_thread(path.exists):
            await migrate.ensure_at_head(None, describe(self.url), self._advice())
        await self.connect()
        assert self._engine is not None
        try:
            await reach(self._engine, self.url)
            if self.migrates:
                before, after = await migrate.upgrade(self._engine, self.settings.schema)
                if before != after:
                    log.info("database schema upgraded from %s to %s", before or "none", after)
            else:
                await migrate.ensure_at_head(self._engine, describe(self.url), self._advice())
        except BaseException:
            await self.close()
            raise
        if is_sqlite(self.url):
            self._indexing = asyncio.create_task(self._index_often())

    def _advice(self) -> str:
        """What to do about a schema that is not ready (see `migrate.ensure_at_head`)."""
        # An app built without a file has a source such as "<defaults>": nothing to name.
        named = self._config and not self._config.startswith("<")
        advice = f"run `chatcore db upgrade --config {self._config}`" if named else migrate.UPGRADE
        if not self.settings.auto_migrate:
            advice += " or set storage.auto_migrate = true"
        return advice

    async def close(self) -> None:
        engine, self._engine, self._writer, self._snapshot = self._engine, None, None, None
        batch_writer, self._batch_writer = self._batch_writer, None
        loop_writer, self._loop_writer = self._loop_writer, None
        bulk_reader, self._sqlite_reader = self._sqlite_reader, None
        checkpoints, self._checkpoints = self._checkpoints, None
        indexing, self._indexing = self._indexing, None
        for task in (checkpoints, indexing):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if bulk_reader is not None:
            await bulk_reader.close()
        if loop_writer is not None:
            await loop_writer.close()
        if batch_writer is not None:
            await batch_writer.close()
        if engine is not None:
            await engine.dispose()

    @staticmethod
    async def _checkpoint_often(reader: SqliteReader) -> None:
        """Checkpoint the WAL every second, off the writer's commits (see SqliteWriter)."""
        while True:
            await asyncio.sleep(CHECKPOINT_SECONDS)
            try:
                await reader.checkpoint()
            except Exception:  # a busy database: the next round catches up
                log.warning("a WAL checkpoint failed", exc_info=True)

    async def _index_often(self) -> None:
        """Catch SQLite's search index up every `INDEX_SECONDS` (searches catch it up anyway),
        off the message batches' transactions."""
        while True:
            await asyncio.sleep(INDEX_SECONDS)
            try:
                await self.index_pending()
            except Exception:  # a busy database: the next round, or the next search, does it
                log.warning("could not update the search index", exc_info=True)

    async def index_pending(self) -> None:
        """SQLite: bring the search index up to every message committed (migration 0012);
        nothing to do on PostgreSQL, whose index is kept by the database."""
        if not is_sqlite(self.url):
            return
        async with self._read() as conn:
            if not await search_sql.pending(conn):
                return
        while True:
            async with self._write() as conn:
                if await search_sql.index_pending(conn) < search_sql.INDEX_BATCH:
                    return

    async def ping(self) -> None:
        async with self._read() as conn:
            await conn.execute(text("SELECT 1"))

    # --- transactions ------------------------------------------------------------------------

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        if self._writer is None:
            raise RuntimeError("SqlStorage is not started")
        lock: AbstractAsyncContextManager[Any] = self._write_lock or nullcontext()
        async with lock, self._writer.begin() as conn:
            yield conn

    @asynccontextmanager
    async def _read(self, snapshot: bool = False) -> AsyncIterator[AsyncConnection]:
        engine = self._snapshot if snapshot else self._engine
        if engine is None:
            raise RuntimeError("SqlStorage is not started")
        lock: AbstractAsyncContextManager[Any] = self._read_lock or nullcontext()
        async with lock, engine.connect() as conn:
            yield conn

    async def _write_with_retry(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run `work` in a write transaction; once more if the database refused the first try
        in a way a second one can get past (a constraint raced, a deadlock was broken)."""
        try:
            async with self._write() as conn:
                return await work(conn)
        except DBAPIError as exc:
            if not retryable(exc):
                raise
            log.warning("retrying a write transaction after: %s", exc.orig)
        async with self._write() as conn:
            return await work(conn)

    # --- users -------------------------------------------------------------------------------

    async def create_user(self, username: str, password_hash: str, display_name: str) -> User:
        user = User(id=new_id(), username=username, display_name=display_name)
        try:
            async with self._write() as conn:
                await users_sql.create(conn, user, password_hash, now_ms())
        except IntegrityError:
            # The UNIQUE constraint on username_lower decides, also between nodes.
            raise ChatError(ErrorCode.CONFLICT, "That username is taken.") from None
        return user

    async def get_user(self, user_id: str) -> User | None:
        if self._sqlite_reader is not None:  # every session start reads it
            found = await self._sqlite_reader.rows(
                users_sql.SQLITE_USER_BY_ID, {"user_id": user_id}
            )
            return user_of(*found) if found else None
        async with self._read() as conn:
            return await users_sql.get(conn, user_id)

    async def get_credentials(self, username: str) -> Credentials | None:
        async with self._read() as conn:
            return await users_sql.credentials(conn, username)

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        async with self._write() as conn:
            await users_sql.set_password_hash(conn, user_id, password_hash)

    async def search_users(self, prefix: str, limit: int) -> list[User]:
        if limit <= 0:
            return []
        async with self._read() as conn:
            return await users_sql.search(conn, prefix, limit)

    async def list_users(self, limit: int, offset: int = 0) -> list[User]:
        async with self._read() as conn:
            return await users_sql.listed(conn, limit, offset)

    # --- logins and refresh tokens ----------------------------------------------------------

    async def create_login(
        self, user_id: str, refresh_hash: str, refresh_expires_ts: int, now_ts: int
    ) -> str:
        login_id = new_id()
        async with self._write() as conn:
            await users_sql.create_login(
                conn, login_id, user_id, refresh_hash, refresh_expires_ts, now_ts
            )
        return login_id

    async def rotate_refresh_token(
        self, old_hash: str, new_hash: str, new_expires_ts: int, now_ts: int
    ) -> RefreshOutcome:
        async with self._write() as conn:
            return await users_sql.rotate_refresh_token(
                conn, old_hash, new_hash, new_expires_ts, now_ts
            )

    async def end_login(self, login_id: str, now_ts: int) -> None:
        async with self._write() as conn:
            await users_sql.end_login(conn, login_id, now_ts)

    async def login_ended(self, login_id: str) -> bool:
        async with self._read() as conn:
            return await users_sql.login_ended(conn, login_id)

    async def ended_logins_since(self, since_ts: int) -> list[str]:
        async with self._read() as conn:
            return await users_sql.ended_logins_since(conn, since_ts)

    # --- settings --------------------------------------------------------------------------

    async def get_settings(self, user_id: str) -> dict[str, Any]:
        stmt = select(user_settings.c.data).where(user_settings.c.user_id == user_id)
        async with self._read() as conn:
            data = (await conn.execute(stmt)).scalar()
        return orjson.loads(data) if data is not None else {}

    async def put_settings(self, user_id: str, settings: dict[str, Any]) -> None:
        data = orjson.dumps(settings).decode()
        async with self._write() as conn:
            await users_sql.require(conn, user_id)
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            stmt = dialect.insert(user_settings).values(
                user_id=user_id, data=data, updated_ts=now_ms()
            )
            await conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[user_settings.c.user_id],
                    set_={"data": stmt.excluded.data, "updated_ts": stmt.excluded.updated_ts},
                )
            )

    # --- rooms -------------------------------------------------------------------------------

    async def create_direct_room(self, user_a: str, user_b: str, now_ts: int) -> tuple[Room, bool]:
        if not plausible(user_a, user_b):
            raise bad_request("Unknown user.")
        # Opening an existing room is the common case: a read, without the write lock.
        async with self._read() as conn:
            existing = await rooms.find_direct(conn, user_a, user_b)
        if existing is not None:
            return existing, False
        async with self._write() as conn:
            return await rooms.create_direct(conn, user_a, user_b, now_ts)

    async def create_group_room(
        self, owner_id: str, name: str, member_ids: Sequence[str], now_ts: int
    ) -> Room:
        if not plausible(owner_id, *member_ids):
            raise bad_request("Unknown user.")
        async with self._write() as conn:
            return await rooms.create_group(conn, owner_id, name, member_ids, now_ts)

    async def get_room(self, room_id: str) -> Room | None:
        if not plausible(room_id):
            return None
        async with self._read() as conn:
            return await rooms.get_room(conn, room_id)

    async def add_member(self, room_id: str, user_id: str, now_ts: int) -> Room | None:
        if not plausible(room_id):
            raise not_found("This room")
        if not plausible(user_id):
            raise bad_request("Unknown user.")
        async with self._write() as conn:
            return await rooms.add_member(conn, room_id, user_id, now_ts)

    async def remove_member(self, room_id: str, user_id: str) -> Room | None:
        if not plausible(room_id, user_id):
            return None
        async with self._write() as conn:
            return await rooms.remove_member(conn, room_id, user_id)

    async def list_rooms(self, user_id: str) -> list[RoomView]:
        if not plausible(user_id):
            return []
        async with self._read(snapshot=True) as conn:
            return await rooms.views(conn, user_id)

    async def room_view(self, room_id: str, user_id: str) -> RoomView | None:
        if not plausible(room_id, user_id):
            return None
        async with self._read(snapshot=True) as conn:
            found = await rooms.views(conn, user_id, room_id)
        return found[0] if found else None

    async def room_seqs(self, user_id: str) -> dict[str, int]:
        if not plausible(user_id):
            return {}
        if self._sqlite_reader is not None:
            return await self._sqlite_reader.room_seqs(user_id)
        async with self._read() as conn:
            return await rooms.room_seqs(conn, user_id)

    async def direct_peers(self, user_id: str) -> list[str]:
        if not plausible(user_id):
            return []
        if self._sqlite_reader is not None:
            return await self._sqlite_reader.user_ids("direct_peers", user_id)
        async with self._read() as conn:
            return await rooms.direct_peers(conn, user_id)

    async def mark_read(self, room_id: str, user_id: str, seq: int) -> int | None:
        if not plausible(room_id, user_id):
            return None
        async with self._write() as conn:
            return await rooms.mark_read(conn, room_id, user_id, seq)

    # --- messages ----------------------------------------------------------------------------

    async def store_messages(self, drafts: Sequence[Draft]) -> list[Stored | ChatError]:
        """One write transaction for the whole batch (see `messages.store_batch`); a batch the
        database refused is run once more from the start (nothing of the first try stayed).

        On a SQLite file the transaction runs in the batch writer's thread on its sqlite3
        connection, under the same write lock as every other write of this process; on
        PostgreSQL on asyncpg on the writer's own event loop (`LoopWriter`); an in-memory
        SQLite database on the async engine. All make the same decisions (`messages.Batch`).
        """
        if not drafts:
            return []
        batch_writer = self._batch_writer
        if batch_writer is not None:
            assert self._write_lock is not None, "a SQLite storage has a write lock"
            async with self._write_lock:
                return await batch_writer.run(
                    lambda db: messages.store_batch(SqliteStatements(db), drafts)
                )

        if self._loop_writer is not None:
            return await self._loop_writer.store(drafts)

        def work(sync_conn: Connection) -> list[Stored | ChatError]:
            return messages.store_batch(messages.SqlStatements(sync_conn), drafts)

        return await self._write_with_retry(lambda conn: conn.run_sync(work))

    async def find_message_by_ref(self, sender_id: str, room_id: str, ref: str) -> Message | None:
        if not plausible(sender_id, room_id, ref):
            return None
        async with self._read() as conn:
            return await messages.find_by_ref(conn, sender_id, room_id, ref)

    async def get_message(self, room_id: str, message_id: str) -> Message | None:
        if not plausible(room_id, message_id):
            return None
        async with self._read() as conn:
            return await messages.get(conn, room_id, message_id)

    async def messages_after(self, room_id: str, after_seq: int, limit: int) -> list[Message]:
        if not plausible(room_id):
            return []
        if self._sqlite_reader is not None and limit > 0:
            return await self._sqlite_reader.messages_after(room_id, after_seq, limit)
        if self._loop_writer is not None and limit > 0:
            return await self._loop_writer.messages_after(room_id, i64(after_seq), i64(limit))
        async with self._read() as conn:
            return await messages.after(conn, room_id, after_seq, limit)

    async def messages_before(
        self, room_id: str, before_seq: int | None, limit: int
    ) -> list[Message]:
        if not plausible(room_id):
            return []
        async with self._read() as conn:
            return await messages.before(conn, room_id, before_seq, limit)

    async def updated_since(self, room_id: str, since_ts: int, max_seq: int) -> list[Message]:
        if not plausible(room_id):
            return []
        async with self._read() as conn:
            return await messages.updated_since(conn, room_id, since_ts, max_seq)

    async def edit_message(
        self, room_id: str, message_id: str, body: str, now_ts: int
    ) -> Message | None:
        if not plausible(room_id, message_id):
            return None
        async with self._write() as conn:
            return await messages.edit(conn, room_id, message_id, body, now_ts)

    async def delete_message(self, room_id: str, message_id: str, now_ts: int) -> Message | None:
        if not plausible(room_id, message_id):
            return None
        async with self._write() as conn:
            return await messages.delete(conn, room_id, message_id, now_ts)

    # --- contacts and blocks ------------------------------------------------------------------

    async def get_user_by_username(self, username: str) -> User | None:
        if not plausible(username):
            return None
        async with self._read() as conn:
            return await contacts.user_by_username(conn, username)

    async def create_invitation(
        self, from_id: str, to_id: str, now_ts: int, hidden: bool = False
    ) -> tuple[Invitation, bool]:
        if not plausible(from_id, to_id):
            raise not_found("This user")
        return await self._write_with_retry(
            lambda conn: contacts.create_invitation(conn, from_id, to_id, now_ts, hidden)
        )

    async def get_invitation(self, invitation_id: str) -> Invitation | None:
        if not plausible(invitation_id):
            return None
        async with self._read() as conn:
            return await contacts.get_invitation(conn, invitation_id)

    async def answer_invitation(
        self, invitation_id: str, status: InvitationStatus, now_ts: int
    ) -> Invitation | None:
        if not plausible(invitation_id):
            return None
        return await self._write_with_retry(
            lambda conn: contacts.answer_invitation(conn, invitation_id, status, now_ts)
        )

    async def pending_invitations(self, user_id: str) -> tuple[list[Invitation], list[Invitation]]:
        if not plausible(user_id):
            return [], []
        async with self._read(snapshot=True) as conn:
            return await contacts.pending_invitations(conn, user_id)

    async def list_contacts(self, user_id: str) -> list[Contact]:
        if not plausible(user_id):
            return []
        async with self._read() as conn:
            return await contacts.list_contacts(conn, user_id)

    async def get_contact(self, user_id: str, other_id: str) -> Contact | None:
        if not plausible(user_id, other_id):
            return None
        async with self._read() as conn:
            return await contacts.get_contact(conn, user_id, other_id)

    async def contact_ids(self, user_id: str) -> list[str]:
        if not plausible(user_id):
            return []
        if self._sqlite_reader is not None:
            return await self._sqlite_reader.user_ids("contacts", user_id)
        async with self._read() as conn:
            return await contacts.contact_ids(conn, user_id)

    async def remove_contact(self, user_id: str, other_id: str) -> bool:
        if not plausible(user_id, other_id):
            return False
        async with self._write() as conn:
            return await contacts.remove_contact(conn, user_id, other_id)

    async def block(self, blocker_id: str, blocked_id: str, now_ts: int) -> BlockChange:
        if not plausible(blocker_id, blocked_id):
            raise not_found("This user")
        return await self._write_with_retry(
            lambda conn: contacts.block(conn, blocker_id, blocked_id, now_ts)
        )

    async def unblock(self, blocker_id: str, blocked_id: str, now_ts: int) -> list[Invitation]:
        if not plausible(blocker_id, blocked_id):
            return []
        async with self._write() as conn:
            return await contacts.unblock(conn, blocker_id, blocked_id, now_ts)

    async def block_state(self, user_a: str, user_b: str) -> tuple[bool, bool]:
        if not plausible(user_a, user_b):
            return False, False
        async with self._read() as conn:
            return await contacts.block_state(conn, user_a, user_b)

    async def blocked_users(self, blocker_id: str) -> list[User]:
        if not plausible(blocker_id):
            return []
        async with self._read() as conn:
            return await contacts.blocked_users(conn, blocker_id)

    async def blocks_involving(self, user_id: str) -> list[str]:
        if not plausible(user_id):
            return []
        if self._sqlite_reader is not None:
            return await self._sqlite_reader.user_ids("blocks", user_id)
        async with self._read() as conn:
            return await contacts.blocks_involving(conn, user_id)

    # --- media, sticker packs, profiles -------------------------------------------------------

    async def create_media(self, media: Media) -> Media:
        async with self._write() as conn:
            return await media_sql.create_media(conn, media)

    async def get_media(self, media_id: str) -> Media | None:
        if not plausible(media_id):
            return None
        async with self._read() as conn:
            return await media_sql.get_media(conn, media_id)

    async def media_shared_with(self, media_id: str, user_id: str) -> bool:
        if not plausible(media_id, user_id):
            return False
        async with self._read() as conn:
            return await media_sql.shared_with(conn, media_id, user_id)

    async def put_sticker_pack(self, pack: StickerPack, now_ts: int) -> StickerPack:
        async with self._write() as conn:
            return await media_sql.put_pack(conn, pack, now_ts)

    async def list_sticker_packs(self) -> list[StickerPack]:
        async with self._read(snapshot=True) as conn:
            return await media_sql.packs(conn)

    async def get_sticker_pack(self, pack_id: str) -> StickerPack | None:
        if not plausible(pack_id):
            return None
        async with self._read(snapshot=True) as conn:
            found = await media_sql.packs(conn, pack_id)
        return found[0] if found else None

    async def get_sticker(self, sticker_id: str) -> Sticker | None:
        if not plausible(sticker_id):
            return None
        async with self._read() as conn:
            return await media_sql.get_sticker(conn, sticker_id)

    async def update_profile(self, user_id: str, changes: Mapping[str, str | None]) -> User | None:
        if not plausible(user_id):
            return None
        async with self._write() as conn:
            if not await media_sql.update_profile(conn, user_id, changes):
                return None
            return await users_sql.get(conn, user_id)

    # --- push devices -------------------------------------------------------------------------

    async def add_device(self, device: Device, max_devices: int) -> tuple[Device, bool]:
        if not plausible(device.user_id):
            raise not_found("The user")
        check_text(device.address)
        return await self._write_with_retry(lambda conn: devices.add(conn, device, max_devices))

    async def list_devices(self, user_id: str) -> list[Device]:
        if not plausible(user_id):
            return []
        async with self._read() as conn:
            return await devices.list_of(conn, user_id)

    async def delete_device(self, user_id: str, device_id: str) -> bool:
        if not plausible(user_id, device_id):
            return False
        async with self._write() as conn:
            return await devices.remove(conn, user_id, device_id)

    # --- push queue ---------------------------------------------------------------------------

    async def enqueue_pushes(self, pushes: Sequence[QueuedPush]) -> None:
        if pushes:
            await self._push_write(lambda run: push_queue.enqueue(run, pushes))

    async def claim_pushes(self, now_ts: int, lease_ms: int, limit: int) -> list[ClaimedPush]:
        return await self._push_write(lambda run: push_queue.claim(run, now_ts, lease_ms, limit))

    async def settle_pushes(self, finished: Sequence[str], retries: Mapping[str, int]) -> None:
        finished = [push_id for push_id in finished if plausible(push_id)]
        retries = {push_id: due for push_id, due in retries.items() if plausible(push_id)}
        if finished or retries:
            await self._push_write(lambda run: push_queue.settle(run, finished, retries))

    async def _push_write(self, work: Callable[[push_queue.Run], T]) -> T:
        """`work` in one write transaction: on SQLite in one hop to the batch writer's thread
        (through aiosqlite each statement is a hop, and the message writer waits meanwhile),
        else on a SQLAlchemy connection."""
        batch_writer = self._batch_writer
        if batch_writer is not None:
            assert self._write_lock is not None, "a SQLite storage has a write lock"
            async with self._write_lock:
                return await batch_writer.run(lambda db: work(SqliteRun(db)))
        return await self._write_with_retry(
            lambda conn: conn.run_sync(lambda sync: work(push_queue.on_connection(sync)))
        )

    async def push_audience(self, room_ids: Sequence[str]) -> PushAudience:
        room_ids = [room_id for room_id in room_ids if plausible(room_id)]
        if not room_ids:
            return PushAudience(rooms={}, targets={})
        if self._sqlite_reader is not None:  # after every batch of messages: one hop
            return await self._sqlite_reader.push_audience(room_ids)
        async with self._read() as conn:
            return await push_queue.audience(conn, room_ids)

    # --- rate limits --------------------------------------------------------------------------

    async def take_token(self, key: str, burst: int, interval_ms: int, now_ts: int) -> int:
        check_text(key)
        wait = await self._write_with_retry(
            lambda conn: rate_limits.take(conn, key, burst, interval_ms, now_ts)
        )
        if now_ts >= self._next_prune_ts:
            self._next_prune_ts = now_ts + RATE_LIMIT_PRUNE_MS
            await self._prune_rate_limits(now_ts)
        return wait

    async def return_token(self, key: str, interval_ms: int, now_ts: int) -> None:
        check_text(key)
        async with self._write() as conn:
            await rate_limits.give_back(conn, key, interval_ms, now_ts)

    async def _prune_rate_limits(self, now_ts: int) -> None:
        """Forget full buckets, in a transaction of its own (it holds no bucket's row while it
        waits); a failure only leaves them for the next round."""
        try:
            async with self._write() as conn:
                await rate_limits.prune(conn, now_ts)
        except Exception:
            log.warning("could not delete full rate-limit buckets", exc_info=True)

    # --- administration: server admins, logins, erasure, audit log ---------------------------

    async def get_tombstone(self, user_id: str) -> User | None:
        if not plausible(user_id):
            return None
        async with self._read() as conn:
            return await admin_sql.tombstone(conn, user_id)

    async def set_admin(self, user_id: str, is_admin: bool) -> User | None:
        if not plausible(user_id):
            return None
        async with self._write() as conn:
            return await admin_sql.set_admin(conn, user_id, is_admin)

    async def disable_user(self, user_id: str, now_ts: int) -> list[str] | None:
        if not plausible(user_id):
            return None
        return await self._write_with_retry(lambda conn: admin_sql.disable(conn, user_id, now_ts))

    async def enable_user(self, user_id: str) -> User | None:
        if not plausible(user_id):
            return None
        async with self._write() as conn:
            return await admin_sql.enable(conn, user_id)

    async def user_logins(self, user_id: str, limit: int) -> list[LoginInfo]:
        if not plausible(user_id):
            return []
        async with self._read() as conn:
            return await admin_sql.user_logins(conn, user_id, i64(limit))

    async def end_user_logins(self, user_id: str, login_id: str | None, now_ts: int) -> list[str]:
        if not plausible(user_id, login_id or ""):
            return []
        async with self._write() as conn:
            return await admin_sql.end_logins(conn, user_id, login_id, now_ts)

    async def admin_users(self, query: str, limit: int, offset: int) -> list[AdminUser]:
        check_text(query)
        async with self._read(snapshot=True) as conn:
            return await admin_sql.admin_users(conn, query, i64(limit), i64(offset))

    async def admin_user(self, user_id: str) -> AdminUser | None:
        if not plausible(user_id):
            return None
        async with self._read(snapshot=True) as conn:
            return await admin_sql.admin_user(conn, user_id)

    async def admin_rooms(self, limit: int, offset: int) -> list[AdminRoom]:
        async with self._read(snapshot=True) as conn:
            return await admin_sql.admin_rooms(conn, i64(limit), i64(offset))

    async def shutdown_room(self, room_id: str) -> list[str] | None:
        if not plausible(room_id):
            return None
        return await self._write_with_retry(lambda conn: admin_sql.shutdown_room(conn, room_id))

    async def erase_user(self, user_id: str, remove_messages: bool, now_ts: int) -> Erasure | None:
        if not plausible(user_id):
            return None

        async def erase(conn: AsyncConnection) -> Erasure | None:
            erasure = await admin_sql.erase(conn, user_id, remove_messages, now_ts)
            if erasure is not None:  # what reports keep of them goes in the same transaction
                await reports_sql.erase(conn, user_id)
            return erasure

        return await self._write_with_retry(erase)

    async def add_audit_entry(
        self,
        ts: int,
        actor_id: str | None,
        action: str,
        target_kind: str,
        target_id: str,
        room_id: str | None,
        details: Mapping[str, Any],
    ) -> AuditEntry:
        check_text(actor_id, action, target_kind, target_id, room_id)
        async with self._write() as conn:
            return await admin_sql.add_audit_entry(
                conn, ts, actor_id, action, target_kind, target_id, room_id, details
            )

    async def audit_entries(
        self,
        limit: int,
        before: str | None = None,
        target_kind: str | None = None,
        target_id: str | None = None,
    ) -> list[AuditEntry]:
        if not plausible(before or "", target_kind or "", target_id or ""):
            return []
        async with self._read() as conn:
            return await admin_sql.audit_entries(conn, i64(limit), before, target_kind, target_id)

    # --- room administration: roles, mutes, bans, the room log --------------------------------

    async def update_room(self, room_id: str, changes: Mapping[str, str | None]) -> Room | None:
        if not plausible(room_id):
            return None
        async with self._write() as conn:
            return await moderation.update_room(conn, room_id, changes)

    async def set_member_role(self, room_id: str, user_id: str, role: RoomRole) -> Room | None:
        if not plausible(room_id, user_id):
            return None
        async with self._write() as conn:
            return await moderation.set_role(conn, room_id, user_id, role)

    async def transfer_ownership(self, room_id: str, new_owner_id: str) -> Room | None:
        if not plausible(room_id, new_owner_id):
            return None
        async with self._write() as conn:
            return await moderation.transfer_ownership(conn, room_id, new_owner_id)

    async def set_muted_until(self, room_id: str, user_id: str, until_ts: int | None) -> bool:
        if not plausible(room_id, user_id):
            return False
        async with self._write() as conn:
            return await moderation.set_muted_until(conn, room_id, user_id, until_ts)

    async def muted_until(self, room_id: str, user_id: str) -> int | None:
        if not plausible(room_id, user_id):
            return None
        async with self._read() as conn:
            return await moderation.muted_until(conn, room_id, user_id)

    async def ban_member(self, ban: RoomBan) -> tuple[Room, bool] | None:
        if not plausible(ban.room_id, ban.user_id):
            return None
        async with self._write() as conn:
            return await moderation.ban(conn, ban)

    async def unban(self, room_id: str, user_id: str) -> bool:
        if not plausible(room_id, user_id):
            return False
        async with self._write() as conn:
            return await moderation.unban(conn, room_id, user_id)

    async def get_ban(self, room_id: str, user_id: str) -> RoomBan | None:
        if not plausible(room_id, user_id):
            return None
        async with self._read() as conn:
            return await moderation.get_ban(conn, room_id, user_id)

    async def list_bans(self, room_id: str) -> list[RoomBan]:
        if not plausible(room_id):
            return []
        async with self._read() as conn:
            return await moderation.list_bans(conn, room_id)

    async def append_room_log(self, entry: RoomLogDraft) -> RoomLogEntry:
        if not plausible(entry.room_id):
            raise not_found("This room")
        async with self._write() as conn:
            return await moderation.append_log(conn, entry)

    async def room_log(self, room_id: str, before_id: str | None, limit: int) -> list[RoomLogEntry]:
        if not plausible(room_id):
            return []
        async with self._read() as conn:
            return await moderation.log_page(conn, room_id, before_id, limit)

    # --- reports and search -------------------------------------------------------------------

    async def search_messages(
        self,
        user_id: str,
        query: str,
        room_id: str | None = None,
        before: tuple[int, str] | None = None,
        limit: int = 50,
    ) -> tuple[list[Message], bool]:
        if not plausible(user_id, query, room_id or "", before[1] if before else ""):
            return [], False
        await self.index_pending()  # every message committed is found
        async with self._read() as conn:
            return await search_sql.search(conn, user_id, query, room_id, before, limit)

    async def create_report(self, report: Report) -> tuple[Report, bool]:
        return await self._write_with_retry(lambda conn: reports_sql.create(conn, report))

    async def get_report(self, report_id: str) -> Report | None:
        if not plausible(report_id):
            return None
        async with self._read() as conn:
            return await reports_sql.get(conn, report_id)

    async def list_reports(
        self,
        status: ReportStatus | None = None,
        before: tuple[int, str] | None = None,
        limit: int = 50,
    ) -> tuple[list[Report], bool]:
        if before is not None and not plausible(before[1]):
            return [], False
        async with self._read() as conn:
            return await reports_sql.listed(conn, status, before, limit)

    async def resolve_report(
        self, report_id: str, resolver_id: str, note: str | None, now_ts: int
    ) -> tuple[Report, bool] | None:
        if not plausible(report_id):
            return None
        async with self._write() as conn:
            return await reports_sql.resolve(conn, report_id, resolver_id, note, now_ts)

    # --- retention ------------------------------------------------------------------------------

    async def get_room_retention(self, room_id: str) -> int | None:
        if not plausible(room_id):
            return None
        async with self._read() as conn:
            return await retention_sql.get_days(conn, room_id)

    async def set_room_retention(self, room_id: str, days: int | None, now_ts: int) -> None:
        async with self._write() as conn:
            await retention_sql.set_days(conn, room_id, days, now_ts)

    async def retention_rooms(
        self, after_id: str, limit: int, *, every_room: bool
    ) -> list[tuple[str, int | None]]:
        async with self._read() as conn:
            return await retention_sql.rooms_page(conn, after_id, limit, every_room)

    async def first_seq(self, room_id: str) -> int:
        if not plausible(room_id):
            return 0
        async with self._read(snapshot=True) as conn:
            return await retention_sql.first_seq(conn, room_id)

    async def purge_messages(self, room_id: str, before_ts: int, limit: int) -> PurgedMessages:
        async with self._write() as conn:
            return await retention_sql.purge_messages(conn, room_id, before_ts, limit)

    async def purge_media(
        self, before_ts: int, limit: int, only: Sequence[str] | None = None
    ) -> PurgedMedia:
        async with self._write() as conn:
            return await retention_sql.purge_media(conn, before_ts, limit, only)

    async def claim_lease(self, name: str, holder: str, now_ts: int, lease_ms: int) -> bool:
        return await self._write_with_retry(
            lambda conn: retention_sql.claim_lease(conn, name, holder, now_ts, lease_ms)
        )

    async def release_lease(self, name: str, holder: str) -> None:
        async with self._write() as conn:
            await retention_sql.release_lease(conn, name, holder)
