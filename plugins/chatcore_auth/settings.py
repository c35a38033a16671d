"""The `[auth]` config section."""

from __future__ import annotations

import warnings
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from chatcore.settings import ConfigWarning, Section

__all__ = ["MIN_SECRET_BYTES", "AuthSettings"]

#: The shortest `secret` that is not advised against: an HS256 key should be as long as the
#: hash, 256 bits (RFC 7518 3.2). The generated `secret_file` holds 86 characters.
MIN_SECRET_BYTES = 32


class AuthSettings(Section):
    """`[auth]`: token signing, password hashing and brute-force limits.

    The signing secret comes from `secret` (or the environment variable `CHATCORE_AUTH__SECRET`);
    when it is unset, from `secret_file`, which is created with a random secret on first start.
    Every node of one service needs the same secret.
    """

    secret: SecretStr | None = Field(
        None,
        description=f"Signing key of access tokens: use at least {MIN_SECRET_BYTES} bytes (UTF-8), "
        "as an HMAC-SHA256 key should be (a shorter one works, with a warning); e.g. the output of "
        "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`.",
    )
    secret_file: str = Field(
        "./data/auth_secret",
        min_length=1,
        description="Where the secret is read from, or written (mode 0600) when `secret` is unset.",
    )
    algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    issuer: str = Field("chatcore", min_length=1, description="The `iss` claim of access tokens.")
    access_token_ttl: int = Field(900, ge=30, description="Seconds an access token is valid.")
    refresh_token_ttl: int = Field(
        30 * 24 * 3600, ge=60, description="Seconds a refresh token is valid (each use renews it)."
    )

    # argon2id; the defaults follow OWASP's guidance, tests lower them.
    hash_time_cost: int = Field(3, ge=1, le=100)
    hash_memory_kib: int = Field(65536, ge=8, le=4 * 1024 * 1024)
    hash_parallelism: int = Field(4, ge=1, le=64)
    hash_concurrency: int = Field(
        2, ge=1, le=256, description="Password hashes computed at once (each in a worker thread)."
    )

    # Brute-force protection (token buckets in storage, shared by the nodes): a burst, then one
    # more per refill period.
    login_failures_per_username: int = Field(
        5, ge=1, description="Failed logins allowed in a burst per username."
    )
    login_username_refill_seconds: float = Field(
        60, gt=0, description="Seconds until one more failed login is allowed for a username."
    )
    login_attempts_per_address: int = Field(
        30, ge=1, description="Logins (failed or not) allowed in a burst per client address."
    )
    login_address_refill_seconds: float = Field(
        2, gt=0, description="Seconds until one more login is allowed for an address."
    )
    revocation_sync_seconds: float = Field(
        30,
        ge=0,
        description="How often ended logins are re-read from storage, repairing missed broker "
        "events (0: never).",
    )

    @field_validator("secret")
    @classmethod
    def _secret_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return value
        secret = value.get_secret_value().strip()
        if not secret:
            raise ValueError("must not be empty; leave it out to use secret_file")
        if len(secret.encode()) < MIN_SECRET_BYTES:
            # A short key makes every token forgeable by guessing the key offline. Advice, not a
            # refusal: the protocol's minimal server file has a placeholder secret, and test rigs
            # written from it start nodes with short ones.
            warnings.warn(
                ConfigWarning(
                    f"auth.secret: {len(secret.encode())} bytes; anyone who guesses it can sign "
                    f"tokens: use at least {MIN_SECRET_BYTES} random bytes, or leave it out to "
                    "have one made in secret_file"
                ),
                stacklevel=2,
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> AuthSettings:
        if self.hash_memory_kib < 8 * self.hash_parallelism:
            raise ValueError("hash_memory_kib must be at least 8 * hash_parallelism (argon2)")
        if self.refresh_token_ttl < self.access_token_ttl:
            raise ValueError("refresh_token_ttl must be at least access_token_ttl")
        return self
