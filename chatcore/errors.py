"""The errors of chatcore: `ChatError`, carrying the error codes of the wire contract, and
`StartupError`, a node that cannot start (also importable from `chatcore.server.app`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    """Error codes of docs/protocol.md ("Conventions"); each maps to one HTTP status."""

    BAD_REQUEST = "bad_request"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    TOO_LARGE = "too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    RATE_LIMITED = "rate_limited"
    INTERNAL = "internal"
    UNAVAILABLE = "unavailable"

    @property
    def http_status(self) -> int:
        return _HTTP_STATUS[self]


_HTTP_STATUS = {
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.TOO_LARGE: 413,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.INTERNAL: 500,
    ErrorCode.UNAVAILABLE: 503,
}


class StartupError(Exception):
    """The node cannot start: a missing backend, or a plugin that failed while starting."""


class ChatError(Exception):
    """An error a client is allowed to see.

    `message` is a sentence a person can act on; it is sent as is, so it must never hold a stack
    trace or internal detail. `status` overrides the code's HTTP status where the contract keeps
    its own (405 and 416 with `bad_request`). `retry_after_ms` goes with `rate_limited`.
    """

    def __init__(
        self,
        code: ErrorCode | str,
        message: str,
        *,
        status: int | None = None,
        retry_after_ms: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = ErrorCode(code)
        self.message = message
        self.status = status or self.code.http_status
        self.retry_after_ms = retry_after_ms

    def rest_body(self) -> dict[str, Any]:
        """The REST error body: `{"error": {"code", "message"}}`."""
        return {"error": {"code": self.code.value, "message": self.message}}

    def ws_event(self, ref: str | None = None) -> dict[str, Any]:
        """The WebSocket `error` event, with the frame's `ref` when one could be read."""
        event: dict[str, Any] = {"type": "error", "code": self.code.value, "message": self.message}
        if ref is not None:
            event["ref"] = ref
        if self.retry_after_ms is not None:
            event["retry_after_ms"] = self.retry_after_ms
        return event

    def __repr__(self) -> str:
        return f"ChatError({self.code.value!r}, {self.message!r})"


def bad_request(message: str) -> ChatError:
    return ChatError(ErrorCode.BAD_REQUEST, message)


def not_found(what: str = "This") -> ChatError:
    return ChatError(ErrorCode.NOT_FOUND, f"{what} does not exist or is not visible to you.")


def unauthorized(
    message: str = "Sign in first: the access token is missing, invalid or expired.",
) -> ChatError:
    return ChatError(ErrorCode.UNAUTHORIZED, message)


def validation_message(errors: Sequence[Mapping[str, Any]]) -> str:
    """One readable sentence from pydantic's error list: `field: problem; field: problem`."""
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "Invalid input: " + "; ".join(parts) + more + "."
