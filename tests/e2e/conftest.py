"""Fixtures of the end-to-end messaging suite (black-box, against docs/protocol.md only).

The core protocol modules (those marked `pytestmark = pytest.mark.core_suite`) run on every
deployment of `CHATCORE_TEST_DEPLOYMENTS` (default `one,redis,nats`): one embedded node, then
2-node clusters on PostgreSQL + Redis and PostgreSQL + NATS, each on a fresh PostgreSQL schema
and broker prefix, with consecutive clients on different nodes (see `chatcore.testing.cluster`).
Each of their tests that starts a server through the fixtures here (`server`, `server_factory`,
`fast_server`, `limited_server`) is collected once per deployment (`test_x[redis]`). Every
other module runs on one embedded node. Without PostgreSQL, Redis or NATS, the cluster runs
skip, saying why (or fail under `CHATCORE_REQUIRE_SERVICES=1`).
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

#: One embedded node.
ONE = "one"


def _deployments() -> tuple[str, ...]:
    wanted = os.environ.get("CHATCORE_TEST_DEPLOYMENTS", ",".join((ONE, *KINDS)))
    kinds = tuple(k.strip().lower() for k in wanted.split(",") if k.strip())
    unknown = [k for k in kinds if k not in (ONE, *KINDS)]
    if unknown or not kinds:
        raise pytest.UsageError(
            f"CHATCORE_TEST_DEPLOYMENTS={wanted!r}: expected a list of {(ONE, *KINDS)}"
        )
    return kinds


DEPLOYMENTS = _deployments()


@contextmanager
def start_service(
    folder: Path,
    deployment: str,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[ServerProcess | ClusterProcess]:
    """One node, or for a cluster deployment a 2-node cluster on its own PostgreSQL schema
    (unless `overrides` name a storage) and broker prefix. A caller that names its own `broker`
    builds its own topology (the multi-node tests): it gets the single node it asked for."""
    overrides = dict(overrides or {})
    if deployment == ONE or "broker" in overrides:
        with start_server(folder, overrides, env) as node:
            yield node
        return
    if deployment == "redis":
        require_url("Redis", redis_url())
    else:
        require_url("NATS", nats_url())
    with ExitStack() as stack:
        storage = overrides.pop("storage", None)
        if storage is None:  # entered first, so the schema is dropped after the nodes stopped
            storage = stack.enter_context(postgres_storage_section())
        yield stack.enter_context(start_cluster(folder, deployment, storage, overrides, env))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A core-suite test that starts its server through `deployment` runs on each one."""
    if "deployment" not in metafunc.fixturenames:
        return
    if metafunc.definition.get_closest_marker("core_suite") is None:
        return
    metafunc.parametrize("deployment", DEPLOYMENTS, indirect=True, scope="session")


@pytest.fixture(scope="session")
def deployment(request: pytest.FixtureRequest) -> str:
    """What the server fixtures start: "one" node, or a "redis" or "nats" cluster."""
    return str(getattr(request, "param", ONE))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """On a cluster deployment only: `cluster_skip(reason)` skips a test that cannot run on a
    cluster; `cluster_xfail(reason)` expects a known cross-node bug to fail (strict: a fix shows
    up)."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        kind = callspec.params.get("deployment", ONE) if callspec else ONE
        if kind == ONE:
            continue
        skip = item.get_closest_marker("cluster_skip")
        if skip is not None:
            item.add_marker(pytest.mark.skip(reason=f"cluster ({kind}): {skip.args[0]}"))
        known_bug = item.get_closest_marker("cluster_xfail")
        if known_bug is not None:
            reason = f"cluster ({kind}): {known_bug.args[0]}"
            item.add_marker(pytest.mark.xfail(strict=True, reason=reason))


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, deployment: str
) -> Iterator[ServerProcess | ClusterProcess]:
    """One real server (or cluster, see the module doc) shared by the tests of a module."""
    with start_service(tmp_path_factory.mktemp("server"), deployment) as running:
        yield running


@pytest.fixture
def server_factory(
    tmp_path: Path, deployment: str
) -> Iterator[Callable[..., ServerProcess | ClusterProcess]]:
    """Start servers (or clusters) with config overrides: `server_factory(limits={...})`."""
    with ExitStack() as stack:
        count = 0

        def start(
            env: dict[str, str] | None = None, **overrides: Any
        ) -> ServerProcess | ClusterProcess:
            nonlocal count
            count += 1
            started: AbstractContextManager[ServerProcess | ClusterProcess] = start_service(
                tmp_path / f"node{count}", deployment, overrides, env
            )
            return stack.enter_context(started)

        yield start


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "crash: kills a server process with SIGKILL and restarts it (docs/protocol.md, Guarantees)",
    )
    config.addinivalue_line(
        "markers", "core_suite: runs on every deployment of CHATCORE_TEST_DEPLOYMENTS"
    )
    config.addinivalue_line(
        "markers", "cluster_skip(reason): skipped on a cluster deployment, with the reason"
    )
    config.addinivalue_line(
        "markers", "cluster_xfail(reason): a known cross-node bug; strict xfail on a cluster"
    )


#: Small limits, so tests can go over them cheaply: a 100-byte body, 5 messages per sync.
SMALL_LIMITS = {"max_message_bytes": 100, "max_sync_messages": 5}


@pytest.fixture(scope="session")
def fast_server(
    tmp_path_factory: pytest.TempPathFactory, deployment: str
) -> Iterator[ServerProcess | ClusterProcess]:
    """A real server, shared by the suite, whose flood control does not get in the way."""
    folder = tmp_path_factory.mktemp("fast")
    with start_service(folder, deployment, {"websocket": NO_FLOOD_CONTROL}) as running:
        yield running


@pytest.fixture(scope="session")
def limited_server(
    tmp_path_factory: pytest.TempPathFactory, deployment: str
) -> Iterator[ServerProcess | ClusterProcess]:
    """A real server, shared by the suite, with `[limits]` set to SMALL_LIMITS."""
    folder = tmp_path_factory.mktemp("limited")
    with start_service(folder, deployment, {"limits": SMALL_LIMITS}) as running:
        yield running


@pytest.fixture
def postgres_storage() -> Iterator[dict[str, Any]]:
    """`postgres_storage_section()` for one test. Request it before starting a server on it,
    so the schema is dropped after that server stopped."""
    with postgres_storage_section() as section:
        yield section
