"""Sending what the push queue holds, on every node: `PushDispatcher`.

The dispatcher claims due pushes from the queue (`PushQueueStorage.claim_pushes`, with a lease,
so nodes never send one push at the same time and a node that dies leaves its pushes to the
others), hands each to the adapter of its device's platform, at most `[push] concurrency` at
once, and settles it by the outcome:

- `sent`: removed from the queue;
- `gone`: the device is removed (and with it whatever else was queued for it);
- `failed`: removed, logged;
- `retry` (or an adapter that raised): due again after an exponential backoff with jitter
  (`retry_base_seconds` doubling up to `retry_max_seconds`, never sooner than the provider's
  Retry-After), unless it has had `max_attempts` tries or is older than `expire_seconds`:
  then dropped.

It runs on an event loop of its own, in a thread (`chatcore.loop_thread`): adapters start and
send there, so a flood of pushes never queues ahead of delivery on the app's loop; storage
calls go back to the app's loop, where the storage lives. Outcomes are written once per round
(one transaction for many pushes), and a round that filled every slot waits for half of them
to free up before the next.

A node that sends routes most pushes straight here (`reserve`, `send_now`): they are queued
already claimed (due at the end of their lease, one try counted), so they need no claim, and
only what does not fit the free slots waits in the queue for a claim.

It wakes when this node queues pushes (`queued`), when a chat node that does not send
(`[push] send = false`) publishes on `WAKE_CHANNEL`, when a retry it scheduled falls due, and
every `poll_seconds` (retries of other nodes, pushes of a node that died). Messages never wait
for any of it, and a provider that is down only delays its own pushes.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import random
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from prometheus_client import Counter

from chatcore.clock import now_ms
from chatcore.hooks import call_all
from chatcore.loop_thread import LoopThread, call_on
from chatcore.metrics import metrics_registry, once_per_app
from chatcore.models import ClaimedPush, Message, PushResult
from chatcore.settings import PushSettings
from chatcore.state import StateKey

if TYPE_CHECKING:
    from chatcore.interfaces import PushAdapter, Storage, Subscription
    from chatcore.server.app import App

log = logging.getLogger(__name__)

T = TypeVar("T")

_METRICS_KEY: StateKey[PushMetrics] = StateKey("chatcore.server.push.dispatch.metrics")
#: Published by a node that queued pushes and does not send them: the sending nodes look now.
WAKE_CHANNEL = "chatcore.server.push.endpoint.wake"
#: Retries are due by the wall clock in the queue, woken for by the monotonic one: a little late
#: rather than a claim that comes a millisecond early and finds nothing.
_CLOCK_MARGIN = 0.005


class PushMetrics:
    """`chatcore_pushes_total{platform, outcome}`: sent, failed, gone, retried, dropped; and
    `chatcore_pushes_vetoed_total`: pushes `chatcore_notify` (settings included) held back."""

    def __init__(self, app: App) -> None:
        registry = metrics_registry(app)
        self.pushes = Counter(
            "chatcore_pushes",
            "Pushes settled, by platform and outcome (sent, failed, gone, retried, dropped).",
            ["platform", "outcome"],
            registry=registry,
        )
        self.vetoed = Counter(
            "chatcore_pushes_vetoed",
            "Pushes not queued because chatcore_notify or the recipient's settings vetoed them.",
            registry=registry,
        )

    @classmethod
    def for_app(cls, app: App) -> PushMetrics:
        return once_per_app(app, _METRICS_KEY, cls)


class PushDispatcher:
    """Claims due pushes and sends them through the adapters (see the module docstring)."""

    def __init__(self, app: App, adapters: Mapping[str, PushAdapter]) -> None:
        self.app = app
        self.settings: PushSettings = app.settings.push
        self.adapters = dict(adapters)
        self.metrics = PushMetrics.for_app(app)
        # Adapters run and pushes are sent on a loop of their own: a flood of pushes shares
        # the CPU with delivery there, instead of queueing ahead of it on the app's loop.
        self._thread = LoopThread("chatcore-push")
        self._home: asyncio.AbstractEventLoop | None = None
        self._woken: Subscription | None = None
        self._wake = asyncio.Event()  # made again on the push loop at start
        self._full = False  # the last claim took every free slot: more may be due
        self._sleep_until = 0.0  # monotonic end of the loop's current pause
        self._sending: set[asyncio.Task[None]] = set()
        # Slots promised to claims and to `send_now` but not yet taken by their tasks: with
        # `_sending`, what keeps the pushes under way within `[push] concurrency`.
        self._slots = threading.Lock()
        self._reserved = 0
        # Outcomes waiting to be written: each round of the loop writes them in one
        # transaction (a write per push would queue the message writer behind them).
        self._finished: list[str] = []
        self._retries: dict[str, int] = {}
        # Outcomes counted in the metrics once written: a count then says the queue has it.
        self._outcomes: list[tuple[str, str]] = []
        self._retry_times: list[float] = []  # a heap: monotonic times of retries this node set
        self._runner: asyncio.Task[None] | None = None
        self._started: list[PushAdapter] = []
        # New messages waiting to be routed, and whether a routing is under way (both on the
        # app's loop; see `chatcore.server.push.routing.route`).
        self.unrouted: list[Message] = []
        self.routing = False

    def serves(self, platform: str) -> bool:
        return platform in self.adapters

    @property
    def lease_ms(self) -> int:
        return int(self.settings.lease_seconds * 1000)

    def reserve(self, wanted: int) -> int:
        """Up to `wanted` free slots for pushes this node is about to queue as claimed and
        then hands to `send_now`; 0 on a node that does not send, or one stopping. Safe from
        any thread; slots not handed over go back with `release`."""
        if not self.settings.send or self._runner is None:
            return 0
        with self._slots:
            free = self.settings.concurrency - len(self._sending) - self._reserved
            taken = max(0, min(wanted, free))
            self._reserved += taken
        return taken

    def release(self, count: int) -> None:
        with self._slots:
            self._reserved -= count

    def send_now(self, pushes: list[ClaimedPush]) -> None:
        """Send these pushes, queued as claimed on slots `reserve` gave. Safe from any
        thread."""
        self._thread.call_soon(lambda: self._start(pushes, len(pushes)))

    def _start(self, pushes: list[ClaimedPush], reserved: int) -> None:
        """Send `pushes` on the slots reserved for them (`reserved` of them, given back).
        Stopping, it leaves them to their leases: the queue has them."""
        for push in pushes if self._runner is not None else ():
            task = asyncio.create_task(self._send(push))
            self._sending.add(task)
            task.add_done_callback(self._sent)
        self.release(reserved)

    def wake(self) -> None:
        """Look for due pushes now. Safe from any thread."""
        self._thread.call_soon(self._wake.set)

    async def queued(self) -> None:
        """This node queued pushes: send them now, or, on a node that does not send
        (`[push] send = false`), wake the nodes that do."""
        if self.settings.send:
            self.wake()
        else:
            await self.app.broker.publish(WAKE_CHANNEL, b"")

    def count_vetoed(self) -> None:
        self.metrics.vetoed.inc()

    async def start(self) -> None:
        if not self.settings.send:
            return  # it routes and queues; its adapters only say which platforms are served
        self._home = asyncio.get_running_loop()
        await self._thread.start()
        await self._thread.call(self._start_here())
        self._woken = await self.app.broker.subscribe(WAKE_CHANNEL, lambda data: self.wake())

    async def close(self) -> None:
        """Stop claiming; let the sends under way settle (each adapter bounds its own wait)."""
        if not self.settings.send:
            return
        if self._woken is not None:
            await self._woken.unsubscribe()
        await self._thread.call(self._close_here())
        await self._thread.close()

    async def _start_here(self) -> None:
        self._wake = asyncio.Event()
        for adapter in self.adapters.values():
            await adapter.start()
            self._started.append(adapter)
        self._runner = asyncio.create_task(self._run(), name="chatcore push dispatcher")

    async def _close_here(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
        await self._write_outcomes()
        started, self._started = self._started, []
        for adapter in reversed(started):
            try:
                await adapter.close()
            except Exception:
                log.exception("closing the %s push adapter failed", adapter.platform)

    async def _storage(self, work: Callable[[Storage], Coroutine[Any, Any, T]]) -> T:
        """Run `work(storage)` on the app's loop, where the storage lives; await it here."""
        assert self._home is not None, "PushDispatcher is not started"
        return await call_on(self._home, work(self.app.storage))

    # --- the loop ------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            await self._write_outcomes()
            with self._slots:
                free = self.settings.concurrency - len(self._sending) - self._reserved
                self._reserved += max(0, free)
            claimed: list[ClaimedPush] = []
            try:
                if free > 0:
                    claimed = await self._claim(free)
            except Exception:
                log.exception("claiming pushes failed; trying again in %ss", self._poll)
            finally:
                self._start(claimed, max(0, free))
            if claimed and len(claimed) == free:
                # Every free slot taken: more may be due. Come back once half the slots are
                # free again, so that one round's two writes serve many pushes.
                self._full = True
                while len(self._sending) > self.settings.concurrency // 2:
                    self._wake.clear()
                    await self._wake.wait()
                continue
            self._full = False
            await self._sleep()

    async def _write_outcomes(self) -> None:
        finished, self._finished = self._finished, []
        retries, self._retries = self._retries, {}
        outcomes, self._outcomes = self._outcomes, []
        try:
            if finished or retries:
                await self._storage(lambda storage: storage.settle_pushes(finished, retries))
        except Exception:  # the queue is unreachable: the leases bring these pushes back
            log.exception("recording the outcome of %d pushes failed", len(finished) + len(retries))
        finally:
            for platform, outcome in outcomes:
                self.metrics.pushes.labels(platform, outcome).inc()

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        # The loop's next round writes the outcomes: when it waits for slots, once half of
        # them are free; else at its next wake-up, or now when nothing is in flight.
        if self._full or not self._sending:
            self._wake.set()

    async def _sleep(self) -> None:
        """Until woken, the next poll, or a retry this node set falling due."""
        pause = self._poll
        if self._retry_times:
            pause = min(pause, max(0.0, self._retry_times[0] - time.monotonic()))
        self._sleep_until = time.monotonic() + pause
        try:
            async with asyncio.timeout(pause):
                await self._wake.wait()
        except TimeoutError:
            pass

    @property
    def _poll(self) -> float:
        return self.settings.poll_seconds

    async def _claim(self, limit: int) -> list[ClaimedPush]:
        moment = time.monotonic()
        while self._retry_times and self._retry_times[0] <= moment:  # this claim takes them
            heapq.heappop(self._retry_times)
        lease, now = self.lease_ms, now_ms()
        return await self._storage(lambda storage: storage.claim_pushes(now, lease, limit))

    async def _send(self, push: ClaimedPush) -> None:
        try:
            adapter = self.adapters.get(push.device.platform)
            if adapter is None:  # queued while an adapter of this platform was configured
                result = PushResult(outcome="failed", detail="no adapter for this platform")
            else:
                try:
                    result = await adapter.send(push.device, push.push)
                except Exception as exc:
                    log.exception("the %s push adapter raised", adapter.platform)
                    result = PushResult(outcome="retry", detail=f"adapter error: {exc!r}")
            await self._settle(push, result)
        except Exception:  # the device could not be removed: the lease brings the push back
            log.exception("settling push %s failed", push.id)

    async def _settle(self, push: ClaimedPush, result: PushResult) -> None:
        platform = push.device.platform
        outcome: str = result.outcome
        if outcome == "sent":
            self._finished.append(push.id)
        elif outcome == "gone":
            log.info("push device %s is gone (%s): removed", push.device.id, result.detail)
            device = push.device
            await self._storage(lambda storage: storage.delete_device(device.user_id, device.id))
        elif outcome == "failed":
            log.warning("push to %s device %s failed: %s", platform, push.device.id, result.detail)
            self._finished.append(push.id)
        elif self._exhausted(push):
            outcome = "dropped"
            log.warning(
                "push to %s device %s dropped after %d tries: %s",
                platform,
                push.device.id,
                push.attempts,
                result.detail,
            )
            self._finished.append(push.id)
        else:
            outcome = "retried"
            wait = self._backoff(push.attempts, result.retry_after_seconds)
            self._retries[push.id] = now_ms() + int(wait * 1000)
            self._retry_at(time.monotonic() + wait)
        self._outcomes.append((platform, outcome))

    def _exhausted(self, push: ClaimedPush) -> bool:
        too_old = now_ms() - push.created_ts > self.settings.expire_seconds * 1000
        return too_old or push.attempts >= self.settings.max_attempts

    def _backoff(self, attempts: int, retry_after: float | None) -> float:
        """Seconds before the next try: base doubling per try, capped, with full jitter on its
        upper half so nodes retrying a recovered provider do not all come back at once."""
        settings = self.settings
        ceiling = min(settings.retry_max_seconds, settings.retry_base_seconds * 2 ** (attempts - 1))
        wait = random.uniform(ceiling / 2, ceiling)
        if retry_after is not None:
            wait = max(wait, min(retry_after, settings.expire_seconds))
        return wait

    def _retry_at(self, when: float) -> None:
        when += _CLOCK_MARGIN
        heapq.heappush(self._retry_times, when)
        if when < self._sleep_until:  # the loop's pause outlasts it: shorten it
            self._wake.set()


async def push_dispatcher(app: App) -> PushDispatcher | None:
    """The node's dispatcher over the adapters plugins contribute (`chatcore_push_adapters`);
    None when `[push] enabled` is false or no adapter is configured."""
    # Registered even while pushes are off: dashboards and alert rules find them (at 0).
    PushMetrics.for_app(app)
    if not app.settings.push.enabled:
        return None
    adapters: dict[str, PushAdapter] = {}
    for answer in await call_all(app.hook.chatcore_push_adapters, app=app):
        for adapter in answer if isinstance(answer, list) else [answer]:
            if adapter.platform in adapters:
                raise ValueError(f"two push adapters for the platform {adapter.platform!r}")
            adapters[adapter.platform] = adapter
    if not adapters:
        log.info("no push adapter is configured: pushes are off")
        return None
    log.info("push adapters: %s", ", ".join(sorted(adapters)))
    return PushDispatcher(app, adapters)
