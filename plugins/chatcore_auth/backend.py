"""The built-in auth backend: argon2id passwords, JWT access tokens, rotating refresh tokens."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging

import anyio

from chatcore.clock import now_ms
from chatcore.errors import ChatError, ErrorCode, unauthorized
from chatcore.interfaces import Broker, Storage, Subscription
from chatcore.models import Credentials, Identity, TokenPair, User
from chatcore.server.accounts import PASSWORD_MAX
from chatcore.server.realtime.hub import LOGINS_CHANNEL, login_ended_event, parse_login_ended
from chatcore_auth.passwords import Passwords
from chatcore_auth.revocation import RevocationList
from chatcore_auth.secret import resolve_secret
from chatcore_auth.settings import AuthSettings
from chatcore_auth.throttle import LoginThrottle
from chatcore_auth.tokens import (
    LEEWAY_SECONDS,
    REFRESH_INVALID,
    AccessTokens,
    check_refresh_token,
    hash_refresh_token,
    min_key_bytes,
    new_refresh_token,
)

__all__ = ["TokenAuthBackend"]

log = logging.getLogger(__name__)

WRONG_PAIR = "Wrong username or password."
LOGIN_ENDED = "This login has ended; sign in again."
ACCOUNT_DISABLED = "This account is disabled; ask the server's admins."
REFRESH_REUSED = (
    "This refresh token was already used, so its login was ended to protect the account; "
    "sign in again."
)
REFRESH_EXPIRED = "This refresh token has expired; sign in again."
#: Kept beyond the access token ttl: clock differences between nodes, and a refresh racing the
#: logout of its login.
REVOCATION_SLACK_SECONDS = 60 + LEEWAY_SECONDS


class TokenAuthBackend:
    """`chatcore.interfaces.AuthBackend` on top of any `Storage` and `Broker`.

    A login is a token family: one password login, its refresh tokens (each works once) and the
    access tokens issued from them. Ended logins are announced on the broker channel
    `LOGINS_CHANNEL`; every node keeps the recent ones in memory, so checking an access token
    never waits on storage.
    """

    def __init__(self, settings: AuthSettings, storage: Storage, broker: Broker) -> None:
        self.settings = settings
        self.storage = storage
        self.broker = broker
        self.passwords = Passwords(settings)
        self.throttle = LoginThrottle(settings, storage)
        self.revoked = RevocationList(settings.access_token_ttl + REVOCATION_SLACK_SECONDS)
        self._tokens: AccessTokens | None = None
        self._secret: bytes | None = None
        self._subscription: Subscription | None = None
        self._sync_task: asyncio.Task[None] | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        secret = await anyio.to_thread.run_sync(resolve_secret, self.settings)
        wanted = max(32, min_key_bytes(self.settings.algorithm))
        if len(secret) < wanted:
            log.warning(
                "the auth secret is %d bytes; use at least %d random bytes with %s",
                len(secret),
                wanted,
                self.settings.algorithm,
            )
        self._secret = secret
        self._tokens = AccessTokens(
            secret, self.settings.algorithm, self.settings.issuer, self.settings.access_token_ttl
        )
        await self.passwords.start()
        try:
            # Subscribe before reading storage, so a login ended in between is seen either way.
            self._subscription = await self.broker.subscribe(LOGINS_CHANNEL, self._on_login_ended)
            await self._load_ended_logins()
        except BaseException:
            await self.close()  # the app closes only what started
            raise
        if self.settings.revocation_sync_seconds > 0:
            self._sync_task = asyncio.create_task(self._sync_ended_logins())

    async def close(self) -> None:
        if self._sync_task is not None:
            self._sync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sync_task
            self._sync_task = None
        if self._subscription is not None:
            await self._subscription.unsubscribe()
            self._subscription = None

    @property
    def tokens(self) -> AccessTokens:
        if self._tokens is None:
            raise RuntimeError("the auth backend is used before start()")
        return self._tokens

    # --- AuthBackend ---------------------------------------------------------------------------

    async def register(self, username: str, password: str, display_name: str) -> User:
        # Checked first only to spare a costly hash; storage has the final word on a race.
        if await self.storage.get_credentials(username) is not None:
            raise ChatError(ErrorCode.CONFLICT, "This username is taken; choose another one.")
        password_hash = await self.passwords.hash(password)
        return await self.storage.create_user(username, password_hash, display_name)

    async def hash_password(self, password: str) -> str:
        return await self.passwords.hash(password)

    def signing_key(self, purpose: str) -> bytes:
        """HMAC-SHA256 of the purpose under the auth secret: the same on every node that
        shares the secret, unrelated between purposes, and never the secret itself (so a key
        handed to, say, the media service cannot sign access tokens)."""
        if self._secret is None:
            raise RuntimeError("the auth backend is used before start()")
        label = b"chatcore signing key\x00" + purpose.encode()
        return hmac.new(self._secret, label, hashlib.sha256).digest()

    async def login(self, username: str, password: str, address: str | None) -> TokenPair:
        if not isinstance(username, str) or not isinstance(password, str):
            raise unauthorized(WRONG_PAIR)
        key = await self.throttle.admit(username, address)
        wrong = False
        try:
            credentials = await self._check_password(username, password)
            wrong = credentials is None
        finally:
            # Only a wrong password counts against the username; a storage error does not.
            if not wrong:
                await self.throttle.forgive(key)
        if credentials is None:
            raise unauthorized(WRONG_PAIR)
        if credentials.user.disabled:
            # Said only to whoever knows the password: it tells nothing to a guesser.
            raise ChatError(ErrorCode.FORBIDDEN, ACCOUNT_DISABLED)
        await self._rehash_if_needed(credentials, password)
        return await self._start_login(credentials.user)

    async def refresh(self, refresh_token: str) -> TokenPair:
        token = check_refresh_token(refresh_token)
        new_token = new_refresh_token()
        now = now_ms()
        outcome = await self.storage.rotate_refresh_token(
            hash_refresh_token(token),
            hash_refresh_token(new_token),
            now + self.settings.refresh_token_ttl * 1000,
            now,
        )
        login_id, user_id = outcome.login_id, outcome.user_id
        if outcome.status == "ok" and login_id and user_id:
            user = await self.storage.get_user(user_id)
            if user is None or user.disabled:  # the user is gone: so is every login of theirs
                await self._end_login(login_id)
                raise unauthorized(LOGIN_ENDED)
            return self._pair(user, login_id, new_token)
        if outcome.status == "reused" and login_id:
            # A refresh token works once: a second use means two parties hold it.
            log.warning("a used refresh token was presented again; ending login %s", login_id)
            await self._end_login(login_id)
            raise unauthorized(REFRESH_REUSED)
        if outcome.status == "expired":
            raise unauthorized(REFRESH_EXPIRED)
        if outcome.status == "ended":
            raise unauthorized(LOGIN_ENDED)
        raise unauthorized(REFRESH_INVALID)

    async def authenticate(self, access_token: str) -> Identity:
        identity = self.tokens.verify(access_token)
        if identity.login_id in self.revoked:
            raise unauthorized(LOGIN_ENDED)
        return identity

    async def logout(self, identity: Identity) -> None:
        await self._end_login(identity.login_id)

    # --- helpers -------------------------------------------------------------------------------

    async def _check_password(self, username: str, password: str) -> Credentials | None:
        """The user's credentials when `password` is theirs, else None, in about the same time
        whether or not the username exists."""
        if len(password) > PASSWORD_MAX:  # no such password was ever accepted
            return None
        credentials = await self.storage.get_credentials(username)
        stored = credentials.password_hash if credentials is not None else None
        if await self.passwords.verify(stored, password):
            return credentials
        return None

    async def _rehash_if_needed(self, credentials: Credentials, password: str) -> None:
        if not self.passwords.needs_rehash(credentials.password_hash):
            return
        try:
            new_hash = await self.passwords.hash(password)
            await self.storage.set_password_hash(credentials.user.id, new_hash)
        except Exception:  # the login itself is fine; the next one tries again
            log.exception("could not store the re-hashed password of user %s", credentials.user.id)

    async def _start_login(self, user: User) -> TokenPair:
        refresh_token = new_refresh_token()
        now = now_ms()
        login_id = await self.storage.create_login(
            user.id,
            hash_refresh_token(refresh_token),
            now + self.settings.refresh_token_ttl * 1000,
            now,
        )
        return self._pair(user, login_id, refresh_token)

    def _pair(self, user: User, login_id: str, refresh_token: str) -> TokenPair:
        return TokenPair(
            access_token=self.tokens.issue(user.id, login_id),
            refresh_token=refresh_token,
            expires_in=self.settings.access_token_ttl,
            user=user,
        )

    async def _end_login(self, login_id: str) -> None:
        """End a login in storage, here at once, then on every other node through the broker."""
        await self.storage.end_login(login_id, now_ms())
        self.revoked.add(login_id)
        try:
            await self.broker.publish(LOGINS_CHANNEL, login_ended_event(login_id))
        except Exception:
            # Not raised: the login has ended, and the caller's token already fails here, so a
            # retry could not even be authenticated. Other nodes catch up from storage.
            log.exception(
                "could not announce the end of login %s; other nodes learn of it within %ss",
                login_id,
                self.settings.revocation_sync_seconds,
            )

    def _on_login_ended(self, data: bytes) -> None:
        login_id = parse_login_ended(data)
        if login_id is not None:
            self.revoked.add(login_id)

    async def _load_ended_logins(self) -> list[str]:
        """Add the recently ended logins in storage to this node's list: those it did not know."""
        since = now_ms() - int(self.revoked.keep_seconds * 1000)
        ended = await self.storage.ended_logins_since(since)
        news = [login_id for login_id in ended if login_id not in self.revoked]
        self.revoked.update(ended)
        return news

    async def _sync_ended_logins(self) -> None:
        """Re-read recent ended logins now and then: broker delivery is only a hint.

        A login this node learns of here was ended without its news reaching this node: by
        a node whose broker event was lost, or by a console command (`chatcore user disable`)
        on another broker, such as a single node's in-memory one. It is announced again, so
        that the sessions of that login close here (and on any node that missed it too).
        """
        while True:
            await asyncio.sleep(self.settings.revocation_sync_seconds)
            try:
                news = await self._load_ended_logins()
            except Exception:
                log.warning("could not read ended logins from storage", exc_info=True)
                continue
            for login_id in news:
                try:
                    await self.broker.publish(LOGINS_CHANNEL, login_ended_event(login_id))
                except Exception:
                    log.warning("could not announce the end of login %s", login_id, exc_info=True)
                    break
