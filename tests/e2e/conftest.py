"""Fixtures of the end-to-end messaging suite (black-box, against docs/protocol.md only).

With `CHATCORE_TEST_CLUSTER=redis` (or `nats`) the server fixtures (`server`, `server_factory`,
`fast_server`, `limited_server`) start a 2-node cluster instead of one embedded node: a fresh
PostgreSQL schema, the test Redis (or NATS) under a fresh prefix, and consecutive clients on
different nodes (see `chatcore.testing.cluster`). Unset, each is one embedded node.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from e2e_support import NO_FLOOD_CONTROL, postgres_storage_section

from chatcore.testing.cluster import KINDS, ClusterProcess, start_cluster
from chatcore.testing.server import ServerProcess, start_server
from chatcore.testing.services import nats_url, redis_url, require_url

#: `CHATCORE_TEST_CLUSTER`: the broker of the cluster the suite runs on, "" for one node.
CLUSTER = os.environ.get("CHATCORE_TEST_CLUSTER", "").strip().lower()
if CLUSTER and CLUSTER not in KINDS:
    raise pytest.UsageError(f"CHATCORE_TEST_CLUSTER={CLUSTER!r}: expected one of {KINDS}")


@contextmanager
def start_service(
    folder: Path,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[ServerProcess | ClusterProcess]:
    """One node, or in cluster mode a 2-node cluster on its own PostgreSQL schema (unless
    `overrides` name a storage) and broker prefix. A caller that names its own `broker` builds
    its own topology (the multi-node tests): it gets the single node it asked for."""
    overrides = dict(overrides or {})
    if not CLUSTER or "broker" in overrides:
        with start_server(folder, overrides, env) as node:
            yield node
        return
    if CLUSTER == "redis":
        require_url("Redis", redis_url())
    else:
        require_url("NATS", nats_url())
    with ExitStack() as stack:
        storage = overrides.pop("storage", None)
        if storage is None:  # entered first, so the schema is dropped after the nodes stopped
            storage = stack.enter_context(postgres_storage_section())
        yield stack.enter_context(start_cluster(folder, CLUSTER, storage, overrides, env))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """In cluster mode only: `cluster_skip(reason)` skips a test that cannot run on a cluster;
    `cluster_xfail(reason)` expects a known cross-node bug to fail (strict: a fix shows up)."""
    if not CLUSTER:
        return
    for item in items:
        skip = item.get_closest_marker("cluster_skip")
        if skip is not None:
            item.add_marker(pytest.mark.skip(reason=f"cluster mode ({CLUSTER}): {skip.args[0]}"))
        known_bug = item.get_closest_marker("cluster_xfail")
        if known_bug is not None:
            reason = f"cluster mode ({CLUSTER}): {known_bug.args[0]}"
            item.add_marker(pytest.mark.xfail(strict=True, reason=reason))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess | ClusterProcess]:
    """One real server (or cluster, see the module doc) shared by the tests of a module."""
    with start_service(tmp_path_factory.mktemp("server")) as running:
        yield running


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., ServerProcess | ClusterProcess]]:
    """Start servers (or clusters) with config overrides: `server_factory(limits={...})`."""
    with ExitStack() as stack:
        count = 0

        def start(
            env: dict[str, str] | None = None, **overrides: Any
        ) -> ServerProcess | ClusterProcess:
            nonlocal count
            count += 1
            started: AbstractContextManager[ServerProcess | ClusterProcess] = start_service(
                tmp_path / f"node{count}", overrides, env
            )
            return stack.enter_context(started)

        yield start


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "crash: kills a server process with SIGKILL and restarts it (docs/protocol.md, Guarantees)",
    )
    config.addinivalue_line(
        "markers", "cluster_skip(reason): skipped under CHATCORE_TEST_CLUSTER, with the reason"
    )
    config.addinivalue_line(
        "markers", "cluster_xfail(reason): a known cross-node bug; strict xfail in cluster mode"
    )


#: Small limits, so tests can go over them cheaply: a 100-byte body, 5 messages per sync.
SMALL_LIMITS = {"max_message_bytes": 100, "max_sync_messages": 5}


@pytest.fixture(scope="session")
def fast_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A real server, shared by the suite, whose flood control does not get in the way."""
    with start_service(tmp_path_factory.mktemp("fast"), {"websocket": NO_FLOOD_CONTROL}) as running:
        yield running


@pytest.fixture(scope="session")
def limited_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A real server, shared by the suite, with `[limits]` set to SMALL_LIMITS."""
    with start_service(tmp_path_factory.mktemp("limited"), {"limits": SMALL_LIMITS}) as running:
        yield running


@pytest.fixture
def postgres_storage() -> Iterator[dict[str, Any]]:
    """`postgres_storage_section()` for one test. Request it before starting a server on it,
    so the schema is dropped after that server stopped."""
    with postgres_storage_section() as section:
        yield section
