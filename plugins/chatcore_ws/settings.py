"""The `[websocket]` config section of the built-in WebSocket server."""

from __future__ import annotations

from pydantic import Field, field_validator

from chatcore.settings import Section
from chatcore_ws.origins import normalize_origin

MIB = 1024 * 1024


class WebSocketSettings(Section):
    """`[websocket]`: the WebSocket listener (docs/protocol.md, "WebSocket protocol").

    The largest frame a client may send is not set here: it is `[limits] max_frame_bytes`,
    shared with every transport and reported by /api/v1/info.
    """

    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8081, ge=0, le=65535, description="Port to listen on; 0 picks a free one.")
    public_url: str | None = Field(
        None,
        pattern=r"^wss?://[^/\s?#]+(/[^\s?#]*)?$",
        description="URL clients open (behind a proxy); default ws://HOST:PORT. "
        "Reported by /api/v1/info as ws_url.",
    )
    allowed_origins: list[str] | None = Field(
        None,
        description="Origins allowed to open a session, compared by scheme, host and port. "
        "Default: the origin of [server] public_url (else http://HOST:PORT of [server]), plus "
        "its localhost and 127.0.0.1 forms when that host is a loopback address. A handshake "
        "without an Origin header (not a browser) is always allowed.",
    )
    rate_per_second: float = Field(20, gt=0, description="Frames a second a session may send.")
    rate_burst: float = Field(100, ge=1, description="Frames a session may send at once.")
    rate_close_after: int = Field(
        100, ge=1, description="Refused frames in a row after which the session closes (4429)."
    )
    auth_timeout_seconds: float = Field(
        10, gt=0, description="Time a new connection has to send its auth frame (else 4408)."
    )
    compression: bool = Field(
        False,
        description="Offer permessage-deflate. Off by default: it costs CPU for every recipient "
        "of every event, and chat frames are small.",
    )
    send_buffer_bytes: int = Field(
        MIB,
        ge=1024,
        description="Unsent data a session may have queued; over it the session closes (1013).",
    )
    ping_interval_seconds: float | None = Field(
        20, gt=0, description="Protocol-level keepalive ping interval; empty disables it."
    )
    ping_timeout_seconds: float | None = Field(
        20, gt=0, description="Close a connection whose keepalive pong is this late."
    )

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        for origin in value:
            if normalize_origin(origin) is None:
                raise ValueError(
                    f"{origin!r} is not an origin: expected scheme://host[:port], no path"
                )
        return value
