"""Domain models shared by the core, the plugins and the wire.

These are plain pydantic models: the storage interface returns them, the transports serialize them
with `wire()`, which leaves out optional fields that are unset (the contract marks them `?`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    model_config = ConfigDict(frozen=True)

    def wire(self) -> dict[str, Any]:
        """The JSON object of this model as the wire contract shows it."""
        return self.model_dump(mode="json", exclude_none=True)


class User(Model):
    """A user as everyone may see them (never a password hash)."""

    id: str
    username: str
    display_name: str
    avatar_media_id: str | None = None


class Credentials(Model):
    """A user with the stored password hash: only the auth backend reads this."""

    user: User
    password_hash: str


class Identity(Model):
    """Who a request or a session acts for, read from a verified access token."""

    user_id: str
    login_id: str
    token_id: str
    expires_ts: int


class TokenPair(Model):
    """The answer to login and refresh (PROTOCOL.md, Auth)."""

    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int
    user: User


class RefreshOutcome(Model):
    """What storage found when a refresh token was presented.

    `status` is "ok" (the token was unused, is now marked used, and `new_hash` is stored for the
    same login), "unknown", "reused" (already used once: a sign of theft), "expired" or "ended"
    (its login was ended). `login_id` and `user_id` are set for every status but "unknown".
    """

    status: str
    login_id: str | None = None
    user_id: str | None = None
