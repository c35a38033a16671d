"""Several `chatcore serve` nodes run as one service, behind the interface of one node.

    with start_cluster(tmp_path, "redis", storage={"url": pg_url, "schema": "s1"}) as server:
        httpx.get(server.api + "/info")   # node 1
        httpx.get(server.api + "/info")   # node 2

A `ClusterProcess` has the attributes tests use on a `ServerProcess`, but every read of
`.api`, `.base_url` or `.ws_url` moves on to the next node (round-robin), so a black-box test
written for one server sends consecutive clients to different nodes: the registration of one
user lands on node 1, the next user's on node 2, one session on node 1, the next on node 2.
Whole-service actions (`.start()`, `.stop()`, `.kill()`) act on every node: a crash test that
kills "the server" kills all nodes and restarts them on the same ports with the same data.

The nodes share what docs/protocol.md ("Guarantees") says a cluster shares: the storage (a
PostgreSQL schema the caller provides), a broker (Redis or NATS, under a prefix unique to this
cluster), the auth secret and the media folder.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from chatcore.testing.server import ServerProcess, server_config
from chatcore.testing.services import nats_url, redis_url, unique_name

#: Brokers a test cluster can run on (the cluster deployments of tests/e2e).
KINDS = ("redis", "nats")
#: Short presence timings, so an offline node's users go offline within a test's wait.
PRESENCE = {"heartbeat_seconds": 0.3, "ttl_seconds": 1.0}
SECRET = "cluster-secret-" + "c" * 40


def broker_section(kind: str) -> dict[str, Any]:
    """A `[broker]` section on the test Redis or NATS server, under a fresh prefix."""
    if kind == "redis":
        return {"url": redis_url(), "channel_prefix": unique_name("cl") + ":"}
    if kind == "nats":
        return {"url": nats_url(), "subject_prefix": unique_name("cl")}
    raise ValueError(f"unknown cluster broker {kind!r}; expected one of {', '.join(KINDS)}")


class ClusterProcess:
    """Nodes of one service; reads of `.api`/`.base_url`/`.ws_url` rotate over them."""

    def __init__(self, nodes: list[ServerProcess]) -> None:
        if not nodes:
            raise ValueError("a cluster needs at least one node")
        self.nodes = nodes
        self._next = 0

    def _rotate(self) -> ServerProcess:
        node = self.nodes[self._next % len(self.nodes)]
        self._next += 1
        return node

    @property
    def api(self) -> str:
        return self._rotate().api

    @property
    def base_url(self) -> str:
        return self._rotate().base_url

    @property
    def ws_url(self) -> str:
        return self._rotate().ws_url

    @property
    def config(self) -> dict[str, Any]:
        """Node 1's config (every node has the same, but for ports and folder)."""
        return self.nodes[0].config

    @property
    def folder(self) -> Path:
        return self.nodes[0].folder

    def output(self) -> str:
        return "\n".join(f"--- node {i + 1} ---\n{n.output()}" for i, n in enumerate(self.nodes))

    def start(self, timeout: float = 30) -> ClusterProcess:
        for node in self.nodes:
            node.start(timeout)
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        """Send `sig` to every node and wait for all; the first non-zero exit code, else 0."""
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.send_signal(sig)
        codes = [node.stop(sig, timeout) for node in self.nodes]
        return next((code for code in codes if code != 0), 0)

    def kill(self) -> int:
        return self.stop(signal.SIGKILL)


@contextmanager
def start_cluster(
    folder: Path,
    kind: str,
    storage: Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    nodes: int = 2,
) -> Iterator[ClusterProcess]:
    """Run `nodes` nodes sharing `storage`, a fresh `kind` broker prefix, the auth secret and
    a media folder, for the duration of a `with` block; all are stopped at the end.

    `overrides` are applied to every node as with `start_server` (a `storage` or `broker` in
    them replaces the cluster's own)."""
    folder.mkdir(parents=True, exist_ok=True)
    media = folder / "shared-media"
    media.mkdir(exist_ok=True)
    shared: dict[str, Any] = {
        "storage": dict(storage),
        "broker": broker_section(kind),
        "auth": {"secret": SECRET},
        "media": {"url": f"file://{media}"},
        "presence": PRESENCE,
    }
    for key, value in (overrides or {}).items():
        if isinstance(value, Mapping) and isinstance(shared.get(key), dict):
            shared[key] = {**shared[key], **value}
        else:
            shared[key] = value
    with ExitStack() as stack:
        started: list[ServerProcess] = []
        for index in range(1, nodes + 1):
            node_folder = folder / f"node{index}"
            node_folder.mkdir(parents=True, exist_ok=True)
            node = ServerProcess(node_folder, server_config(node_folder, shared), env)
            # Registered before the start, so a node that fails to start is still stopped.
            stack.callback(node.stop)
            started.append(node.start())
        yield ClusterProcess(started)
