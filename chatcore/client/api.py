"""The REST client: every call of the server's API, with the login's tokens kept fresh.

    api = Api("http://127.0.0.1:8080")
    tokens = await api.login("ann", "secret-pass")
    rooms = await api.rooms()
    await api.aclose()

Errors are `ApiError` (the server's `code` and `message`, the HTTP status, `retry_after` for
`rate_limited`) or `ApiUnavailable` (no answer: the network or the server is down, or what
answered is not a chatcore server). No call lets an httpx exception out.

Tokens: before an authenticated request, an access token that expires within
max(30 s, 10% of its lifetime) is refreshed first; a 401 answer is followed by one refresh and
one retry. Only one refresh runs at a time (a refresh token works once, and presenting a used
one ends the whole login): callers that waited for someone else's refresh use its result. A
refresh the server refuses ends the login: `on_tokens(None)` is called and `LoggedOut` raised.
`on_tokens` is awaited with the new tokens after every login and refresh, so a program can keep
them (the device store does) and start again without a new login.
"""

from __future__ import annotations

import asyncio
import mimetypes
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

import anyio
import httpx
import orjson
from pydantic import BaseModel, ValidationError

from chatcore.client.errors import ApiError, ApiUnavailable, LoggedOut
from chatcore.client.models import (
    Contact,
    Invitation,
    Media,
    Message,
    MessagePage,
    PushDevice,
    Room,
    SearchPage,
    ServerInfo,
    StickerPack,
    Tokens,
    User,
)
from chatcore.clock import now_ms

#: Called with the new tokens after a login or refresh, and with None when the login ended.
TokenListener = Callable[[Tokens | None], Awaitable[None]]
#: Upload progress: (bytes of the file sent, size of the file).
Progress = Callable[[int, int], None]


__all__ = [
    "Api",
    "ApiError",
    "ApiUnavailable",
    "LoggedOut",
    "Progress",
    "SharedLogin",
    "TokenListener",
]

#: An access token is refreshed when it expires within this margin...
REFRESH_MARGIN_MS = 30_000
#: ... or within this share of its lifetime, when that is longer.
REFRESH_MARGIN_SHARE = 0.1
#: An upload's body goes out in chunks of this size; progress is reported after each one.
UPLOAD_CHUNK_BYTES = 64 * 1024

#: The contract's error codes by HTTP status, for answers that do not carry one (a proxy's page).
_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "bad_request",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    416: "bad_request",
    429: "rate_limited",
    500: "internal",
    502: "unavailable",
    503: "unavailable",
    504: "unavailable",
}

M = TypeVar("M", bound=BaseModel)
#: Makes an upload's body afresh (a retry after a refresh sends it again from the start).
BodyFactory = Callable[[], AsyncIterator[bytes]]


class _TokenReply(BaseModel):
    """The answer to login and refresh."""

    access_token: str
    refresh_token: str
    expires_in: int
    user: User


class SharedLogin(Protocol):
    """A login that several processes of one device use (the app and its push handler).

    A refresh token works once, and presenting a spent one may end the whole login; so a
    refresh happens inside `exclusive()` (held across processes), after checking with
    `latest()` whether another process has refreshed already.
    """

    def exclusive(self) -> AbstractAsyncContextManager[None]:
        """Held by one process of the device at a time."""
        ...

    async def latest(self) -> Tokens | None:
        """The login's tokens as the last process to refresh saved them."""
        ...


class Api:
    """The REST API of one server, for one login at a time."""

    def __init__(
        self,
        server_url: str,
        *,
        tokens: Tokens | None = None,
        on_tokens: TokenListener | None = None,
        timeout: float = 30.0,
        transport: Any = None,
        shared: SharedLogin | None = None,
    ) -> None:
        self.server_url = server_url.rstrip("/")
        self._shared = shared
        self._timeout = timeout
        try:
            self._http = httpx.AsyncClient(
                base_url=self.server_url + "/api/v1", timeout=timeout, transport=transport
            )
        except httpx.InvalidURL as exc:
            raise ValueError(f"not a server URL: {server_url!r} ({exc})") from None
        self._tokens = tokens
        self._on_tokens = on_tokens
        #: The access token's lifetime, known after a login or refresh (None for given tokens).
        self._lifetime_ms: int | None = None
        #: Bumped whenever the login changes (login, logout, ended): a refresh that finishes
        #: after its login was replaced keeps nothing.
        self._generation = 0
        self._refresh_lock = asyncio.Lock()
        #: The refresh token exchange in flight, if any (it outlives a cancelled caller).
        self._exchange: asyncio.Future[Tokens] | None = None

    @property
    def tokens(self) -> Tokens | None:
        return self._tokens

    async def aclose(self) -> None:
        """Close the connections; a refresh still in flight is waited for first (its new
        tokens reach `on_tokens`, since the old refresh token no longer works)."""
        exchange = self._exchange
        if exchange is not None and not exchange.done():
            await asyncio.wait([exchange])
        await self._http.aclose()

    # --- discovery and accounts ------------------------------------------------------------

    async def info(self) -> ServerInfo:
        return _parse(ServerInfo, await self._call("GET", "/info", auth=False))

    async def register(self, username: str, password: str, display_name: str | None = None) -> User:
        body: dict[str, Any] = {"username": username, "password": password}
        if display_name is not None:
            body["display_name"] = display_name
        reply = await self._call("POST", "/auth/register", json=body, auth=False)
        return _parse(User, _field(reply, "user"))

    async def login(self, username: str, password: str) -> Tokens:
        asked_at = now_ms()
        reply = await self._call(
            "POST", "/auth/login", json={"username": username, "password": password}, auth=False
        )
        self._generation += 1
        return await self._keep(reply, asked_at, self._generation)

    async def refresh(self) -> Tokens:
        """Exchange the refresh token for new tokens now (when another refresh is running, its
        result is used instead). `LoggedOut` when the server refuses it."""
        current = self._tokens
        if current is None:
            raise LoggedOut()
        return await self._refresh_from(current)

    async def logout(self) -> None:
        """End the login on the server and forget its tokens (`on_tokens(None)`).

        The tokens are forgotten on this side even when the server cannot be reached or
        fails; its error (`ApiUnavailable`, `ApiError`) is raised after that, so the program can
        say the server may not have heard it. A login the server had ended already is no
        error. Without a login, nothing happens."""
        if self._tokens is None:
            return
        try:
            response = await self._request("POST", "/auth/logout")
            if not response.is_success and response.status_code != 401:
                raise _api_error(response)
        except LoggedOut:
            pass  # the login had ended already: that is what was asked
        finally:
            await self._forget()

    async def access_token(self) -> str:
        """A valid access token (refreshed first when it expires soon), for the WebSocket."""
        return (await self._fresh_tokens()).access_token

    # --- users and settings ----------------------------------------------------------------

    async def me(self) -> User:
        return _parse(User, await self._call("GET", "/me"))

    async def update_profile(
        self,
        *,
        display_name: str | None = None,
        avatar_media_id: str | None = None,
        remove_avatar: bool = False,
    ) -> User:
        """`PATCH /me`: change what is given (`remove_avatar` removes the avatar)."""
        body: dict[str, Any] = {}
        if display_name is not None:
            body["display_name"] = display_name
        if avatar_media_id is not None:
            body["avatar_media_id"] = avatar_media_id
        elif remove_avatar:
            body["avatar_media_id"] = None
        return _parse(User, await self._call("PATCH", "/me", json=body))

    async def settings(self) -> dict[str, Any]:
        return _object(await self._call("GET", "/me/settings"))

    async def patch_settings(self, patch: Mapping[str, Any]) -> dict[str, Any]:
        """An RFC 7396 merge patch (`None` deletes a key); the whole settings after it."""
        return _object(await self._call("PATCH", "/me/settings", json=dict(patch)))

    async def search_users(self, q: str, limit: int = 20) -> list[User]:
        reply = await self._call("GET", "/users", params={"q": q, "limit": limit})
        return _parse_list(User, _field(reply, "users"))

    async def user(self, user_id: str) -> User:
        return _parse(User, await self._call("GET", f"/users/{_id(user_id)}"))

    # --- contacts and blocks ---------------------------------------------------------------

    async def invite(
        self, *, user_id: str | None = None, username: str | None = None
    ) -> Invitation:
        body = {"user_id": user_id} if user_id is not None else {"username": username}
        return _parse(Invitation, await self._call("POST", "/contacts/invitations", json=body))

    async def invitations(self) -> tuple[list[Invitation], list[Invitation]]:
        """Pending (incoming, outgoing)."""
        reply = await self._call("GET", "/contacts/invitations")
        return (
            _parse_list(Invitation, _field(reply, "incoming")),
            _parse_list(Invitation, _field(reply, "outgoing")),
        )

    async def accept_invitation(self, invitation_id: str) -> Contact:
        path = f"/contacts/invitations/{_id(invitation_id)}/accept"
        return _parse(Contact, _field(await self._call("POST", path), "contact"))

    async def decline_invitation(self, invitation_id: str) -> None:
        await self._call("POST", f"/contacts/invitations/{_id(invitation_id)}/decline")

    async def contacts(self) -> list[Contact]:
        return _parse_list(Contact, _field(await self._call("GET", "/contacts"), "contacts"))

    async def remove_contact(self, user_id: str) -> None:
        await self._call("DELETE", f"/contacts/{_id(user_id)}")

    async def block(self, user_id: str) -> None:
        await self._call("POST", "/blocks", json={"user_id": user_id})

    async def unblock(self, user_id: str) -> None:
        await self._call("DELETE", f"/blocks/{_id(user_id)}")

    async def blocks(self) -> list[User]:
        return _parse_list(User, _field(await self._call("GET", "/blocks"), "blocks"))

    # --- rooms and messages ----------------------------------------------------------------

    async def create_direct(self, user_id: str) -> Room:
        body = {"kind": "direct", "user_id": user_id}
        return _parse(Room, await self._call("POST", "/rooms", json=body))

    async def create_group(self, name: str, member_ids: Sequence[str] = ()) -> Room:
        body = {"kind": "group", "name": name, "member_ids": list(member_ids)}
        return _parse(Room, await self._call("POST", "/rooms", json=body))

    async def rooms(self) -> list[Room]:
        return _parse_list(Room, _field(await self._call("GET", "/rooms"), "rooms"))

    async def room(self, room_id: str) -> Room:
        return _parse(Room, await self._call("GET", f"/rooms/{_id(room_id)}"))

    async def add_member(self, room_id: str, user_id: str) -> None:
        await self._call("POST", f"/rooms/{_id(room_id)}/members", json={"user_id": user_id})

    async def remove_member(self, room_id: str, user_id: str) -> None:
        await self._call("DELETE", f"/rooms/{_id(room_id)}/members/{_id(user_id)}")

    async def messages(
        self,
        room_id: str,
        *,
        after_seq: int | None = None,
        before_seq: int | None = None,
        limit: int = 50,
    ) -> MessagePage:
        """`after_seq`: oldest first; `before_seq` or neither: newest first."""
        params: dict[str, int] = {"limit": limit}
        if after_seq is not None:
            params["after_seq"] = after_seq
        if before_seq is not None:
            params["before_seq"] = before_seq
        reply = await self._call("GET", f"/rooms/{_id(room_id)}/messages", params=params)
        return _parse(MessagePage, reply)

    async def send_message(self, room_id: str, fields: Mapping[str, Any]) -> Message:
        """`POST /rooms/{id}/messages` with `fields` (`ref`, `kind`, `body`, ...). The same
        `ref` again answers the stored message (idempotent)."""
        # The path names the room; a frame's `type` and `room_id` have no place in the body.
        body = {k: v for k, v in fields.items() if k not in ("type", "room_id")}
        return _parse(
            Message, await self._call("POST", f"/rooms/{_id(room_id)}/messages", json=body)
        )

    async def edit_message(self, room_id: str, message_id: str, body: str) -> Message:
        path = f"/rooms/{_id(room_id)}/messages/{_id(message_id)}"
        return _parse(Message, await self._call("PATCH", path, json={"body": body}))

    async def delete_message(self, room_id: str, message_id: str) -> None:
        await self._call("DELETE", f"/rooms/{_id(room_id)}/messages/{_id(message_id)}")

    async def mark_read(self, room_id: str, seq: int) -> None:
        await self._call("POST", f"/rooms/{_id(room_id)}/read", json={"seq": seq})

    async def search_messages(
        self, q: str, *, room_id: str | None = None, before: str | None = None, limit: int = 20
    ) -> SearchPage:
        """Messages of the caller's rooms (or of `room_id`) with every word of `q`, newest
        first; `before` is the `next` of the previous page."""
        params: dict[str, str | int] = {"q": q, "limit": limit}
        if room_id is not None:
            params["room_id"] = room_id
        if before is not None:
            params["before"] = before
        return _parse(SearchPage, await self._call("GET", "/search/messages", params=params))

    async def report_message(self, room_id: str, message_id: str, reason: str) -> dict[str, Any]:
        """Report a message to the server's admins: the report (a new one, or the caller's
        open report of this message)."""
        path = f"/rooms/{_id(room_id)}/messages/{_id(message_id)}/report"
        return _object(_field(await self._call("POST", path, json={"reason": reason}), "report"))

    # --- media and stickers ----------------------------------------------------------------

    async def upload(
        self,
        source: Path | bytes,
        *,
        filename: str | None = None,
        progress: Progress | None = None,
    ) -> Media:
        """`POST /media`: the file (a path, read in a worker thread chunk by chunk, or bytes)
        as the multipart part `file`. `filename` defaults to the path's name (bytes: none).

        `progress(sent, total)` is called with (0, size) first, then after each chunk of
        `UPLOAD_CHUNK_BYTES` went out, ending at (size, size). A retry after a refresh sends
        the file again, from 0."""
        if isinstance(source, bytes | bytearray | memoryview):
            data = bytes(source)
            size = len(data)
            name = filename or ""
            chunks: BodyFactory = partial(_chunks_of_bytes, data)
        else:
            path = Path(source)
            size = (await anyio.Path(path).stat()).st_size
            name = path.name if filename is None else filename
            chunks = partial(_chunks_of_file, path, size)
        boundary = secrets.token_hex(16)
        head, tail = _multipart_frame(boundary, name)
        headers = {
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(len(head) + size + len(tail)),
        }

        async def body() -> AsyncIterator[bytes]:
            yield head
            sent = 0
            if progress is not None:
                progress(0, size)
            async for chunk in chunks():
                yield chunk  # resumed once the transport wrote it
                sent += len(chunk)
                if progress is not None:
                    progress(sent, size)
            yield tail

        response = await self._request("POST", "/media", headers=headers, body=body)
        return _parse(Media, _read(response))

    async def download(
        self, media_id: str, *, thumbnail: int | None = None, etag: str | None = None
    ) -> tuple[int, bytes, Mapping[str, str]]:
        """`GET /media/{id}` (or its `/thumbnail?size=N`) with the Bearer token: (status, body,
        headers). With `etag`, an unchanged file answers 304 with an empty body."""
        path = f"/media/{_id(media_id)}"
        params = None
        if thumbnail is not None:
            path += "/thumbnail"
            params = {"size": thumbnail}
        headers = {"If-None-Match": etag} if etag else None
        response = await self._request("GET", path, params=params, headers=headers)
        if response.status_code == 304:
            return 304, b"", response.headers
        if not response.is_success:
            raise _api_error(response)
        return response.status_code, response.content, response.headers

    async def sticker_packs(self) -> list[StickerPack]:
        reply = await self._call("GET", "/sticker-packs")
        return _parse_list(StickerPack, _field(reply, "packs"))

    async def sticker_pack(self, pack_id: str) -> StickerPack:
        return _parse(StickerPack, await self._call("GET", f"/sticker-packs/{_id(pack_id)}"))

    # --- push devices ----------------------------------------------------------------------

    async def push_devices(self) -> list[PushDevice]:
        reply = await self._call("GET", "/push/devices")
        return _parse_list(PushDevice, _field(reply, "devices"))

    async def add_push_device(
        self,
        platform: str,
        *,
        token: str | None = None,
        endpoint: str | None = None,
        keys: Mapping[str, str] | None = None,
    ) -> PushDevice:
        """Register where pushes go: `webpush` (endpoint, keys), `fcm` and `apns` (token),
        `webhook` (endpoint). Registering the same one again answers the first device."""
        body: dict[str, Any] = {"platform": platform}
        if token is not None:
            body["token"] = token
        if endpoint is not None:
            body["endpoint"] = endpoint
        if keys is not None:
            body["keys"] = dict(keys)
        return _parse(PushDevice, await self._call("POST", "/push/devices", json=body))

    async def remove_push_device(self, device_id: str) -> None:
        await self._call("DELETE", f"/push/devices/{_id(device_id)}")

    # --- requests --------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        auth: bool = True,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        """One request; its JSON answer (None for an empty one), or the error raised."""
        if not auth:
            return _read(await self._send(method, path, params=params, json=json))
        return _read(await self._request(method, path, params=params, json=json))

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        body: BodyFactory | None = None,
    ) -> httpx.Response:
        """An authenticated request, with a fresh-enough access token; after a 401, one
        refresh and one retry. The answer whatever its status."""
        tokens = await self._fresh_tokens()
        response = await self._send(
            method, path, token=tokens.access_token, params=params, json=json, headers=headers,
            body=body,
        )  # fmt: skip
        if response.status_code != 401:
            return response
        tokens = await self._refresh_from(tokens)
        return await self._send(
            method, path, token=tokens.access_token, params=params, json=json, headers=headers,
            body=body,
        )  # fmt: skip

    async def _send(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        body: BodyFactory | None = None,
    ) -> httpx.Response:
        """One HTTP exchange; transport failures become `ApiUnavailable`."""
        sent_headers = dict(headers or {})
        content: bytes | AsyncIterator[bytes] | None = None
        if json is not None:
            content = orjson.dumps(json)
            sent_headers["Content-Type"] = "application/json"
        elif body is not None:
            content = body()
        if token is not None:
            sent_headers["Authorization"] = f"Bearer {token}"
        try:
            return await self._http.request(
                method, path, params=params, content=content, headers=sent_headers
            )
        except httpx.TimeoutException as exc:
            raise ApiUnavailable(
                f"The server at {self.server_url} did not answer {method} {path} within "
                f"{self._timeout:g} s; try again later."
            ) from exc
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
            raise ApiUnavailable(
                f"Cannot reach the server at {self.server_url} ({_describe(exc)}); check the "
                "network and try again."
            ) from exc

    # --- tokens ----------------------------------------------------------------------------

    async def _fresh_tokens(self) -> Tokens:
        """The tokens, refreshed first when the access token expires soon; `LoggedOut` when
        there is no login."""
        tokens = self._tokens
        if tokens is None:
            raise LoggedOut()
        if tokens.access_expires_ts - now_ms() <= self._margin_ms():
            tokens = await self._refresh_from(tokens)
        return tokens

    def _margin_ms(self) -> int:
        if self._lifetime_ms is None:
            return REFRESH_MARGIN_MS
        margin = max(REFRESH_MARGIN_MS, int(self._lifetime_ms * REFRESH_MARGIN_SHARE))
        # A server may issue tokens barely longer than the margin: never refresh sooner than
        # half-way, or every request would refresh.
        return min(margin, self._lifetime_ms // 2)

    async def _refresh_from(self, stale: Tokens) -> Tokens:
        """Replace `stale` by refreshing, unless another caller replaced it while this one
        waited for the lock: then its result is used (a refresh token works once)."""
        async with self._refresh_lock:
            previous = self._exchange
            if previous is not None and not previous.done():
                # Its caller was cancelled; the exchange went on and its answer must be kept.
                await asyncio.wait([previous])
            current = self._tokens
            if current is None:
                raise LoggedOut()
            if current.access_token != stale.access_token:
                return current
            exchange = asyncio.ensure_future(self._exchange_refresh_token(current))
            exchange.add_done_callback(_retrieve)
            self._exchange = exchange
            # Shielded: a cancelled caller must not cut the exchange off once the server may
            # have used up the old refresh token.
            return await asyncio.shield(exchange)

    async def _exchange_refresh_token(self, current: Tokens) -> Tokens:
        if self._shared is None:
            return await self._exchange_alone(current)
        async with self._shared.exclusive():
            latest = await self._shared.latest()
            if latest is not None and latest.refresh_token != current.refresh_token:
                # Another process of this device refreshed first: its refresh token used
                # ours up, so take its tokens instead of presenting a spent one.
                self._tokens = latest
                return latest
            return await self._exchange_alone(current)

    async def _exchange_alone(self, current: Tokens) -> Tokens:
        generation = self._generation
        asked_at = now_ms()
        response = await self._send(
            "POST", "/auth/refresh", json={"refresh_token": current.refresh_token}
        )
        if response.status_code == 401:
            if generation == self._generation:
                await self._forget()
            raise LoggedOut("The server ended this login; log in again.")
        return await self._keep(_read(response), asked_at, generation)

    async def _keep(self, reply: Any, asked_at: int, generation: int) -> Tokens:
        """Tokens from a login or refresh answer, kept (unless the login changed meanwhile)
        and passed to `on_tokens`. Their expiry counts from when the request was sent."""
        answer = _parse(_TokenReply, reply)
        lifetime_ms = answer.expires_in * 1000
        tokens = Tokens(
            access_token=answer.access_token,
            refresh_token=answer.refresh_token,
            access_expires_ts=asked_at + lifetime_ms,
            user=answer.user,
        )
        if generation != self._generation:
            return tokens  # a logout or another login came first: this login is not kept
        self._tokens = tokens
        self._lifetime_ms = lifetime_ms
        if self._on_tokens is not None:
            await self._on_tokens(tokens)
        return tokens

    async def _forget(self) -> None:
        """The login ended: drop its tokens and tell `on_tokens` (once)."""
        self._generation += 1
        if self._tokens is None:
            return
        self._tokens = None
        self._lifetime_ms = None
        if self._on_tokens is not None:
            await self._on_tokens(None)


# --- answers ----------------------------------------------------------------------------------


def _read(response: httpx.Response) -> Any:
    """The JSON of a successful answer (None when empty); `ApiError` for an error status."""
    if not response.is_success:
        raise _api_error(response)
    if not response.content:
        return None
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise _not_chatcore(response, "its answer is not JSON") from None


def _api_error(response: httpx.Response) -> ApiError:
    """The error of an error answer: the contract's `{"error": {"code", "message"}}`, or for
    anything else (a proxy's page) a code from the status and a sentence saying so."""
    status = response.status_code
    code = message = None
    try:
        error = orjson.loads(response.content).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        error = None
    if isinstance(error, dict):
        code = error.get("code") if isinstance(error.get("code"), str) else None
        message = error.get("message") if isinstance(error.get("message"), str) else None
    if code is None:
        code = _CODES.get(status, "internal" if status >= 500 else "bad_request")
    if not message:
        reason = response.reason_phrase or "error"
        message = f"The server answered {status} {reason}; try again later."
    return ApiError(status, code, message, _retry_after(response.headers.get("Retry-After")))


def _retry_after(value: str | None) -> float | None:
    """`Retry-After` in seconds: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _not_chatcore(response: httpx.Response, why: str) -> ApiUnavailable:
    request = response.request
    return ApiUnavailable(
        f"What answered {request.method} {request.url.path} is not a chatcore server ({why}); "
        "check the server address."
    )


def _parse(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiUnavailable(
            f"The server's answer is not a {model.__name__} this client understands "
            f"({exc.error_count()} problems, first: {exc.errors()[0]['msg']})."
        ) from None


def _parse_list(model: type[M], data: Any) -> list[M]:
    if not isinstance(data, list):
        raise ApiUnavailable(f"The server's answer is not a list of {model.__name__}.")
    return [_parse(model, item) for item in data]


def _field(reply: Any, name: str) -> Any:
    if not isinstance(reply, dict) or name not in reply:
        raise ApiUnavailable(f"The server's answer lacks `{name}`.")
    return reply[name]


def _object(reply: Any) -> dict[str, Any]:
    if not isinstance(reply, dict):
        raise ApiUnavailable("The server's answer is not a JSON object.")
    return reply


def _id(value: str) -> str:
    """An identifier as one path segment (ids are opaque: never trusted to be URL-safe)."""
    return quote(value, safe="")


def _describe(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _retrieve(future: asyncio.Future[Tokens]) -> None:
    """Mark the exception of an exchange whose caller is gone as seen (it was handled: the
    login ended, or the next caller tries again)."""
    if not future.cancelled():
        future.exception()


# --- uploads ----------------------------------------------------------------------------------


def _multipart_frame(boundary: str, filename: str) -> tuple[bytes, bytes]:
    """What goes before and after the file in a multipart/form-data body of one part `file`."""
    # Escaped as browsers do (WHATWG HTML, multipart/form-data encoding).
    quoted = filename.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
    content_type = mimetypes.guess_type(filename)[0] if filename else None
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{quoted}"\r\n'
        f"Content-Type: {content_type or 'application/octet-stream'}\r\n\r\n"
    )
    return head.encode(), f"\r\n--{boundary}--\r\n".encode()


async def _chunks_of_bytes(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), UPLOAD_CHUNK_BYTES):
        yield data[start : start + UPLOAD_CHUNK_BYTES]


async def _chunks_of_file(path: Path, size: int) -> AsyncIterator[bytes]:
    """`size` bytes of the file, each read in a worker thread (never on the event loop)."""
    remaining = size
    async with await anyio.open_file(path, "rb") as file:
        while remaining > 0:
            chunk = await file.read(min(UPLOAD_CHUNK_BYTES, remaining))
            if not chunk:
                return  # the file shrank: the body falls short and the request fails
            remaining -= len(chunk)
            yield chunk
