"""Fixtures every test module may use, and the order in which the modules run.

The suite runs on pytest-xdist workers that take whole modules (`--dist loadfile`), each
module in turn as a worker frees up. Left alone, xdist hands out the modules with the most
tests first; a long module of few tests (a browser suite, a cluster suite) then starts last
and runs alone at the end. So the modules run longest first, by the seconds each took in a
full run, kept in `module_durations.txt` (modules not listed follow, the most tests first):

    .venv/bin/python -m pytest -n 4 --dist loadfile --store-module-durations

writes that file again after a run (do it when modules are added or change much).
"""

from __future__ import annotations

import socket
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatcore.testing.s3 import moto_server
from chatcore.testing.server import ServerProcess, start_server
from chatcore.testing.users import TestUser, register_and_login

#: Seconds per test module in a full run: "SECONDS PATH" lines, longest first.
MODULE_DURATIONS = Path(__file__).with_name("module_durations.txt")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--store-module-durations",
        action="store_true",
        help=f"after the run, write each module's seconds to {MODULE_DURATIONS.name}",
    )


def pytest_configure(config: pytest.Config) -> None:
    # xdist would sort the modules by their number of tests; keep the order set below.
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False
    if config.getoption("store_module_durations") and not hasattr(config, "workerinput"):
        config.pluginmanager.register(ModuleDurations(), "module-durations")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest modules first; those not listed after them, the most tests first (as xdist
    would). A stable sort: each module's tests keep their order."""
    known = read_module_durations(MODULE_DURATIONS)
    tests = Counter(module_of(item.nodeid) for item in items)

    def longest_first(item: pytest.Item) -> tuple[float, int]:
        module = module_of(item.nodeid)
        return (-known.get(module, 0.0), -tests[module])

    items.sort(key=longest_first)


def module_of(nodeid: str) -> str:
    """The module of a test id, as xdist's `loadfile` groups them."""
    return nodeid.split("::", 1)[0]


def read_module_durations(path: Path) -> dict[str, float]:
    if not path.exists():
        return {}
    durations: dict[str, float] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            seconds, module = line.split(maxsplit=1)
            durations[module] = float(seconds)
    return durations


class ModuleDurations:
    """Sums the setup, call and teardown of every test per module; writes them at the end."""

    def __init__(self) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds[module_of(report.nodeid)] += report.duration

    def pytest_sessionfinish(self) -> None:
        ranked = sorted(self.seconds.items(), key=lambda pair: -pair[1])
        lines = [f"{seconds:.1f} {module}" for module, seconds in ranked]
        header = "# Seconds per test module in a full run (tests/conftest.py): longest first.\n"
        MODULE_DURATIONS.write_text(header + "\n".join(lines) + "\n")


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
