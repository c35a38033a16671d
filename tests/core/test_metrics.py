"""The core's lock-free metrics (`chatcore.metrics`) expose what prometheus-client's own
counters and histograms would: same series, same bucket counts, same sums."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from chatcore.metrics import LATENCY_BUCKETS, LoopCounter, LoopHistogram

VALUES = [0.0, 0.0005, 0.0007, 0.001, 0.003, 0.05, 0.05, 0.7, 3.0, 12.0, 1e6]


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if not s.name.endswith("_created")
    }


def test_a_loop_histogram_matches_prometheus_clients() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    loop = LoopHistogram("chatcore_x_seconds", "x", LATENCY_BUCKETS, registry=ours)
    reference = Histogram("chatcore_x_seconds", "x", buckets=LATENCY_BUCKETS, registry=theirs)
    loop.observe(VALUES[0])
    loop.observe_many(VALUES[1:])
    for value in VALUES:
        reference.observe(value)
    assert samples(ours) == samples(theirs)
    assert loop.count == len(VALUES)


def test_a_loop_counter_matches_prometheus_clients() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    loop = LoopCounter("chatcore_y", "y", ["kind"], registry=ours)
    reference = Counter("chatcore_y", "y", ["kind"], registry=theirs)
    loop.labels("a").value += 3
    loop.labels("b").value += 1
    loop.labels("a").value += 2
    reference.labels("a").inc(5)
    reference.labels("b").inc(1)
    assert samples(ours) == samples(theirs)
    assert loop.value("a") == 5 and loop.value("never") == 0


def test_a_name_is_registered_once() -> None:
    registry = CollectorRegistry()
    LoopCounter("chatcore_z", "z", registry=registry)
    with pytest.raises(ValueError, match="Duplicated"):
        LoopCounter("chatcore_z", "z", registry=registry)
