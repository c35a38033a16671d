"""Helpers of the browser-app tests: finding a browser, users made over REST."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from chatcore.testing.server import ServerProcess
from chatcore.testing.users import PASSWORD

__all__ = ["PASSWORD", "chromium_executable", "one_browser_at_a_time", "register_user"]

#: Where a Chromium may be, in order: CHATCORE_CHROMIUM, then the names Debian and others use.
_BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium_executable() -> str | None:
    """The Chromium the browser tests drive (`CHATCORE_CHROMIUM` or one on PATH), else None.

    Playwright's own browser download is not used: the tests run on the system's browser."""
    configured = os.environ.get("CHATCORE_CHROMIUM")
    if configured:
        return configured
    return next((path for name in _BROWSERS if (path := shutil.which(name))), None)


def register_user(
    server: ServerProcess, username: str, password: str = PASSWORD, display_name: str | None = None
) -> dict[str, Any]:
    """Register `username` over REST and log in: `{"user", "access_token", "refresh_token"}`."""
    body: dict[str, Any] = {"username": username, "password": password}
    if display_name is not None:
        body["display_name"] = display_name
    with httpx.Client(base_url=server.api, timeout=10) as http:
        http.post("/auth/register", json=body).raise_for_status()
        login = http.post("/auth/login", json={"username": username, "password": password})
        login.raise_for_status()
        tokens: dict[str, Any] = login.json()
    return tokens


@contextmanager
def one_browser_at_a_time() -> Iterator[None]:
    """The browser tests take turns across the suite's workers: a Chromium with its renderers
    keeps a core busy, and on a 2-core machine two of them beside the other workers' servers
    slow every timing-sensitive test of the suite. A lock file shared by the test processes of
    this machine (fcntl; where there is none, e.g. Windows, no lock)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(Path(tempfile.gettempdir()) / "chatcore-browser-tests.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
