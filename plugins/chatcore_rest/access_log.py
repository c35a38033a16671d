"""The access log: one line per REST request, when `[rest] access_log = true` (off by default).

Lines go to the `chatcore.access` logger at INFO, so they follow `[logging] format`: a line of
text, or a JSON object whose fields are those of `access_fields` (docs/operations.md):

    GET /api/v1/media/m1?sig=REDACTED 200 3.1ms 5120B 203.0.113.7 user=u1

What a line never holds: headers (an `Authorization` header above all), bodies, and the values
of query parameters that look like secrets (`sig`, `token`, ...; see `redact_query`).
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode

__all__ = ["ACCESS_LOGGER", "REDACTED", "AccessLog", "access_fields", "redact_query"]

ACCESS_LOGGER = "chatcore.access"
#: What a secret query value is replaced with.
REDACTED = "REDACTED"
#: Query parameter names whose values are (or may be) secrets: signed URLs' `sig`, tokens,
#: passwords, keys. Matched anywhere in the name, whatever its case.
_SECRET_NAME = re.compile(r"sig|token|secret|pass|key|auth|code|credential|session", re.I)


def redact_query(query: bytes | str) -> str:
    """The query string with every secret-looking parameter's value replaced by REDACTED."""
    text = query.decode("latin-1") if isinstance(query, bytes) else query
    if not text:
        return ""
    pairs = parse_qsl(text, keep_blank_values=True)
    return urlencode(
        [(name, REDACTED if _SECRET_NAME.search(name) else value) for name, value in pairs],
        safe="/:,",
    )


def access_fields(
    *,
    method: str,
    path: str,
    query: bytes | str,
    status: int,
    seconds: float,
    size: int | None,
    remote: str | None,
    user_id: str | None,
) -> dict[str, Any]:
    """The fields of one access-log entry (`bytes` is None when the body was streamed)."""
    redacted = redact_query(query)
    return {
        "method": method,
        "path": f"{path}?{redacted}" if redacted else path,
        "status": status,
        "duration_ms": round(seconds * 1000, 2),
        "bytes": size,
        "remote": remote,
        "user_id": user_id,
    }


class AccessLog:
    """Writes the access log of one REST app (made only when `[rest] access_log` is on)."""

    def __init__(self) -> None:
        self.logger = logging.getLogger(ACCESS_LOGGER)
        # Switched on in the config, so it shows whatever `[logging] level` says for the rest.
        if self.logger.getEffectiveLevel() > logging.INFO:
            self.logger.setLevel(logging.INFO)

    def write(self, fields: dict[str, Any]) -> None:
        """One line: text made of the fields, and the fields themselves for the JSON format."""
        size = fields["bytes"]
        self.logger.info(
            "%s %s %d %.1fms %s %s user=%s",
            fields["method"],
            fields["path"],
            fields["status"],
            fields["duration_ms"],
            "-" if size is None else f"{size}B",
            fields["remote"] or "-",
            fields["user_id"] or "-",
            extra={"fields": fields},
        )
