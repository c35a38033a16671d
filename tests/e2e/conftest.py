"""Fixtures of the end-to-end messaging suite (black-box, against PROTOCOL.md only)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from e2e_support import NO_FLOOD_CONTROL, postgres_storage_section

from chatcore.testing.server import ServerProcess, start_server


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "crash: kills a server process with SIGKILL and restarts it (PROTOCOL.md, Guarantees)",
    )


#: Small limits, so tests can go over them cheaply: a 100-byte body, 5 messages per sync.
SMALL_LIMITS = {"max_message_bytes": 100, "max_sync_messages": 5}


@pytest.fixture(scope="session")
def fast_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A real server, shared by the suite, whose flood control does not get in the way."""
    with start_server(tmp_path_factory.mktemp("fast"), {"websocket": NO_FLOOD_CONTROL}) as running:
        yield running


@pytest.fixture(scope="session")
def limited_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A real server, shared by the suite, with `[limits]` set to SMALL_LIMITS."""
    with start_server(tmp_path_factory.mktemp("limited"), {"limits": SMALL_LIMITS}) as running:
        yield running


@pytest.fixture
def postgres_storage() -> Iterator[dict[str, Any]]:
    """`postgres_storage_section()` for one test. Request it before starting a server on it,
    so the schema is dropped after that server stopped."""
    with postgres_storage_section() as section:
        yield section
