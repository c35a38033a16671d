"""Assembly of a chatcore node from its config and plugins, and its lifecycle.

    app = App.from_config("config/server.toml")
    await app.serve()              # until SIGTERM / SIGINT

or, embedded in another program:

    async with App.from_config(path) as app:   # started: backends up, transports listening
        ...
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import signal
import sys
from collections.abc import Coroutine, Iterable, Mapping
from typing import Any

from chatcore.assembly import assemble
from chatcore.errors import StartupError
from chatcore.failures import one_line
from chatcore.hooks import call_all, call_first, call_observers
from chatcore.interfaces import AuthBackend, Broker, Storage, Transport
from chatcore.metrics import core_metrics
from chatcore.models import User
from chatcore.plugins import PluginHost
from chatcore.server.backend_urls import unserved_urls
from chatcore.server.messages import publish_new
from chatcore.server.push.dispatch import PushDispatcher, push_dispatcher
from chatcore.server.realtime.hub import Hub
from chatcore.server.retention import RetentionJob
from chatcore.server.writer import MessageWriter
from chatcore.settings import ConfigError, Settings
from chatcore.state import State

#: How long a thread may hold the interpreter lock while another waits for it (see `serve`).
SWITCH_INTERVAL_SECONDS = 0.0005

log = logging.getLogger(__name__)


class App:
    """One chatcore node: settings, plugins, backends and transports."""

    def __init__(self, settings: Settings, plugins: PluginHost, source: str = "<config>") -> None:
        self.settings = settings
        self.plugins = plugins
        self.source = source
        self.hub = Hub(self)
        self._storage: Storage | None = None
        self._broker: Broker | None = None
        self._auth: AuthBackend | None = None
        self.media: Any | None = None
        self.transports: list[Transport] = []
        self._writer: MessageWriter | None = None
        self.push: PushDispatcher | None = None  # while push adapters are configured
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started: list[Any] = []  # what to close, in start order
        #: Per-app objects of the core and plugins, by typed key (`chatcore.state`).
        self.state = State()
        #: False while started by an admin command: no backend may change a schema (see
        #: `start`). Storage plugins read it when they build their backend.
        self.may_migrate = True

    @classmethod
    def from_config(
        cls,
        path: str | None = None,
        *,
        overrides: Mapping[str, Any] | None = None,
        extra_plugins: Iterable[object] = (),
        entry_points: bool = True,
    ) -> App:
        """Read `path` (TOML), apply `overrides` (same shape), load plugins, validate everything.

        Raises `ConfigError` or `PluginError` before anything starts.
        """
        assembled = assemble(
            path, overrides=overrides, extra_plugins=extra_plugins, entry_points=entry_points
        )
        problems = unserved_urls(assembled.settings, assembled.plugins)
        if problems:
            raise ConfigError(assembled.source, problems)
        return cls(assembled.settings, assembled.plugins, assembled.source)

    # --- backends, available once started ----------------------------------------------------

    @property
    def storage(self) -> Storage:
        return _started(self._storage, "storage")

    @property
    def broker(self) -> Broker:
        return _started(self._broker, "broker")

    @property
    def auth(self) -> AuthBackend:
        return _started(self._auth, "auth backend")

    @property
    def writer(self) -> MessageWriter:
        return _started(self._writer, "message writer")

    @property
    def hook(self) -> Any:
        return self.plugins.hook

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self, listen: bool = True, migrate: bool = True) -> None:
        """Build and start backends, run startup hooks, then open the transports.

        With `listen=False` only the backends start (admin commands, scripts, tests). With
        `migrate=False` (`app.may_migrate`) no backend changes a schema or creates a database,
        whatever `storage.auto_migrate` says: a schema that is missing or older fails start-up
        with a StartupError naming `chatcore db upgrade`. Admin commands start that way, so
        pointing one at the wrong database never fills it with tables.

        A backend that cannot reach its service, or a port in use, is a StartupError whose
        message is one line naming the service or the address and the reason.
        """
        if self.settings.role != "server":
            raise StartupError(
                f"{self.source}: role {self.settings.role!r} cannot serve: a client config is "
                f"used by `chatcore client --config {self.source} ...` (see docs/client.md)"
            )
        self.may_migrate = migrate
        try:
            self._storage = await self._provide("chatcore_storage", "storage", "storage.url")
            self._broker = await self._provide("chatcore_broker", "broker", "broker.url")
            self._auth = await self._provide("chatcore_auth_backend", "auth backend", None)
            self.media = await call_first(self.hook.chatcore_media_store, app=self)
            if self.media is not None:
                await self._start(self.media)
            await self.hub.start()
            # A storage that commits several transactions at once says how many (writer.py).
            lanes = int(getattr(self.storage, "write_lanes", 1))
            publish = functools.partial(publish_new, self)
            metrics = core_metrics(self)  # registered before the first scrape, counts at 0
            self._writer = MessageWriter(self.storage, publish, lanes=lanes, metrics=metrics)
            await self._start(self._writer)
            self.push = await push_dispatcher(self)
            if self.push is not None:
                await self._start(self.push)
            if listen:  # serving; a console command runs a pass: `chatcore retention run`
                await self._start(RetentionJob(self))
            await call_all(self.hook.chatcore_startup, app=self)
            if not listen:
                return
            for answer in await call_all(self.hook.chatcore_transports, app=self):
                self.transports.extend(answer if isinstance(answer, list) else [answer])
            for transport in self.transports:
                await self._start(transport)
                log.info("%s listening on %s", transport.name, transport.url)
        except BaseException:
            await self.stop()
            raise
        names = ", ".join(info.name for info in self.plugins.describe())
        log.info("chatcore node ready; plugins: %s", names)
        for name, why in self.plugins.skipped.items():
            log.warning("plugin %s skipped: %s", name, why)

    async def _provide(self, hook_name: str, what: str, key: str | None) -> Any:
        backend = await call_first(getattr(self.hook, hook_name), app=self)
        if backend is None:
            where = f" for {key} = {_get(self.settings, key)!r}" if key else ""
            hint = self.plugins.skipped_hint() or "is its plugin installed?"
            raise StartupError(f"no plugin provides the {what}{where}; {hint}")
        await self._start(backend)
        return backend

    async def _start(self, component: Any) -> None:
        try:
            await component.start()
        except OSError as exc:
            # A service out of reach (the brokers' BrokerUnavailable is a ConnectionError), a
            # port in use: the backend's message names what and where; no traceback needed.
            raise StartupError(one_line(exc)) from exc
        self._started.append(component)

    async def stop(self) -> None:
        """Close transports (draining sessions), run shutdown hooks, close backends."""
        started, self._started = self._started, []
        transports = [c for c in started if c in self.transports]
        # All at once: every listener stops accepting before any of them drains its clients.
        await asyncio.gather(*(_quietly(t.stop(), f"stopping {t.name}") for t in transports))
        await self.hub.stop()
        # Sends already accepted are stored first; then the observers they started finish.
        if self._writer is not None and self._writer in started:
            await _quietly(self._writer.close(), "closing the message writer")
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if started:
            await call_observers(self.hook.chatcore_shutdown, app=self, reverse=True)
        done = {id(c) for c in transports} | {id(self._writer)}
        for component in reversed([c for c in started if id(c) not in done]):
            await _quietly(component.close(), f"closing {type(component).__name__}")
        self.transports = []
        self.push = None

    async def __aenter__(self) -> App:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def serve(self, stop: asyncio.Event | None = None) -> None:
        """Start, then run until SIGTERM or SIGINT (or `stop` is set), then stop gracefully."""
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await self.start()
            # What start-up made lives as long as the server: out of the collector's sight, a
            # full collection walks only what serving allocates (pauses of tens of ms, else).
            gc.collect()
            gc.freeze()
            # Storage threads (a SQLite writer, say) hand results back to the event loop; by
            # default a thread waits up to 5 ms for the interpreter lock, a visible share of
            # a send's latency. A shorter interval bounds that wait.
            sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
            await stop.wait()
            log.info("stopping")
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            await self.stop()
        log.info("stopped")

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run work in the background (observers, notifications); awaited at shutdown."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- events the core emits ---------------------------------------------------------------

    async def user_registered(self, user: User) -> None:
        await call_observers(self.hook.chatcore_user_registered, app=self, user=user)

    @property
    def ws_url(self) -> str | None:
        """The URL of the first WebSocket transport (what /api/v1/info reports)."""
        return self._first_url("ws://", "wss://")

    @property
    def rest_url(self) -> str | None:
        """The origin of the first HTTP transport, the REST API's (its routes are under /api/v1)."""
        return self._first_url("http://", "https://")

    def _first_url(self, *schemes: str) -> str | None:
        """The URL of the first listening transport with one of these schemes, else None."""
        return next((t.url for t in self.transports if t.url.startswith(schemes)), None)


def _started(value: Any, what: str) -> Any:
    if value is None:
        raise RuntimeError(f"the {what} is available once the app has started")
    return value


def _get(settings: Settings, dotted: str) -> Any:
    value: Any = settings
    for part in dotted.split("."):
        value = getattr(value, part, None)
    return value


async def _quietly(awaitable: Any, doing: str) -> None:
    try:
        await awaitable
    except Exception:
        log.exception("error while %s", doing)
