"""What the REST client's and the media client's tests share: people with an `Api` each on a
real server, a transport that records what the client sent, PNG images, expired tokens."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
from PIL import Image

from chatcore.client.api import Api
from chatcore.client.models import Tokens, User
from chatcore.testing.server import ServerProcess
from chatcore.testing.users import PASSWORD, unique_username


@dataclass(frozen=True)
class Sent:
    """One request as the client sent it, and the status it got (None: no answer)."""

    method: str
    path: str
    headers: httpx.Headers
    body: bytes | None
    status: int | None


class RecordingTransport(httpx.AsyncBaseTransport):
    """httpx's own transport, recording every request the client makes (so a test can prove
    that a call made none, or exactly one refresh). `on_request` runs as each one leaves."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.sent: list[Sent] = []
        self.on_request: Callable[[httpx.Request], None] | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # Streamed bodies (uploads) are not kept; JSON bodies are.
        body = request.content if isinstance(request.stream, httpx.ByteStream) else None
        if self.on_request is not None:
            self.on_request(request)
        try:
            response = await self._inner.handle_async_request(request)
        except BaseException:
            self.sent.append(Sent(request.method, request.url.path, request.headers, body, None))
            raise
        self.sent.append(
            Sent(request.method, request.url.path, request.headers, body, response.status_code)
        )
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()

    def paths(self) -> list[str]:
        """`METHOD /path` of every request, without the `/api/v1` prefix."""
        return [f"{s.method} {s.path.removeprefix('/api/v1')}" for s in self.sent]

    def count(self, method: str, path: str) -> int:
        return self.paths().count(f"{method} {path}")


class TokenLog:
    """An `on_tokens` listener that records each call."""

    def __init__(self) -> None:
        self.calls: list[Tokens | None] = []

    async def __call__(self, tokens: Tokens | None) -> None:
        self.calls.append(tokens)


@dataclass
class Person:
    username: str
    user: User
    api: Api
    transport: RecordingTransport
    log: TokenLog = field(default_factory=TokenLog)

    @property
    def id(self) -> str:
        return self.user.id

    @property
    def tokens(self) -> Tokens:
        assert self.api.tokens is not None, "logged out"
        return self.api.tokens


class People:
    """Registered, logged-in users on a server, each with an `Api` of their own; every `Api`
    made here is closed at the end of the `async with`."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self._apis: list[Api] = []

    async def __aenter__(self) -> People:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for api in self._apis:
            await api.aclose()

    def api(
        self,
        *,
        tokens: Tokens | None = None,
        log: TokenLog | None = None,
        transport: RecordingTransport | None = None,
        server_url: str | None = None,
        timeout: float = 10.0,
    ) -> Api:
        api = Api(
            server_url or self.server.base_url,
            tokens=tokens,
            on_tokens=log,
            timeout=timeout,
            transport=transport,
        )
        self._apis.append(api)
        return api

    async def person(self, prefix: str = "c", display_name: str | None = None) -> Person:
        transport, log = RecordingTransport(), TokenLog()
        api = self.api(log=log, transport=transport)
        username = unique_username(prefix)
        await api.register(username, PASSWORD, display_name)
        tokens = await api.login(username, PASSWORD)
        return Person(username, tokens.user, api, transport, log)

    async def people(self, count: int) -> list[Person]:
        return [await self.person() for _ in range(count)]


def png_bytes(width: int = 32, height: int = 32, *, noise: bool = False) -> bytes:
    """A PNG image; with `noise`, random pixels (they do not compress: about 3 bytes a pixel)."""
    if noise:
        image = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    else:
        image = Image.new("RGB", (width, height), (200, 30, 90))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def expired_access_token(server: ServerProcess, valid: Tokens) -> str:
    """An access token of `valid`'s login, signed by the server, that expired an hour ago:
    what a client holds after a sleep when its clock told it the token was still good."""
    claims: dict[str, Any] = jwt.decode(valid.access_token, options={"verify_signature": False})
    expired = int(time.time()) - 3600
    claims.update(iat=expired - 900, exp=expired)
    secret = str(server.config["auth"]["secret"])
    return jwt.encode(claims, secret, algorithm="HS256")
