"""`[broker]` keys of the Redis broker, and which URLs it serves."""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from chatcore.settings import BrokerSettings, names_host

__all__ = ["SCHEMES", "RedisBrokerSettings", "handles"]

SCHEMES = ("redis", "rediss")


def handles(url: str) -> bool:
    """True for the URLs this broker serves: `redis://` and `rediss://`."""
    return urlsplit(url).scheme.lower() in SCHEMES


class RedisBrokerSettings(BrokerSettings):
    """`[broker]` with `url = "redis://HOST:PORT/DB"` (or `rediss://` for TLS)."""

    url_schemes: ClassVar[tuple[str, ...] | None] = SCHEMES

    channel_prefix: str = Field(
        "",
        description="Redis: prepended to every channel name, so services (or test runs) "
        "sharing one Redis never see each other's events, e.g. `chat1:`.",
    )
    reconnect_max_seconds: float = Field(
        5.0,
        gt=0,
        le=300,
        description="Redis: longest wait between two reconnection attempts (the wait doubles "
        "from 0.1 s up to this).",
    )
    ping_interval_seconds: float = Field(
        10.0,
        gt=0,
        le=300,
        description="Redis: a quiet subscriber connection is pinged this often; no answer within "
        "two intervals counts as a lost connection.",
    )

    @field_validator("url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if not handles(value):
            return value  # another broker's URL
        database = urlsplit(value).path.removeprefix("/")
        if not names_host(value) or not (database == "" or database.isdigit()):
            raise ValueError("expected redis://HOST[:PORT][/DB] (or rediss:// for TLS)")
        return value
