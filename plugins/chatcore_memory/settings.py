"""The `[broker]` model of the in-process broker: no keys of its own, only the URL it serves."""

from __future__ import annotations

from typing import ClassVar

from chatcore.settings import BrokerSettings

__all__ = ["SCHEMES", "MemoryBrokerSettings"]

SCHEMES = ("memory",)


class MemoryBrokerSettings(BrokerSettings):
    """`[broker]` with `url = "memory://"`: one node, events stay in this process."""

    url_schemes: ClassVar[tuple[str, ...] | None] = SCHEMES
