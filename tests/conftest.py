from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatcore.testing.s3 import moto_server
from chatcore.testing.server import ServerProcess, start_server
from chatcore.testing.users import TestUser, register_and_login


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port something else listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's S3 server on a free loopback port, for the session: a real S3 API over HTTP."""
    pytest.importorskip("moto.server", reason="moto[server] is in the test extra")
    pytest.importorskip("s3fs", reason="s3fs is in the test extra")
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real `chatcore serve` process shared by the tests of a module."""
    with start_server(tmp_path_factory.mktemp("server")) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    """An HTTP client on the module's server, based at its API (`/api/v1`)."""
    with httpx.Client(base_url=server.api, timeout=10) as http:
        yield http


@pytest.fixture
def user(client: httpx.Client) -> Callable[[], TestUser]:
    """Make a registered, logged-in user on the module's server: `alice = user()`."""
    return lambda: register_and_login(client)


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start servers with config overrides: `server_factory(limits={"max_message_bytes": 10})`."""
    with ExitStack() as stack:
        count = 0

        def start(env: dict[str, str] | None = None, **overrides: Any) -> ServerProcess:
            nonlocal count
            count += 1
            folder = tmp_path / f"node{count}"
            return stack.enter_context(start_server(folder, overrides, env))

        yield start
