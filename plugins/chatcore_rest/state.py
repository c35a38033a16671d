"""What the Quart app keeps of its chatcore node: one `RestState` per Quart app."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from quart import current_app

if TYPE_CHECKING:
    from chatcore.server.app import App
    from chatcore_rest.addresses import Network
    from chatcore_rest.metrics import HttpMetrics

__all__ = ["EXTENSION", "RestState", "rest_state"]

EXTENSION = "chatcore"


@dataclass(frozen=True)
class RestState:
    app: App
    metrics: HttpMetrics
    trusted_proxies: Sequence[Network]
    #: The features of the endpoint areas mounted, as /api/v1/info reports them.
    features: tuple[str, ...] = ()


def rest_state() -> RestState:
    """The state of the Quart app serving the current request."""
    state: RestState = current_app.extensions[EXTENSION]
    return state
