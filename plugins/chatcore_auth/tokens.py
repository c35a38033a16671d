"""Access tokens (signed JWTs) and refresh tokens (random strings kept only as hashes)."""

from __future__ import annotations

import hashlib
import secrets
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import jwt
from jwt.warnings import InsecureKeyLengthWarning

from chatcore.errors import unauthorized
from chatcore.models import Identity

__all__ = [
    "LEEWAY_SECONDS",
    "MAX_TOKEN_CHARS",
    "REFRESH_INVALID",
    "AccessTokens",
    "check_refresh_token",
    "hash_refresh_token",
    "min_key_bytes",
    "new_refresh_token",
]

#: Clock difference tolerated between nodes when checking `exp` and `iat`.
LEEWAY_SECONDS = 10
#: Anything longer is no token of ours; refused before any parsing.
MAX_TOKEN_CHARS = 4096
REQUIRED_CLAIMS = ["exp", "iat", "iss", "sub", "sid", "jti"]
_MIN_KEY_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
#: `model_fields_set` of every verified Identity (all fields set): one shared, never changed.
_IDENTITY_FIELDS = set(Identity.model_fields)


def min_key_bytes(algorithm: str) -> int:
    """The key length RFC 7518 asks for with `algorithm` (the size of its hash)."""
    return _MIN_KEY_BYTES[algorithm]


class AccessTokens:
    """Issue and verify access tokens: HMAC-signed JWTs with a short life.

    Claims: `sub` (user id), `sid` (login id), `jti` (random token id), `iat`, `exp`, `iss`.
    Verification accepts only the configured algorithm (so never `none`, never a swap), checks
    the issuer, and requires every claim.
    """

    def __init__(
        self,
        secret: bytes,
        algorithm: str,
        issuer: str,
        ttl_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret
        self.algorithm = algorithm
        self.issuer = issuer
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        # PyJWT warns on every use of a short key; we log it once at start instead.
        self._short_key = len(secret) < min_key_bytes(algorithm)

    def issue(self, user_id: str, login_id: str) -> str:
        now = int(self._clock())
        claims = {
            "sub": user_id,
            "sid": login_id,
            "jti": secrets.token_urlsafe(16),
            "iat": now,
            "exp": now + self.ttl_seconds,
            "iss": self.issuer,
        }
        with self._quiet():
            return jwt.encode(claims, self._secret, algorithm=self.algorithm)

    def verify(self, token: object) -> Identity:
        """The identity in a valid token; `ChatError` unauthorized for anything else."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
            raise unauthorized()
        try:
            with self._quiet():
                claims: dict[str, Any] = jwt.decode(
                    token,
                    self._secret,
                    algorithms=[self.algorithm],
                    issuer=self.issuer,
                    leeway=LEEWAY_SECONDS,
                    options={"require": REQUIRED_CLAIMS},
                )
        except jwt.ExpiredSignatureError:
            raise unauthorized(
                "The access token has expired; refresh it or sign in again."
            ) from None
        except jwt.PyJWTError:
            raise unauthorized() from None
        user_id, login_id, token_id, exp = (
            claims.get("sub"),
            claims.get("sid"),
            claims.get("jti"),
            claims.get("exp"),
        )
        if not all(isinstance(v, str) and v for v in (user_id, login_id, token_id)):
            raise unauthorized()
        if not isinstance(exp, int) or isinstance(exp, bool):
            raise unauthorized()
        # Every field was checked just above. Built without validating again, so that the
        # identities of all sessions share one set of field names instead of one each (a
        # session keeps its identity for life, and the model is frozen: nobody changes it).
        return Identity.model_construct(
            _IDENTITY_FIELDS,
            user_id=str(user_id),
            login_id=str(login_id),
            token_id=str(token_id),
            expires_ts=exp * 1000,
        )

    @contextmanager
    def _quiet(self) -> Iterator[None]:
        if not self._short_key:
            yield
            return
        # No await inside: the filter change cannot leak into other tasks.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InsecureKeyLengthWarning)
            yield


def new_refresh_token() -> str:
    """32 random bytes, URL-safe: what the client holds."""
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    """What storage keeps: SHA-256 hex. A fast hash suffices: the token has 256 bits of entropy,
    so nobody can guess one from its hash, and lookups stay cheap."""
    return hashlib.sha256(token.encode()).hexdigest()


def check_refresh_token(token: object) -> str:
    """`token` when it has the shape of a refresh token, else `ChatError` unauthorized."""
    if not isinstance(token, str) or not 16 <= len(token) <= 256:
        raise unauthorized(REFRESH_INVALID)
    return token


REFRESH_INVALID = "This refresh token is not valid; sign in again."
