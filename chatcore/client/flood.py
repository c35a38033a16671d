"""What the server's flood control surely lets through: a floor under a session's bucket.

The server takes a token for every frame it reads after `auth`, of any type, from a bucket of
`ws_rate_burst` that refills at `ws_rate_per_second` (both in `/api/v1/info`), and refuses a
frame with `rate_limited` when the bucket holds less than one. It reads one session's frames
in the order they were written. A frame refused while a later one is accepted (the bucket
refilled in between) would land after it: the sender writes a send behind another only when
flood control cannot refuse the first, and a send that it might refuse goes alone.

The client never sees when the server reads a frame, so a floor is all it can know:

- from the session's start (the bucket is full before the first frame): the burst, less every
  frame written since (`auth` counted too, for a server that counts it);
- from each answered frame (its `ack`, its own `message`, its `error`): after the server read
  it the bucket held at least nothing, and at least the time since its answer arrived has
  passed before the server reads the next frame; so the refill of that time, capped at the
  burst, less the frames written after it.

The floor is the best of these. It never counts time the server may not have had: a server
that stalls and then reads a pile of frames at once refuses none that the floor let through.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

__all__ = ["FloodFloor"]

#: Answers that arrive within this share of the bucket's refill time are kept as one (the
#: newer): the floor then loses at most about this share of the burst, and holds few answers.
ANSWER_SLOT_SHARE = 1 / 32


class FloodFloor:
    """Counts the frames one connection writes, and bounds the server's bucket from below."""

    def __init__(self, rate: float = math.inf, burst: float = math.inf) -> None:
        self.rate = rate
        self.burst = burst
        #: Frames written on the connection so far (`auth` is the first).
        self.written = 0
        #: (position of an answered frame, when its answer was read): both increasing.
        self._answers: list[tuple[int, float]] = []
        self._refill_seconds = burst / rate if math.isfinite(burst) else 0.0

    @classmethod
    def for_limits(cls, limits: Mapping[str, float]) -> FloodFloor:
        """The floor of a server stating `limits`; no limit when it states no flood control."""
        rate = limits.get("ws_rate_per_second")
        burst = limits.get("ws_rate_burst")
        if not rate or not burst:
            return cls()
        return cls(float(rate), float(burst))

    def wrote(self) -> int:
        """Count a frame about to be written; its position on the connection."""
        self.written += 1
        return self.written

    def answered(self, position: int, now: float) -> None:
        """The frame at `position` was answered (read at `now`, the loop's clock)."""
        if not math.isfinite(self.burst):
            return
        answers = self._answers
        if answers and answers[-1][0] >= position:
            return  # a later frame's answer, read earlier, bounds better
        # The answers kept stand a slot apart, but for the newest, which moves on.
        slot = self._refill_seconds * ANSWER_SLOT_SHARE
        if len(answers) >= 2 and answers[-1][1] - answers[-2][1] < slot:
            answers[-1] = (position, now)
        else:
            answers.append((position, now))
        # Once an answer is old enough for a full refill, the ones before it bound worse.
        while len(answers) > 1 and now - answers[1][1] >= self._refill_seconds:
            del answers[0]

    def floor(self, now: float) -> float:
        """Tokens the bucket surely holds when the server reads the next frame written."""
        best = self.burst - self.written
        for position, at in self._answers:
            refill = min(self.burst, self.rate * (now - at))
            best = max(best, refill - (self.written - position))
        return best

    def sure(self, now: float, ahead: int = 0) -> bool:
        """The flood control cannot refuse the next frame written after `ahead` more."""
        needed = 1 + ahead + self.written  # what a bound must reach, frames written included
        if self.burst >= needed:
            return True
        # Oldest first: the answers a full refill has capped usually decide at once.
        return any(
            min(self.burst, self.rate * (now - at)) + position >= needed
            for position, at in self._answers
        )
