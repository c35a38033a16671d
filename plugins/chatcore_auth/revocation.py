"""The ended logins this node knows of: an O(1) check on every authenticated request."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

__all__ = ["RevocationList"]


class RevocationList:
    """Login ids that ended, each kept `keep_seconds` after this node learned of it.

    An access token lives at most the access token ttl, so once that time (plus clock leeway)
    has passed since a login ended, every token of it has expired on its own and the entry can
    go. Entries are kept in the order they were added, which is also time order, so pruning
    walks from the oldest and stops at the first one still needed.
    """

    def __init__(self, keep_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.keep_seconds = keep_seconds
        self._clock = clock
        self._ended: dict[str, float] = {}

    def __contains__(self, login_id: object) -> bool:
        return login_id in self._ended

    def __len__(self) -> int:
        return len(self._ended)

    def add(self, login_id: str) -> None:
        """Remember `login_id` as ended; a login already known keeps its first time."""
        self.prune()
        if login_id not in self._ended:
            self._ended[login_id] = self._clock()

    def update(self, login_ids: Iterable[str]) -> None:
        for login_id in login_ids:
            self.add(login_id)

    def prune(self) -> None:
        """Drop the entries older than `keep_seconds`."""
        horizon = self._clock() - self.keep_seconds
        while self._ended:
            oldest, since = next(iter(self._ended.items()))
            if since >= horizon:
                break
            del self._ended[oldest]
