"""The connection banner: one line at the top saying what the connection is doing.

It is the only sign of being offline: nothing else is disabled (the outbox keeps what the
user sends). Hidden while the connection is *ready*; when offline with a retry planned it
counts down to the next attempt.
"""

from __future__ import annotations

import time

from textual.content import Content
from textual.timer import Timer
from textual.widgets import Static

from chatcore_tui.format import connection_line


class ConnectionBanner(Static):
    """Shows `ConnectionChanged` as a line; hidden when ready."""

    DEFAULT_CSS = """
    ConnectionBanner {
        width: 1fr;
        height: auto;
        padding: 0 1;
        background: $warning-muted;
        color: $text;
    }
    ConnectionBanner.-offline { background: $error-muted; }
    ConnectionBanner.-ready { display: none; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.state = "offline"
        self.detail = ""
        self._retry_at: float | None = None
        self._ticker: Timer | None = None

    def on_mount(self) -> None:
        self._ticker = self.set_interval(1.0, self._tick, pause=True)

    def show_state(self, state: str, detail: str = "", retry_in: float | None = None) -> None:
        """Show a connection state (from `ConnectionChanged` or the client's properties)."""
        self.state, self.detail = state, detail
        self._retry_at = time.monotonic() + retry_in if retry_in is not None else None
        self.set_class(state == "ready", "-ready")
        self.set_class(state in ("offline", "logged_out"), "-offline")
        self._render_line()
        if self._ticker is not None:
            if self._retry_at is not None:
                self._ticker.resume()
            else:
                self._ticker.pause()

    def _tick(self) -> None:
        self._render_line()

    def _render_line(self) -> None:
        retry_in = None
        if self._retry_at is not None:
            retry_in = max(0.0, self._retry_at - time.monotonic())
        # Plain text: a detail such as "[Errno 111] ..." is not markup.
        self.update(Content(connection_line(self.state, self.detail, retry_in)))
