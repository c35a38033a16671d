"""Brute-force protection for logins: token buckets per username and per client address."""

from __future__ import annotations

import math

from chatcore.errors import ChatError, ErrorCode
from chatcore.ratelimit import KeyedLimiter
from chatcore_auth.settings import AuthSettings

__all__ = ["LoginThrottle"]

#: Usernames are at most 32 characters; longer keys are cut so a spray of huge names stays small.
_MAX_KEY_CHARS = 64


class LoginThrottle:
    """Per lowercased username, only failed logins count; per address, every login counts.

    Usage: `key = throttle.admit(username, address)` before checking the password (raises
    `rate_limited`), then `throttle.forgive(key)` unless the password was wrong. The username's
    token is taken up front and given back on success, so concurrent guesses cannot all slip
    through before the first failure is counted.

    Limits are kept in this node's memory: each node of a cluster counts on its own.
    """

    def __init__(self, settings: AuthSettings) -> None:
        self._by_username = KeyedLimiter(
            1 / settings.login_username_refill_seconds, settings.login_failures_per_username
        )
        self._by_address = KeyedLimiter(
            1 / settings.login_address_refill_seconds, settings.login_attempts_per_address
        )

    def admit(self, username: str, address: str | None) -> str:
        """Count one attempt; return the username key, or raise `ChatError` rate_limited."""
        if address:
            wait = self._by_address.take(address[:_MAX_KEY_CHARS])
            if wait > 0:
                raise _limited(wait)
        key = username.lower()[:_MAX_KEY_CHARS]
        wait = self._by_username.take(key)
        if wait > 0:
            raise _limited(wait)
        return key

    def forgive(self, key: str) -> None:
        """The attempt was not a wrong password: it does not count against the username."""
        self._by_username.give_back(key)


def _limited(wait_seconds: float) -> ChatError:
    seconds = max(1, math.ceil(wait_seconds))
    return ChatError(
        ErrorCode.RATE_LIMITED,
        f"Too many sign-in attempts; try again in {seconds} second{'s' if seconds > 1 else ''}.",
        retry_after_ms=max(1, math.ceil(wait_seconds * 1000)),
    )
