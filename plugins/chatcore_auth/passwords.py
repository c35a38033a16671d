"""argon2id password hashing, always in worker threads and never more than N at once."""

from __future__ import annotations

import logging
import secrets
from functools import partial

import anyio
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from chatcore_auth.settings import AuthSettings

__all__ = ["Passwords"]

log = logging.getLogger(__name__)


class Passwords:
    """Hash and verify passwords without blocking the event loop.

    Each hash runs in a worker thread, at most `hash_concurrency` at once, so a burst of logins
    queues up instead of starving the process of memory (each hash takes `hash_memory_kib`).
    """

    def __init__(self, settings: AuthSettings) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.hash_time_cost,
            memory_cost=settings.hash_memory_kib,
            parallelism=settings.hash_parallelism,
            type=Type.ID,
        )
        self._limiter = anyio.CapacityLimiter(settings.hash_concurrency)
        self._dummy_hash: str | None = None

    async def start(self) -> None:
        # A real hash with the current parameters, verified against for unknown usernames, so
        # that a login for a user who does not exist takes as long as one for a user who does.
        self._dummy_hash = await self.hash(secrets.token_urlsafe(24))

    async def hash(self, password: str) -> str:
        """The argon2id hash of `password` (PHC string: parameters and salt included)."""
        return await anyio.to_thread.run_sync(self._hasher.hash, password, limiter=self._limiter)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """True when `password` matches `stored_hash`.

        With `stored_hash` None (no such user) the same work is done against a dummy hash and
        the answer is False. A stored hash argon2 cannot read is logged and never matches.
        """
        if stored_hash is None:
            if self._dummy_hash is None:
                self._dummy_hash = await self.hash(secrets.token_urlsafe(24))
            await anyio.to_thread.run_sync(
                partial(self._check, self._dummy_hash, password), limiter=self._limiter
            )
            return False
        return await anyio.to_thread.run_sync(
            partial(self._check, stored_hash, password), limiter=self._limiter
        )

    def needs_rehash(self, stored_hash: str) -> bool:
        """True when `stored_hash` was made with other parameters than the configured ones."""
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except (InvalidHashError, ValueError):
            return False

    def _check(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, password)
        except InvalidHashError:
            log.warning("a stored password hash is not an argon2 hash; that login always fails")
            return False
        except VerificationError:  # includes VerifyMismatchError
            return False
