"""`[broker]` keys of the NATS broker, and which URLs it serves."""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from chatcore.settings import BrokerSettings, names_host

__all__ = ["SCHEMES", "NatsBrokerSettings", "handles"]

SCHEMES = ("nats", "tls")


def handles(url: str) -> bool:
    """True for the URLs this broker serves: `nats://` (and `tls://`)."""
    return urlsplit(url.split(",", 1)[0].strip()).scheme.lower() in SCHEMES


class NatsBrokerSettings(BrokerSettings):
    """`[broker]` with `url = "nats://HOST:PORT"` (several servers: comma-separated URLs)."""

    url_schemes: ClassVar[tuple[str, ...] | None] = SCHEMES

    subject_prefix: str = Field(
        "",
        description="NATS: subject tokens put before every channel, so services (or test runs) "
        "sharing one NATS never see each other's events, e.g. `chat1`.",
    )
    reconnect_wait_seconds: float = Field(
        1.0, gt=0, le=60, description="NATS: wait between two reconnection attempts."
    )

    @field_validator("url")
    @classmethod
    def _nats_urls(cls, value: str) -> str:
        if not handles(value):
            return value  # another broker's URL
        for server in value.split(","):
            if urlsplit(server.strip()).scheme.lower() not in SCHEMES or not names_host(server):
                raise ValueError(
                    "expected nats://HOST[:PORT] (or tls://), several separated by commas"
                )
        return value

    @field_validator("subject_prefix")
    @classmethod
    def _valid_prefix(cls, value: str) -> str:
        value = value.strip(".")
        if value and any(not token or bad in token for token in value.split(".") for bad in " *>"):
            raise ValueError("must be dot-separated NATS subject tokens without spaces, * or >")
        return value
