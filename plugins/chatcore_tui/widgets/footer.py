"""The footer: Textual's, recomposed at most once per short while.

Textual's `Footer` rebuilds its keys each time the screen's bindings may have changed (every
focus change, every screen pushed or resumed); at start that is several rebuilds within a
few frames, each a dozen widgets styled anew. This one waits `SETTLE` seconds for the changes
to settle and rebuilds once.
"""

from __future__ import annotations

from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer as TextualFooter

#: Seconds the footer waits for binding changes to settle before it rebuilds.
SETTLE = 0.05


class Footer(TextualFooter):
    """The main keys at the bottom; rebuilt once per burst of binding changes."""

    _settling: Timer | None = None

    def bindings_changed(self, screen: Screen[object]) -> None:
        if self._settling is not None:
            return  # a rebuild is coming: it will show these changes too
        self._settling = self.set_timer(SETTLE, lambda: self._settled(screen))

    def _settled(self, screen: Screen[object]) -> None:
        self._settling = None
        super().bindings_changed(screen)
