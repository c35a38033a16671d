"""Quart's request class for the REST API: our JSON errors, timing, the client's address."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, NoReturn

import orjson
from quart import Request
from quart.wrappers.request import Body
from werkzeug.exceptions import RequestEntityTooLarge

from chatcore.errors import bad_request
from chatcore_rest.addresses import client_address
from chatcore_rest.state import rest_state

__all__ = [
    "DRAIN_MAX_BYTES",
    "JSON_BODY_LIMIT",
    "NOT_JSON_MESSAGE",
    "BodyLimit",
    "ChatBody",
    "ChatRequest",
]

#: The largest body a JSON endpoint reads, unless its route has a `BodyLimit` of its own.
JSON_BODY_LIMIT = 1024 * 1024
NOT_JSON_MESSAGE = "Send the body as JSON, with the header Content-Type: application/json."
#: A body the view did not read is received (and dropped past the body limit) before the reply
#: goes out, up to this size and time; beyond them the connection is closed instead.
DRAIN_MAX_BYTES = 64 * 1024 * 1024
DRAIN_TIMEOUT_SECONDS = 10.0


class ChatBody(Body):
    """Quart's request body, which also tells when the client has sent all of it.

    Quart marks a body complete early when it exceeds the limit; `received` is set only once
    the last byte has arrived (or the body was found over the limit before it started).
    """

    def __init__(self, expected_content_length: int | None, max_content_length: int | None):
        super().__init__(expected_content_length, max_content_length)
        self.received = asyncio.Event()
        self._appending = False

    def append(self, data: bytes) -> None:
        self._appending = True
        try:
            super().append(data)
        finally:
            self._appending = False

    def set_complete(self) -> None:
        super().set_complete()
        if not self._appending:  # not the early completion of a body over the limit
            self.received.set()


@dataclass(frozen=True)
class BodyLimit:
    """A body limit of its own for one route: `method` and a Quart rule (`/a/<id>/b`)."""

    method: str
    rule: str
    limit: int

    def pattern(self) -> re.Pattern[str]:
        """The paths of the rule (each variable one path segment, as Quart's default)."""
        parts = re.split(r"<[^>]*>", self.rule)
        return re.compile("[^/]+".join(re.escape(part) for part in parts))


class ChatRequest(Request):
    """A request whose JSON errors are `bad_request` in the contract's shape."""

    body_class = ChatBody
    body: ChatBody
    #: Routes with a body limit other than the app's MAX_CONTENT_LENGTH (see `with_body_limits`).
    body_limits: ClassVar[tuple[tuple[str, re.Pattern[str], int], ...]] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.started = time.perf_counter()
        #: Set once the request's access token is verified (for the access log).
        self.user_id: str | None = None
        self._client_address: str | None = None
        self._client_address_known = False
        # The body starts arriving before the request is routed, so its limit is chosen here,
        # from the method and path, rather than in the view.
        for method, pattern, limit in self.body_limits:
            if self.method == method and pattern.fullmatch(self.path):
                self._max_content_length = limit
                self.body = self.body_class(self.content_length, limit)
                break

    @classmethod
    def with_body_limits(cls, limits: Iterable[BodyLimit]) -> type[ChatRequest]:
        """A subclass that gives these routes their own body limit (one per Quart app)."""
        compiled = tuple((limit.method.upper(), limit.pattern(), limit.limit) for limit in limits)
        return type(cls.__name__, (cls,), {"body_limits": compiled, "__doc__": cls.__doc__})

    async def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        """The parsed body; `bad_request` when it is not JSON, `too_large` over the limit.

        A body sent as another media type is refused (rather than parsed anyway), so a
        browser form on another site cannot post to the API. The bytes go to orjson as they
        are: invalid UTF-8 is invalid JSON, not a server error.
        """
        if cache and self._cached_json[silent] is not Ellipsis:
            return self._cached_json[silent]
        limit = self.max_content_length
        if self.content_length is not None and limit is not None and self.content_length > limit:
            raise RequestEntityTooLarge()
        if not (force or self.is_json):
            if silent:
                return None
            raise bad_request(NOT_JSON_MESSAGE)
        data = await self.get_data(cache=cache, as_text=False)
        try:
            result = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            if not silent:
                self.on_json_loading_failed(exc)  # raises
            result = None
        if cache:
            self._cached_json[silent] = result
        return result

    def on_json_loading_failed(self, error: Exception | None) -> NoReturn:
        """Raise `bad_request` for a body that is not JSON."""
        if error is None:
            raise bad_request(NOT_JSON_MESSAGE)
        detail = str(error).split("\n", 1)[0][:200]
        raise bad_request(f"The request body is not valid JSON ({detail}).") from None

    async def drain(self) -> None:
        """Receive the rest of a body the view did not read, before the reply goes out.

        Hypercorn closes a keep-alive connection whose request was answered before its body
        had fully arrived, without a `Connection: close` in the reply; a client that sends
        its next request on that connection sees it drop, and a client still sending a body
        over the limit gets a reset instead of its 413. Receiving the body first (keeping at
        most the body limit of it) avoids both.
        """
        if self.body.received.is_set():
            return
        if not (self.content_length or "transfer-encoding" in self.headers):
            return
        if self.content_length is not None and self.content_length > DRAIN_MAX_BYTES:
            return  # not worth receiving: the connection closes after the reply
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.body.received.wait(), DRAIN_TIMEOUT_SECONDS)

    @property
    def client_address(self) -> str | None:
        """The client's address (see `chatcore_rest.addresses.client_address`)."""
        if not self._client_address_known:
            state = rest_state()
            self._client_address = client_address(
                self.remote_addr, self.headers.getlist("X-Forwarded-For"), state.trusted_proxies
            )
            self._client_address_known = True
        return self._client_address
