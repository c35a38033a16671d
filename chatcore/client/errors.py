"""What the client raises to a program: every error is a `ClientError`."""

from __future__ import annotations


class ClientError(Exception):
    """Base of the client's errors."""


class ApiError(ClientError):
    """The server answered with an error: its `code` and `message`, the HTTP `status`, and for
    `rate_limited` how long to wait (`retry_after`, seconds)."""

    def __init__(
        self, status: int, code: str, message: str, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


class LoggedOut(ApiError):
    """The login ended (logout, a refused refresh, or no login at all): log in again."""

    def __init__(self, message: str = "not logged in: log in again") -> None:
        super().__init__(401, "unauthorized", message)


class ApiUnavailable(ClientError):
    """No answer from the server (connection refused or reset, timed out)."""


class OutboxError(ClientError):
    """An outbox entry cannot do what was asked: unknown ref, already transmitted (it can no
    longer be edited or cancelled), or failed (its `entry` says why)."""

    def __init__(self, message: str, entry: object | None = None) -> None:
        super().__init__(message)
        self.entry = entry
