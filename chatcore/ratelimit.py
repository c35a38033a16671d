"""Token buckets in memory: flood control of a session's frames.

(Login throttling counts across nodes: its buckets live in storage, see `chatcore_auth.throttle`.)
"""

from __future__ import annotations

import time


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
