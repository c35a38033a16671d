"""The `[rest]` config section: knobs of the REST listener that the core's `[server]` lacks."""

from __future__ import annotations

from pydantic import Field, IPvAnyNetwork

from chatcore.settings import Section

__all__ = ["RestSettings"]


class RestSettings(Section):
    """`[rest]`: the REST API's listener. Host and port come from `[server]`."""

    trusted_proxies: list[IPvAnyNetwork] = Field(
        default_factory=list,
        description="Addresses or networks of reverse proxies whose X-Forwarded-For header is "
        'believed (e.g. ["127.0.0.1", "10.0.0.0/8"]). Empty: the peer address is the client.',
    )
    access_log: bool = Field(
        False,
        description="Log one line per REST request (method, path with secret query values "
        "redacted, status, duration, bytes, client address, user id) to the chatcore.access "
        "logger, as JSON when [logging] format is json. Never headers or bodies.",
    )
    graceful_timeout: float = Field(
        5.0,
        gt=0,
        le=300,
        description="Seconds requests in flight get to finish when the node stops.",
    )
