"""Framework-neutral REST routes, so a plugin adds endpoints without importing a web framework.

The REST transport plugin adapts these to its framework: it authenticates the caller (unless
`auth=False`), parses path parameters, turns a `ChatError` into the contract's error body, and
serializes what the handler returns as JSON.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from chatcore.models import Identity
    from chatcore.server.app import App


class Request(Protocol):
    """What a route handler sees of an HTTP request."""

    app: App
    method: str
    path_params: Mapping[str, str]
    query: Mapping[str, str]
    headers: Mapping[str, str]
    remote_address: str | None
    identity: Identity | None  # set when the route requires auth

    async def json(self) -> Any:
        """The JSON body; ChatError bad_request when it is missing or not JSON."""


@dataclass
class Response:
    """A reply with a status other than 200, extra headers, or no body (`body=None`).

    A `bytes` body is sent as it is, with the `Content-Type` of `headers` (default
    `application/octet-stream`); any other body is encoded as JSON.
    """

    body: Any = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Awaitable[Any]]


@dataclass(frozen=True)
class Route:
    """One endpoint: `path` uses `{name}` placeholders, e.g. `/hello/{name}`."""

    path: str
    handler: Handler
    methods: tuple[str, ...] = ("GET",)
    auth: bool = True
    summary: str = ""
    #: False keeps the route out of the OpenAPI document (e.g. a web page and its files).
    documented: bool = True
