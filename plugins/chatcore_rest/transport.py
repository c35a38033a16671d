"""The REST transport: the Quart app served by Hypercorn on a socket bound by us.

Binding the socket ourselves (then handing Hypercorn its file descriptor) makes start-up exact:
a port that cannot be bound fails `start()` with a clear error, port 0 resolves to the real
port before anyone asks for the URL, and the socket already listens when `start()` returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
from typing import TYPE_CHECKING

from hypercorn.asyncio import serve
from hypercorn.config import Config

from chatcore.server.app import StartupError
from chatcore_rest.application import create_quart_app
from chatcore_rest.plugin_routes import RouteError
from chatcore_rest.settings import RestSettings

if TYPE_CHECKING:
    from chatcore.server.app import App

__all__ = ["RestTransport", "listen"]

log = logging.getLogger(__name__)

BACKLOG = 1024
#: How long Hypercorn may take to run the app's start-up before we give up.
STARTUP_TIMEOUT_SECONDS = 30.0
#: Beyond the graceful timeout: closing connections and the app's shutdown.
STOP_MARGIN_SECONDS = 5.0


def _reason(exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return "address in use"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.EADDRNOTAVAIL:
        return "address not available on this machine"
    return (exc.strerror or str(exc)).lower()


def _display(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def listen(host: str, port: int, backlog: int = BACKLOG) -> socket.socket:
    """A TCP socket bound to host:port and listening; StartupError when that is impossible."""
    where = _display(host, port)
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise StartupError(f"cannot listen on {where}: unknown host ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        # Restarting a node must not wait for the old connections' TIME_WAIT to pass.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(address)
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise StartupError(f"cannot listen on {where}: {_reason(exc)}") from None
    return sock


class RestTransport:
    """`chatcore.interfaces.Transport` for the REST API on `[server] host/port`."""

    name = "rest"

    def __init__(self, app: App) -> None:
        self.app = app
        self.settings = app.settings.section("rest", RestSettings)
        self._port: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._shutdown = asyncio.Event()
        self._stopping = False

    @property
    def url(self) -> str:
        """`[server] public_url` when set, else http://host:port with the real port."""
        server = self.app.settings.server
        if server.public_url or self._port is None:
            return server.origin
        return server.model_copy(update={"port": self._port}).origin

    @property
    def port(self) -> int | None:
        """The port listened on, once started."""
        return self._port

    async def start(self) -> None:
        """Listen, then serve in a background task; returns once the app has started."""
        if self._task is not None:
            raise RuntimeError("the REST transport is already started")
        try:
            quart = create_quart_app(self.app, self.settings)
        except RouteError as exc:
            raise StartupError(str(exc)) from None
        server = self.app.settings.server
        sock = await listen(server.host, server.port)
        self._port = int(sock.getsockname()[1])
        started = asyncio.Event()

        @quart.before_serving
        async def _started() -> None:
            started.set()

        config = Config()
        config.bind = [f"fd://{sock.fileno()}"]
        config.backlog = BACKLOG
        config.accesslog = None  # requests are logged at DEBUG by the app itself
        config.errorlog = logging.getLogger("hypercorn.error")
        config.graceful_timeout = self.settings.graceful_timeout
        config.include_server_header = False
        # Hypercorn wraps the descriptor in a socket of its own and closes it when done;
        # our object lets go of it so it is not closed twice.
        fd = sock.detach()
        self._shutdown.clear()
        self._stopping = False
        task = asyncio.create_task(
            serve(quart, config, shutdown_trigger=self._shutdown.wait),
            name="chatcore-rest",
        )
        waiter = asyncio.create_task(started.wait())
        done, _ = await asyncio.wait(
            {task, waiter}, timeout=STARTUP_TIMEOUT_SECONDS, return_when=asyncio.FIRST_COMPLETED
        )
        if waiter not in done:
            waiter.cancel()
            if not started.is_set():
                # Hypercorn takes the descriptor only after the app has started.
                with contextlib.suppress(OSError):
                    os.close(fd)
            failure = task.exception() if task.done() else None
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            raise StartupError(
                f"the REST API did not start on {self.url}: {failure or 'timed out'}"
            ) from failure
        self._task = task
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("the REST server failed", exc_info=exc)
        elif not self._stopping:
            log.error("the REST server stopped unexpectedly")

    async def stop(self) -> None:
        """Stop accepting, let requests in flight finish (bounded), then return."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._shutdown.set()
        try:
            await asyncio.wait_for(
                asyncio.shield(task), self.settings.graceful_timeout + STOP_MARGIN_SECONDS
            )
        except TimeoutError:
            log.warning("the REST server did not stop in time; cancelling it")
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        except Exception:
            pass  # already logged by _ended
