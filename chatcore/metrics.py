"""Prometheus metrics of one node, in a registry of its own (never the process-global one).

Tests and programs that embed chatcore run several apps in one process; each app's metrics
live in `metrics_registry(app)`, where the core, the built-in plugins and any other plugin
register their collectors. The REST plugin serves it at `/metrics`. Every node of a cluster
serves its own figures (Prometheus scrapes each node and sums across them).

The core's own metrics (`CoreMetrics`, docs/operations.md lists them all) count on the send
path, which is tuned for latency: they are `LoopCounter`s and `LoopHistogram`s, plain numbers
changed without a lock and read when the registry is scraped. They are only changed on the
app's event loop (one thread), which is what makes that safe. Where a batch exists (a group
commit, a fan-out to a room's sessions), they count once per batch, not once per message.

Brokers keep three plain counts of their own, which `CoreMetrics` reports per broker kind
when a broker has them: `published` and `received` (broker messages) and `reconnects`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, TypeVar

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from chatcore.state import StateKey

if TYPE_CHECKING:
    from chatcore.server.app import App

__all__ = [
    "CoreMetrics",
    "LoopCounter",
    "LoopHistogram",
    "Tally",
    "core_metrics",
    "metrics_registry",
    "once_per_app",
]

REGISTRY_KEY = StateKey[CollectorRegistry]("chatcore.metrics.registry")
_CORE_KEY: StateKey[CoreMetrics] = StateKey("chatcore.metrics.core")

M = TypeVar("M")

#: Latency buckets (seconds) of acks and commits: a durable send takes a few ms on a quiet
#: node, and anything past a second is an outage.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
#: Messages per group commit: at most `max_batch` (512).
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
#: Messages per catch-up: at most `max_sync_messages` per room.
SYNC_BUCKETS = (0, 1, 10, 100, 1000, 10_000, 100_000)


def metrics_registry(app: App) -> CollectorRegistry:
    """The app's registry, made (with the process collector) on first use."""
    registry = app.state.get(REGISTRY_KEY)
    if registry is None:
        registry = app.state[REGISTRY_KEY] = CollectorRegistry()
        ProcessCollector(registry=registry)
    return registry


def once_per_app(app: App, key: StateKey[M], make: Callable[[App], M]) -> M:
    """`make(app)`, made once per app and kept in `app.state[key]`: metrics registered once
    (a registry refuses a name twice), and an app started again keeps counting in them."""
    made = app.state.get(key)
    if made is None:
        made = app.state[key] = make(app)
    return made


def core_metrics(app: App) -> CoreMetrics:
    """The core's metrics of `app`, registered in its registry on first use."""
    return once_per_app(app, _CORE_KEY, CoreMetrics)


class Tally:
    """One count: `tally.value += n` on the event loop; no lock (see the module docstring)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


class LoopCounter(Collector):
    """A Prometheus counter family whose children are `Tally`s (exposed as `<name>_total`)."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        registry: CollectorRegistry,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._children: dict[tuple[str, ...], Tally] = {}
        if not self.labelnames:
            self._children[()] = Tally()
        registry.register(self)

    def labels(self, *values: str) -> Tally:
        """The child of these label values (made on first use; keep it to count often)."""
        assert len(values) == len(self.labelnames), "one value per label"
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = Tally()
        return child

    def inc(self, amount: int = 1) -> None:
        """Count on a family without labels."""
        self._children[()].value += amount

    def value(self, *values: str) -> int:
        """The count of these label values (0 when never counted)."""
        child = self._children.get(values)
        return 0 if child is None else child.value

    def describe(self) -> Iterable[Metric]:
        # Lets the registry refuse a second family of the same name.
        return [CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)]

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in list(self._children.items()):
            family.add_metric(values, child.value)
        return [family]


class LoopHistogram(Collector):
    """A Prometheus histogram without labels, observed without a lock (see the module)."""

    def __init__(
        self,
        name: str,
        documentation: str,
        buckets: Sequence[float],
        *,
        registry: CollectorRegistry,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.bounds = tuple(float(b) for b in buckets)
        # counts[i]: observations in (bounds[i-1], bounds[i]]; the last one is above all bounds.
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0
        registry.register(self)

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def observe_many(self, values: Iterable[float]) -> None:
        """Observe every value of a batch (one call instead of one per value)."""
        bounds, counts, total = self.bounds, self.counts, 0.0
        for value in values:
            counts[bisect_left(bounds, value)] += 1
            total += value
        self.sum += total

    @property
    def count(self) -> int:
        return sum(self.counts)

    def describe(self) -> Iterable[Metric]:
        return [HistogramMetricFamily(self.name, self.documentation)]

    def collect(self) -> Iterable[Metric]:
        buckets, running = [], 0
        for bound, count in zip((*self.bounds, float("inf")), list(self.counts), strict=True):
            running += count
            buckets.append((_bound_text(bound), running))
        family = HistogramMetricFamily(self.name, self.documentation)
        family.add_metric([], buckets, self.sum)
        return [family]


def _bound_text(bound: float) -> str:
    """A bucket's `le` as prometheus_client writes it (`+Inf`, `0.005`, `10.0`)."""
    return "+Inf" if bound == float("inf") else repr(float(bound))


class CoreMetrics:
    """What an operator watches on a node, counted by the core (docs/operations.md)."""

    def __init__(self, app: App) -> None:
        registry = metrics_registry(app)
        self.messages_stored = LoopCounter(
            "chatcore_messages_stored",
            "Messages stored by the group commit (new messages, not repeated sends).",
            registry=registry,
        )
        self.events_delivered = LoopCounter(
            "chatcore_events_delivered",
            "Live events handed to this node's WebSocket sessions, by kind (message, other).",
            ["kind"],
            registry=registry,
        )
        self.ack_latency = LoopHistogram(
            "chatcore_ack_latency_seconds",
            "Time from a send queued for the group commit to its answer (ack or error).",
            LATENCY_BUCKETS,
            registry=registry,
        )
        self.commit_latency = LoopHistogram(
            "chatcore_commit_duration_seconds",
            "Time the storage took to commit one batch of messages.",
            LATENCY_BUCKETS,
            registry=registry,
        )
        self.batch_size = LoopHistogram(
            "chatcore_commit_batch_messages",
            "Messages per group-commit batch.",
            BATCH_BUCKETS,
            registry=registry,
        )
        self.storage_errors = LoopCounter(
            "chatcore_storage_errors",
            "Storage operations that failed, by operation.",
            ["operation"],
            registry=registry,
        )
        self.sync_messages = LoopHistogram(
            "chatcore_sync_messages",
            "Messages a WebSocket catch-up (`sync`) sent, all rooms together.",
            SYNC_BUCKETS,
            registry=registry,
        )
        self.rate_limited = LoopCounter(
            "chatcore_rate_limited",
            "Requests or frames refused (or dropped) by a rate limit, by limit.",
            ["limit"],
            registry=registry,
        )
        self.logins = LoopCounter(
            "chatcore_logins",
            "Password logins, by outcome (ok, failed, rate_limited).",
            ["outcome"],
            registry=registry,
        )
        # Children used on the hot path, looked up once.
        self.delivered_messages = self.events_delivered.labels("message")
        self.delivered_other = self.events_delivered.labels("other")
        self.frames_refused = self.rate_limited.labels("ws_frames")
        registry.register(_BrokerCounts(app))


class _BrokerCounts(Collector):
    """The broker's own counts (`published`, `received`, `reconnects`), by broker kind."""

    _FAMILIES = (
        ("published", "chatcore_broker_published", "Messages this node published to the broker."),
        ("received", "chatcore_broker_received", "Messages this node received from the broker."),
        ("reconnects", "chatcore_broker_reconnects", "Times the broker connection came back."),
    )

    def __init__(self, app: App) -> None:
        self.app = app

    def describe(self) -> Iterable[Metric]:
        return [
            CounterMetricFamily(name, doc, labels=["broker"]) for _, name, doc in self._FAMILIES
        ]

    def collect(self) -> Iterable[Metric]:
        try:
            broker = self.app.broker
        except RuntimeError:  # not started (yet, or any more)
            broker = None
        kind = _broker_kind(broker)
        families = []
        for attribute, name, doc in self._FAMILIES:
            family = CounterMetricFamily(name, doc, labels=["broker"])
            count = getattr(broker, attribute, None)
            if isinstance(count, int):
                family.add_metric([kind], count)
            families.append(family)
        return families


def _broker_kind(broker: object) -> str:
    """`redis` for a RedisBroker, `nats` for a NatsBroker, `memory` for a MemoryBroker."""
    name = type(broker).__name__
    return (name.removesuffix("Broker") or name).lower()
