"""The live WebSocket sessions of this node, and the events that reach them from any node.

The hub subscribes to a room's broker channel while a local session is in that room, and to a
user's channel while that user has a local session; it routes what arrives to the sessions
without decoding the event (`chatcore.server.realtime.fanout`). It also keeps cluster-wide presence
(`chatcore.server.realtime.cluster`): it tells the other nodes who is online here, and announces a
user online
when their first session anywhere opens, offline when their last one anywhere closes.

Events that must not cross a block (typing, receipts) name in their envelope whom to leave
out; the hub keeps each local user's block set (`chatcore.server.realtime.blocklist`), updated by
the notes
every block and unblock publishes on both users' channels.

Presence work (deltas, snapshots, announcements) goes through one queue drained by one task, so
this node's notes leave in the order its sessions changed, and nobody publishes while holding
`_lock`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import OrderedDict, defaultdict
from collections.abc import Awaitable, Callable, Collection, Iterable
from typing import TYPE_CHECKING, Any

import orjson

from chatcore.metrics import Tally, core_metrics
from chatcore.protocol.frames import encode, message_event
from chatcore.server.realtime.blocklist import BlockSets
from chatcore.server.realtime.cluster import (
    PRESENCE_CHANNEL,
    ClusterView,
    Kind,
    PresenceNote,
    new_node_id,
)
from chatcore.server.realtime.fanout import (
    Envelope,
    pack,
    room_channel,
    seal,
    unpack,
    user_channel,
)
from chatcore.server.realtime.ordering import RoomOrder
from chatcore.server.realtime.presence import presence_audience

if TYPE_CHECKING:
    from chatcore.interfaces import Subscription
    from chatcore.server.app import App
    from chatcore.server.realtime.session import Session

log = logging.getLogger(__name__)

#: Broker channel announcing ended logins: `{"login_id": ...}`. Every node closes that login's
#: sessions with 4401 and stops accepting its access tokens.
LOGINS_CHANNEL = "chatcore.logins"

CLOSE_LOGIN_ENDED = 4401

#: How long, and how many, ended logins a node remembers to catch a session that was being
#: authenticated while its login ended (its token verified just before the news arrived).
RECENT_LOGINS_SECONDS = 300.0
RECENT_LOGINS_MAX = 10_000

#: How long a stopping node waits for its queued presence work (e.g. a broker that is down).
PRESENCE_DRAIN_SECONDS = 5.0

_Job = Callable[[], Awaitable[None]]


def login_ended_event(login_id: str) -> bytes:
    return orjson.dumps({"login_id": login_id})


def parse_login_ended(data: bytes) -> str | None:
    """The login id of a `login_ended_event`, or None (logged) when the event is malformed."""
    try:
        login_id = orjson.loads(data)["login_id"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        login_id = None
    if isinstance(login_id, str) and login_id:
        return login_id
    log.warning("ignoring a malformed event on %s", LOGINS_CHANNEL)
    return None


class Hub:
    """Sessions by user and by login. Transports add and remove sessions; the hub routes."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.by_user: dict[str, set[Session]] = defaultdict(set)
        self.by_login: dict[str, set[Session]] = defaultdict(set)
        self.rooms: dict[str, set[Session]] = defaultdict(set)
        self._subscription: Subscription | None = None
        self._recently_ended: OrderedDict[str, float] = OrderedDict()
        self._room_subs: dict[str, Subscription] = {}
        self._orders: dict[str, RoomOrder] = {}
        self._membership_tasks: set[asyncio.Task[None]] = set()
        self._user_subs: dict[str, Subscription] = {}
        # Bound once: every user's subscription shares it instead of holding its own.
        self._user_handler = self._on_user_event
        #: Whom each user with a session here is blocked with (typing and receipts skip them).
        self.blocks = BlockSets(self._read_blocks, self._user_subs.__contains__)
        presence = app.settings.presence
        self.node_id = new_node_id()
        self.cluster = ClusterView(self.node_id, presence.ttl_seconds)
        self._heartbeat_seconds = presence.heartbeat_seconds
        self._presence_sub: Subscription | None = None
        self._outbox: asyncio.Queue[tuple[_Job, asyncio.Future[None]] | None] = asyncio.Queue()
        self._presence_tasks: list[asyncio.Task[Any]] = []
        # Subscribing and announcing presence await the broker; one lock keeps two sessions of
        # one user (or one room) from subscribing twice. Delivery never takes it.
        self._lock = asyncio.Lock()
        # Events handed to sessions (`chatcore_events_delivered_total`), counted once per event
        # by how many sessions get it; the app's metrics are taken on at start.
        self._delivered_messages = Tally()
        self._delivered_other = Tally()

    async def start(self) -> None:
        metrics = core_metrics(self.app)
        self._delivered_messages = metrics.delivered_messages
        self._delivered_other = metrics.delivered_other
        self._subscription = await self.app.broker.subscribe(LOGINS_CHANNEL, self._on_login_event)
        self._presence_sub = await self.app.broker.subscribe(PRESENCE_CHANNEL, self._on_presence)
        self._presence_tasks = [
            asyncio.create_task(self._presence_worker()),
            asyncio.create_task(self._heartbeat()),
        ]
        self._note("hello")

    async def stop(self) -> None:
        if self._presence_tasks:
            worker, heartbeat = self._presence_tasks
            heartbeat.cancel()
            self._note("bye")
            self._presence_tasks = []
            self._outbox.put_nowait(None)
            try:
                await asyncio.wait_for(worker, PRESENCE_DRAIN_SECONDS)
            except TimeoutError:
                log.warning("presence: gave up on queued presence work while stopping")
            await asyncio.gather(heartbeat, return_exceptions=True)
        for task in list(self._membership_tasks):
            task.cancel()
        await asyncio.gather(*self._membership_tasks, return_exceptions=True)
        subscriptions = [*self._room_subs.values(), *self._user_subs.values()]
        for sub in (self._subscription, self._presence_sub):
            if sub is not None:
                subscriptions.append(sub)
        self._subscription = self._presence_sub = None
        self._room_subs.clear()
        self._user_subs.clear()
        for order in self._orders.values():
            order.close()
        self._orders.clear()
        for subscription in subscriptions:
            await subscription.unsubscribe()

    def add(self, session: Session) -> None:
        identity = session.identity
        assert identity is not None, "only authenticated sessions join the hub"
        self.by_user[identity.user_id].add(session)
        self.by_login[identity.login_id].add(session)

    def remove(self, session: Session) -> None:
        identity = session.identity
        if identity is None:
            return
        for index, key in ((self.by_user, identity.user_id), (self.by_login, identity.login_id)):
            sessions = index.get(key)
            if sessions is not None:
                sessions.discard(session)
                if not sessions:
                    del index[key]
        for room_id in session.rooms:
            members = self.rooms.get(room_id)
            if members is not None:
                members.discard(session)
                if not members:
                    del self.rooms[room_id]

    async def attach(self, session: Session, room_ids: Iterable[str]) -> None:
        """Subscribe what a newly added session needs; announce its user online if first."""
        user_id = session.user_id
        async with self._lock:
            if user_id not in self._user_subs:
                self._user_subs[user_id] = await self.app.broker.subscribe(
                    user_channel(user_id), self._user_handler
                )
            for room_id in room_ids:
                await self._join(session, room_id)
            done = None
            if user_id not in self.cluster.local and self.by_user.get(user_id):
                announce = self.cluster.local_online(user_id)
                done = self._note("delta", [user_id], "online")
                if announce:
                    done = self._queue(functools.partial(self._announce, user_id, "online"))
        if done is not None:
            await done  # so the announcement went out before the session hears `ready`

    async def detach(self, session: Session) -> None:
        """Forget a closed session; unsubscribe what nobody here needs; announce offline."""
        self.remove(session)
        user_id = session.user_id
        async with self._lock:
            await self._prune(session.rooms)
            session.rooms = set()
            done = None
            if not self.by_user.get(user_id):
                subscription = self._user_subs.pop(user_id, None)
                self.blocks.forget(user_id)
                if subscription is not None:
                    await subscription.unsubscribe()
                if user_id in self.cluster.local:
                    announce = self.cluster.local_offline(user_id)
                    done = self._note("delta", [user_id], "offline", announced=announce)
                    if announce:
                        done = self._queue(functools.partial(self._announce, user_id, "offline"))
        if done is not None:
            await done

    async def _join(self, session: Session, room_id: str) -> None:
        if session.closed_code is not None:
            return
        session.rooms.add(room_id)
        self.rooms[room_id].add(session)
        if room_id not in self._room_subs:
            self._room_subs[room_id] = await self.app.broker.subscribe(
                room_channel(room_id), self._on_room_event
            )

    async def _prune(self, room_ids: Iterable[str]) -> None:
        for room_id in list(room_ids):
            if not self.rooms.get(room_id):
                self.rooms.pop(room_id, None)
                order = self._orders.pop(room_id, None)
                if order is not None:
                    order.close()
                subscription = self._room_subs.pop(room_id, None)
                if subscription is not None:
                    await subscription.unsubscribe()

    # --- cluster presence ------------------------------------------------------------------

    def _queue(self, job: _Job) -> asyncio.Future[None]:
        """Run `job` after every presence job queued before it; the future resolves once it
        ran (failures are logged). A stopped hub drops the job: its `bye` covers the rest."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._presence_tasks:
            self._outbox.put_nowait((job, done))
        else:
            done.set_result(None)
        return done

    def _note(
        self, kind: Kind, users: list[str] | None = None, status: str = "", announced: bool = True
    ) -> asyncio.Future[None]:
        """Queue a note to the other nodes; a snapshot/hello lists the local users when sent."""

        async def send() -> None:
            listed = sorted(self.cluster.local) if users is None else users
            note = PresenceNote(kind, self.node_id, listed, status, announced)
            await self.app.broker.publish(PRESENCE_CHANNEL, note.encode())

        return self._queue(send)

    async def _presence_worker(self) -> None:
        while (item := await self._outbox.get()) is not None:
            job, done = item
            try:
                await job()
            except Exception:
                log.exception("presence: a queued job failed")
            finally:
                if not done.done():
                    done.set_result(None)

    async def _heartbeat(self) -> None:
        """Every heartbeat: tell the others who is online here; forget silent nodes."""
        while True:
            await asyncio.sleep(self._heartbeat_seconds)
            self._note("snapshot")
            for user_id in self.cluster.expire(time.monotonic()):
                self._queue(functools.partial(self._announce, user_id, "offline"))

    def _on_presence(self, data: bytes) -> None:
        note = PresenceNote.decode(data)
        if note is None or note.node == self.node_id:
            return
        for user_id in self.cluster.heard(note, time.monotonic()):
            self._queue(functools.partial(self._announce, user_id, "offline"))
        if note.kind == "hello":
            self._note("snapshot")  # so the new node knows our users without waiting

    async def _announce(self, user_id: str, status: str) -> None:
        event = encode({"type": "presence", "user_id": user_id, "status": status})
        for peer in await presence_audience(self.app, user_id):
            await self.publish_user(peer, event)

    # --- publishing: every node (this one included) routes what it receives ---------------

    async def publish_room(
        self,
        room_id: str,
        event: bytes,
        *,
        seq: int | None = None,
        skip_user: str | None = None,
        hide_from: Collection[str] = (),
    ) -> None:
        """Send an encoded event to every session of every member of a room, on any node,
        except those of `skip_user` and of the users in `hide_from` (an event that must not
        cross a block: its author's `blocks`)."""
        header: dict[str, Any] = {"room": room_id}
        if seq is not None:
            header["seq"] = seq
        if skip_user is not None:
            header["skip_user"] = skip_user
        if hide_from:
            header["hide"] = sorted(hide_from)
        await self.app.broker.publish(room_channel(room_id), seal(header, event))

    async def publish_user(
        self,
        user_id: str,
        event: bytes,
        *,
        room_id: str | None = None,
        members: Iterable[str] | None = None,
    ) -> None:
        """Send an encoded event to every session of one user, on any node.

        With `room_id` and `members` (a room's members after a change), every node also joins
        or leaves that room for the user's sessions, before they get the event.
        """
        header_members = list(members) if members is not None else None
        await self.app.broker.publish(
            user_channel(user_id),
            pack(event, user=user_id, room=room_id, members=header_members),
        )

    def _on_room_event(self, data: bytes) -> None:
        envelope, room_id = _routed(data, "room")
        if envelope is None:
            return
        seq = envelope.seq
        if seq is not None:  # a message: released in seq order (chatcore.server.realtime.ordering)
            self._order_of(room_id).receive(seq, envelope.event)
            return
        skip = envelope.header.get("skip_user")
        hidden = envelope.header.get("hide") or ()
        delivered = 0
        for session in list(self.rooms.get(room_id, ())):
            user_id = session.user_id
            if user_id != skip and user_id not in hidden:
                session.deliver(room_id, None, envelope.event)
                delivered += 1
        self._delivered_other.value += delivered

    def released_seq(self, room_id: str) -> int:
        """The highest seq of the room this node has released to its sessions (-1: none)."""
        order = self._orders.get(room_id)
        return -1 if order is None or order.last is None else order.last

    def _order_of(self, room_id: str) -> RoomOrder:
        order = self._orders.get(room_id)
        if order is None:

            def release(seq: int, event: bytes) -> None:
                sessions = list(self.rooms.get(room_id, ()))
                for session in sessions:
                    session.deliver(room_id, seq, event)
                self._delivered_messages.value += len(sessions)

            async def fetch(after_seq: int, limit: int) -> list[tuple[int, bytes]]:
                found = await self.app.storage.messages_after(room_id, after_seq, limit)
                return [(m.seq, message_event(m)) for m in found]

            order = self._orders[room_id] = RoomOrder(release, fetch)
        return order

    def _on_user_event(self, data: bytes) -> None:
        envelope, user_id = _routed(data, "user")
        if envelope is None:
            return
        blocked_with = envelope.header.get("block")
        if isinstance(blocked_with, str):  # a note for this node, not an event for the sessions
            self.blocks.changed(user_id, blocked_with, envelope.header.get("blocked") is True)
            return
        room_id, members = envelope.header.get("room"), envelope.header.get("members")
        if room_id is not None and members is not None:
            # Joining may subscribe, which waits on the broker, and it takes the hub's lock,
            # whose holder may itself be waiting on the broker: never inside the broker's
            # handler, which would stall the broker's reader (a deadlock on Redis).
            task = asyncio.create_task(self._membership(user_id, room_id, members, envelope))
            self._membership_tasks.add(task)
            task.add_done_callback(self._membership_tasks.discard)
            return
        sessions = list(self.by_user.get(user_id, ()))
        for session in sessions:
            session.deliver(None, None, envelope.event)
        self._delivered_other.value += len(sessions)

    async def _membership(
        self, user_id: str, room_id: str, members: list[str], envelope: Envelope
    ) -> None:
        """Join or leave a room for the user's sessions here, then give them the event (after
        the subscription, so the room's next messages cannot be missed)."""
        sessions = list(self.by_user.get(user_id, ()))
        async with self._lock:
            for session in sessions:
                if user_id in members:
                    await self._join(session, room_id)
                else:
                    session.rooms.discard(room_id)
                    self.rooms.get(room_id, set()).discard(session)
            if user_id not in members:
                await self._prune([room_id])
        for session in sessions:
            session.deliver(None, None, envelope.event)
        self._delivered_other.value += len(sessions)

    async def block_changed(self, user_a: str, user_b: str, blocked: bool) -> None:
        """The two users are now blocked (either way), or no longer: every node updates its
        `blocks` (this one at once, so the next event here already knows)."""
        for user_id, other_id in ((user_a, user_b), (user_b, user_a)):
            self.blocks.changed(user_id, other_id, blocked)
            note = pack(b"", user=user_id, block=other_id, blocked=blocked)
            await self.app.broker.publish(user_channel(user_id), note)

    async def _read_blocks(self, user_id: str) -> list[str]:
        return await self.app.storage.blocks_involving(user_id)

    def login_ended_recently(self, login_id: str) -> bool:
        """True when this node heard within `RECENT_LOGINS_SECONDS` that the login ended."""
        self._forget_old(time.monotonic())
        return login_id in self._recently_ended

    def _forget_old(self, now: float) -> None:
        recent = self._recently_ended
        while recent and (
            len(recent) > RECENT_LOGINS_MAX
            or next(iter(recent.values())) < now - RECENT_LOGINS_SECONDS
        ):
            recent.popitem(last=False)

    def is_online(self, user_id: str) -> bool:
        """Online on any node of the cluster (as far as this node has heard)."""
        return self.cluster.is_online(user_id, time.monotonic())

    @property
    def session_count(self) -> int:
        return sum(len(s) for s in self.by_user.values())

    def _on_login_event(self, data: bytes) -> None:
        login_id = parse_login_ended(data)
        if login_id is None:
            return
        now = time.monotonic()
        self._recently_ended.pop(login_id, None)
        self._recently_ended[login_id] = now
        self._forget_old(now)
        for session in list(self.by_login.get(login_id, ())):
            session.close(CLOSE_LOGIN_ENDED, "login ended")


def _routed(data: bytes, key: str) -> tuple[Envelope | None, str]:
    """The envelope and its routing key (`room` or `user`); (None, "") when malformed."""
    try:
        envelope = unpack(data)
        target = envelope.header[key]
    except (ValueError, KeyError):
        target = None
    if not isinstance(target, str):
        log.warning("ignoring a malformed event without %r", key)
        return None, ""
    return envelope, target
