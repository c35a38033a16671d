"""Token buckets: flood control for sessions and brute-force protection for logins."""

from __future__ import annotations

import time
from collections import OrderedDict


class TokenBucket:
    """`rate` tokens a second refill a bucket of `burst`; each action takes one."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float | None = None) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = time.monotonic() if now is None else now

    def take(self, now: float | None = None) -> float:
        """Take a token; return 0.0 when allowed, else the seconds until one is available."""
        now = time.monotonic() if now is None else now
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate

    def give_back(self) -> None:
        """Return a token taken by `take` (the action it paid for turned out to be free)."""
        self.tokens = min(self.burst, self.tokens + 1)


class KeyedLimiter:
    """One token bucket per key (a username, an address), keeping at most `max_keys`.

    The least recently used keys are dropped first, so memory stays bounded under a spray of
    distinct keys; a dropped key starts again with a full bucket.
    """

    def __init__(self, rate: float, burst: float, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, key: str, now: float | None = None) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, now)
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket.take(now)

    def give_back(self, key: str) -> None:
        """Return a token taken for `key`: take first, give back when the action was free.

        Taking up front and giving back afterwards (rather than checking, then taking on
        failure) keeps concurrent actions from all passing the check before any of them pays.
        """
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.give_back()

    def reset(self, key: str) -> None:
        self._buckets.pop(key, None)
