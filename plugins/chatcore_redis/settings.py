"""`[broker]` keys of the Redis broker."""

from __future__ import annotations

from pydantic import Field

from chatcore.settings import BrokerSettings

__all__ = ["RedisBrokerSettings"]


class RedisBrokerSettings(BrokerSettings):
    """`[broker]` with `url = "redis://HOST:PORT/DB"` (or `rediss://` for TLS)."""

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
