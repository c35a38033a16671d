"""Brute-force protection for logins: token buckets per username and per client address,
kept in storage, so that every node of a cluster counts every attempt."""

from __future__ import annotations

import hashlib
import logging
import math
from typing import NamedTuple

from chatcore.clock import now_ms
from chatcore.errors import ChatError, ErrorCode
from chatcore.interfaces import RateLimitStorage
from chatcore_auth.settings import AuthSettings

__all__ = ["LoginThrottle"]

log = logging.getLogger(__name__)


class _Limit(NamedTuple):
    """One kind of bucket: what it counts (part of its keys), its burst and refill time."""

    kind: str
    burst: int
    interval_ms: int

    def key(self, value: str) -> str:
        """The bucket of `value`: a hash, so storage holds no usernames or addresses, and any
        value (a huge or odd username) makes a key of the same 64 characters."""
        return hashlib.sha256(f"chatcore.login.{self.kind}\x00{value}".encode()).hexdigest()


class LoginThrottle:
    """Per lowercased username, only failed logins count; per address, every login counts.

    Usage: `key = await throttle.admit(username, address)` before checking the password (raises
    `rate_limited`), then `await throttle.forgive(key)` unless the password was wrong. The
    username's token is taken up front and given back on success, so concurrent guesses, also
    on several nodes, cannot all slip through before the first failure is counted.
    """

    def __init__(self, settings: AuthSettings, storage: RateLimitStorage) -> None:
        self._storage = storage
        self._username = _Limit(
            "username",
            settings.login_failures_per_username,
            _ms(settings.login_username_refill_seconds),
        )
        self._address = _Limit(
            "address",
            settings.login_attempts_per_address,
            _ms(settings.login_address_refill_seconds),
        )

    async def admit(self, username: str, address: str | None) -> str:
        """Count one attempt; return the username's key, or raise `ChatError` rate_limited."""
        if address:
            await self._take(self._address, self._address.key(address))
        key = self._username.key(username.lower())
        await self._take(self._username, key)
        return key

    async def forgive(self, key: str) -> None:
        """The attempt was not a wrong password: it does not count against the username.

        Never raises: a login that succeeded stays a success when storage fails just now (the
        username only keeps one failure too many until its bucket refills)."""
        try:
            await self._storage.return_token(key, self._username.interval_ms, now_ms())
        except Exception:
            log.warning("could not give a login attempt back to its username", exc_info=True)

    async def _take(self, limit: _Limit, key: str) -> None:
        wait_ms = await self._storage.take_token(key, limit.burst, limit.interval_ms, now_ms())
        if wait_ms > 0:
            raise _limited(wait_ms)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _limited(wait_ms: int) -> ChatError:
    seconds = max(1, math.ceil(wait_ms / 1000))
    return ChatError(
        ErrorCode.RATE_LIMITED,
        f"Too many sign-in attempts; try again in {seconds} second{'s' if seconds > 1 else ''}.",
        retry_after_ms=max(1, wait_ms),
    )
