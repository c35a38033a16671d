"""The wall clock of the wire: one formula for every timestamp the server stamps."""

from __future__ import annotations

import time

__all__ = ["now_ms"]


def now_ms() -> int:
    """Unix time in milliseconds, the unit of every `*_ts` on the wire."""
    # Integer nanoseconds, not `time.time() * 1000`: no float rounding, so two stamps taken
    # in order never compare the other way round after the conversion.
    return time.time_ns() // 1_000_000
