"""`chatcore.ratelimit.TokenBucket`: a burst at once, then `rate` actions a second."""

from __future__ import annotations

import pytest

from chatcore.ratelimit import TokenBucket


def test_a_full_bucket_allows_its_burst_at_once_then_says_how_long_to_wait():
    """`burst` actions pass together; the next one is refused with the seconds to a token."""
    bucket = TokenBucket(rate=2, burst=3, now=0.0)
    assert [bucket.take(now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(now=0.0) == pytest.approx(0.5)


def test_a_refused_action_takes_nothing():
    """Asking again while empty does not push the wait further out."""
    bucket = TokenBucket(rate=2, burst=1, now=0.0)
    assert bucket.take(now=0.0) == 0.0
    assert bucket.take(now=0.0) == pytest.approx(0.5)
    assert bucket.take(now=0.0) == pytest.approx(0.5)
    assert bucket.take(now=0.5) == 0.0


def test_tokens_refill_at_the_rate():
    """An empty bucket gains `rate` tokens a second; the wait shrinks as time passes."""
    bucket = TokenBucket(rate=4, burst=2, now=10.0)
    assert bucket.take(now=10.0) == bucket.take(now=10.0) == 0.0
    assert bucket.take(now=10.125) == pytest.approx(0.125)  # times exact in binary
    assert bucket.take(now=10.25) == 0.0  # one token after 1/rate seconds
    assert bucket.take(now=10.25) == pytest.approx(0.25)
    assert bucket.take(now=10.75) == 0.0  # two tokens by now: one left
    assert bucket.take(now=10.75) == 0.0


def test_an_idle_bucket_refills_only_up_to_its_burst():
    """However long a bucket rests, it never holds more than `burst` tokens."""
    bucket = TokenBucket(rate=1, burst=2, now=0.0)
    assert bucket.take(now=0.0) == 0.0
    assert [bucket.take(now=3600.0) for _ in range(3)] == [0.0, 0.0, pytest.approx(1.0)]


def test_without_times_the_bucket_runs_on_the_monotonic_clock():
    """Made and used without `now`, a bucket still allows its burst and then refuses."""
    bucket = TokenBucket(rate=0.001, burst=2)
    assert bucket.take() == bucket.take() == 0.0
    assert 0 < bucket.take() <= 1000
