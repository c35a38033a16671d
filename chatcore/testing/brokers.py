"""Private broker servers for tests: a redis-server or nats-server process the test owns, on a
free loopback port, that it can kill and start again on the same port (broker recovery).

`need_binary` skips the calling test when the server program is not installed, or fails it
under `CHATCORE_REQUIRE_SERVICES=1` (see `chatcore.testing.services`).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

from chatcore.testing.server import free_port
from chatcore.testing.services import services_required

#: How long a private server may take to accept connections after it was started.
START_SECONDS = 10.0


def need_binary(name: str, *candidates: str) -> str:
    """The path of the first of `candidates` found; else skip (or fail) the calling test."""
    import pytest  # only tests call this; chatcore itself does not need pytest

    for candidate in candidates:
        found = shutil.which(candidate)
        if found:
            return found
    reason = f"{name} is not installed (looked for {', '.join(candidates)})"
    if services_required():
        pytest.fail(f"{reason}; CHATCORE_REQUIRE_SERVICES=1 requires it")
    pytest.skip(reason)


class PrivateServer:
    """A server process we own on a fixed free loopback port: stop it, start it again."""

    def __init__(self, command: list[str], port: int) -> None:
        self.command = command
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the process and return once its port accepts connections."""
        self.process = subprocess.Popen(
            self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{self.command[0]} did not start") from None
                time.sleep(0.02)  # a process we do not control; bounded by the deadline

    def kill(self) -> None:
        """SIGKILL the process (if running) and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None


def redis_server() -> PrivateServer:
    """A (not yet started) redis-server without persistence on a free port; skips if absent."""
    binary = need_binary("redis-server", "redis-server")
    port = free_port()
    return PrivateServer(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        port,
    )


def nats_server() -> PrivateServer:
    """A (not yet started) nats-server on a free port; skips if absent."""
    binary = need_binary("nats-server", "nats-server", "/usr/sbin/nats-server")
    port = free_port()
    return PrivateServer([binary, "-a", "127.0.0.1", "-p", str(port)], port)


@contextmanager
def running(server: PrivateServer) -> Iterator[PrivateServer]:
    """Start `server`; kill it at the end whatever state the test left it in."""
    try:
        server.start()
        yield server
    finally:
        server.kill()
