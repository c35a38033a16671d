"""Cluster-wide presence: which users are online on which node, as this node sees it.

Every node has a random node id. It tells the others, on the broker channel
`PRESENCE_CHANNEL`:

- a delta when a user's first local session opens (`"online"`) or the last one closes
  (`"offline"`);
- a snapshot of all its online users every `[presence] heartbeat_seconds`, which also says
  "I am alive" and repairs deltas the (at-most-once) broker lost;
- a `hello` snapshot when it starts, to which every other node answers with its own snapshot
  at once, so a new node knows the cluster without waiting a heartbeat;
- a `bye` when it stops, so the others forget it without waiting for the ttl.

A node not heard from for `[presence] ttl_seconds` is dead: its users count as offline.

Who announces (sends `presence` events to contacts): a user goes online when their first
session anywhere opens, and offline when their last session anywhere closes or the last node
holding them dies. The node whose local change caused the transition announces it; for a dead
node, the surviving node with the smallest node id does. Two nodes changing the same user at
the same moment (each before hearing the other's delta) may both announce: a rare duplicate
clients tolerate. Snapshots only repair the view; they never announce.

`ClusterView` is the bookkeeping alone (no I/O, the caller passes the clock), so it is tested
as a unit; `chatcore.server.realtime.hub.Hub` does the publishing.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

log = logging.getLogger(__name__)

#: Broker channel of presence deltas, snapshots, hellos and byes between nodes.
PRESENCE_CHANNEL = "chatcore.server.realtime.presence"

Kind = Literal["delta", "snapshot", "hello", "bye"]


def new_node_id() -> str:
    """A random node id: unique per start, comparable (the smallest survivor announces)."""
    return secrets.token_hex(8)


@dataclass
class PresenceNote:
    """One message on `PRESENCE_CHANNEL`."""

    kind: Kind
    node: str
    users: list[str] = field(default_factory=list)  # snapshot/hello: all; delta: one
    status: str = ""  # delta only: "online" or "offline"
    announced: bool = True  # delta only: whether the sender announced the change itself

    def encode(self) -> bytes:
        body: dict[str, Any] = {"kind": self.kind, "node": self.node}
        if self.kind == "delta":
            body["user"] = self.users[0]
            body["status"] = self.status
            body["announced"] = self.announced
        elif self.kind in ("snapshot", "hello"):
            body["users"] = self.users
        return orjson.dumps(body)

    @classmethod
    def decode(cls, data: bytes) -> PresenceNote | None:
        """The note, or None (logged) when `data` is not one."""
        try:
            body = orjson.loads(data)
            kind, node = body["kind"], body["node"]
            if not isinstance(node, str) or not node:
                raise ValueError("node")
            if kind == "delta":
                user, status = body["user"], body["status"]
                if not isinstance(user, str) or status not in ("online", "offline"):
                    raise ValueError("delta")
                announced = body.get("announced", True)
                return cls("delta", node, [user], status, announced is not False)
            if kind in ("snapshot", "hello"):
                users = body["users"]
                if not isinstance(users, list) or not all(isinstance(u, str) for u in users):
                    raise ValueError("users")
                return cls(kind, node, users)
            if kind == "bye":
                return cls("bye", node)
            raise ValueError("kind")
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.warning("ignoring a malformed event on %s", PRESENCE_CHANNEL)
            return None


class ClusterView:
    """User -> nodes where online, node -> last heard; this node's own users included.

    Methods that change the view return the users whose cluster-wide status changed and that
    this node must announce.
    """

    def __init__(self, node_id: str, ttl: float) -> None:
        self.node_id = node_id
        self.ttl = ttl
        self.local: set[str] = set()
        self._remote: dict[str, set[str]] = {}  # node -> its online users
        self._heard: dict[str, float] = {}  # node -> when last heard (caller's clock)
        self._where: dict[str, set[str]] = {}  # user -> remote nodes where online
        # Users whose last session here closed while another node still had them: if that
        # node's last session closes at the same moment, neither sees the user offline
        # everywhere when its own change happens; the deltas settle who announces.
        self._unannounced: set[str] = set()

    # --- reading ---------------------------------------------------------------------------

    def is_online(self, user_id: str, now: float | None = None) -> bool:
        """Online here, or on a remote node; given `now`, only on a node heard from within the
        ttl, so a dead node's users read as offline as soon as the ttl has passed, whenever
        this node's next expiry round (which announces it) comes."""
        if user_id in self.local:
            return True
        nodes = self._where.get(user_id)
        if not nodes:
            return False
        return now is None or any(now - self._heard.get(n, now) <= self.ttl for n in nodes)

    def nodes(self) -> list[str]:
        """Every node believed alive, this one included, sorted."""
        return sorted({self.node_id, *self._remote})

    # --- this node's sessions ----------------------------------------------------------------

    def local_online(self, user_id: str) -> bool:
        """The user's first local session opened; True when they were offline everywhere."""
        was = self.is_online(user_id)
        self.local.add(user_id)
        self._unannounced.discard(user_id)
        return not was

    def local_offline(self, user_id: str) -> bool:
        """The user's last local session closed; True when they are now offline everywhere."""
        if user_id not in self.local:
            return False
        self.local.discard(user_id)
        if self.is_online(user_id):
            self._unannounced.add(user_id)
            return False
        return True

    # --- other nodes -------------------------------------------------------------------------

    def heard(self, note: PresenceNote, now: float) -> list[str]:
        """Apply a note from another node. Its sender announces its own changes; the users
        returned are the ones this node must announce offline: both nodes lost a user's last
        session at once and neither announced, so the one with the smaller id does."""
        node = note.node
        if node == self.node_id:
            return []
        if note.kind == "bye":
            self._drop(node)
            return []
        self._heard[node] = now
        users = self._remote.setdefault(node, set())
        if note.kind == "delta":
            user = note.users[0]
            if note.status == "online":
                self._add(node, user)
                return []
            self._remove(node, user)
            if user in self._unannounced and not self.is_online(user):
                self._unannounced.discard(user)
                if not note.announced and self.node_id < node:
                    return [user]
            return []
        fresh = set(note.users)
        for user in users - fresh:
            self._remove(node, user)
        for user in fresh - users:
            self._add(node, user)
        return []

    def expire(self, now: float) -> list[str]:
        """Forget nodes silent for longer than the ttl; the users now offline everywhere that
        this node announces (only the smallest surviving node id announces)."""
        dead = [n for n, t in self._heard.items() if now - t > self.ttl]
        gone: set[str] = set()
        for node in dead:
            log.warning("presence: node %s silent over %.1fs; its users go offline", node, self.ttl)
            gone |= self._drop(node)
        self._unannounced -= gone
        if not gone or self.nodes()[0] != self.node_id:
            return []
        return sorted(gone)

    def _add(self, node: str, user: str) -> None:
        self._remote[node].add(user)
        self._where.setdefault(user, set()).add(node)

    def _remove(self, node: str, user: str) -> None:
        self._remote[node].discard(user)
        nodes = self._where.get(user)
        if nodes is not None:
            nodes.discard(node)
            if not nodes:
                del self._where[user]

    def _drop(self, node: str) -> set[str]:
        """Forget a node; the users that leaves offline everywhere."""
        self._heard.pop(node, None)
        users = set(self._remote.get(node, ()))
        for user in users:
            self._remove(node, user)
        self._remote.pop(node, None)
        return {u for u in users if not self.is_online(u)}

    def remote_users(self, nodes: Iterable[str] = ()) -> set[str]:
        """Users online on the given remote nodes (for tests and metrics)."""
        return set().union(*(self._remote.get(n, set()) for n in nodes))
