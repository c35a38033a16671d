"""Fixtures of the browser-app tests: a real server process and Debian's Chromium driven by
Playwright (sync API). Without a browser the tests skip, or fail under
CHATCORE_REQUIRE_SERVICES=1 (CI installs `chromium`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from webapp_support import chromium_executable, one_browser_at_a_time

from chatcore.testing.server import ServerProcess, start_server
from chatcore.testing.services import services_required

#: The suite's guard against a hang, for these tests: a module's first test also waits for
#: the browser modules of the other workers to finish (they take turns).
BROWSER_TEST_TIMEOUT = 900


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.timeout(BROWSER_TEST_TIMEOUT))


#: Flood control out of the way: the tests send faster than a person.
FLOOD_OFF = {"websocket": {"rate_per_second": 100_000, "rate_burst": 100_000}}


@pytest.fixture(scope="session")
def browser_path() -> str:
    path = chromium_executable()
    if path is None:
        reason = "no Chromium found (install Debian's `chromium` or set CHATCORE_CHROMIUM)"
        if services_required():
            pytest.fail(f"{reason}; CHATCORE_REQUIRE_SERVICES=1 requires it")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="module")
def browser(browser_path: str) -> Iterator[Any]:
    """A headless Chromium for the module (each test makes its own contexts, which share
    nothing). Per module, not per session: Playwright's sync API keeps an event loop of its
    own for as long as it runs, and the next module on the worker may run asyncio tests.
    Modules that drive a browser take turns across the workers (`one_browser_at_a_time`)."""
    from playwright.sync_api import sync_playwright

    with one_browser_at_a_time(), sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=browser_path)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def webapp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server node serving the app at /, on fresh loopback ports, for the module."""
    folder: Path = tmp_path_factory.mktemp("webapp")
    with start_server(folder, overrides=FLOOD_OFF) as server:
        yield server


@pytest.fixture
def new_page(browser: Any, webapp_server: ServerProcess) -> Iterator[Callable[..., Any]]:
    """`new_page(**context_options)`: a page in a context of its own (its own IndexedDB, its
    own service worker), with the server as base URL. Closed at the end of the test, which
    fails if any page raised an uncaught error."""
    contexts: list[Any] = []
    errors: list[str] = []

    def make(**options: Any) -> Any:
        context = browser.new_context(base_url=webapp_server.base_url, **options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
        return page

    yield make
    for context in contexts:
        context.close()
    assert not errors, "the page raised: " + "; ".join(errors)
