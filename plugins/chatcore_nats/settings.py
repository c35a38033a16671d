"""`[broker]` keys of the NATS broker."""

from __future__ import annotations

from pydantic import Field, field_validator

from chatcore.settings import BrokerSettings

__all__ = ["NatsBrokerSettings"]


class NatsBrokerSettings(BrokerSettings):
    """`[broker]` with `url = "nats://HOST:PORT"` (several servers: comma-separated URLs)."""

    subject_prefix: str = Field(
        "",
        description="NATS: subject tokens put before every channel, so services (or test runs) "
        "sharing one NATS never see each other's events, e.g. `chat1`.",
    )
    reconnect_wait_seconds: float = Field(
        1.0, gt=0, le=60, description="NATS: wait between two reconnection attempts."
    )

    @field_validator("subject_prefix")
    @classmethod
    def _valid_prefix(cls, value: str) -> str:
        value = value.strip(".")
        if value and any(not token or bad in token for token in value.split(".") for bad in " *>"):
            raise ValueError("must be dot-separated NATS subject tokens without spaces, * or >")
        return value
