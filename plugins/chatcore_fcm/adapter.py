"""`FcmAdapter`: one push to one app install through the FCM HTTP v1 API.

FCM needs an OAuth access token of a service account: `AccessTokens` signs a JWT with the
account's key, trades it at the token endpoint, and keeps the token until five minutes before
it expires (an hour, normally), so one token serves every send in between. Both endpoints come
from the configuration, not from clients, so unlike webhooks and Web Push they need no SSRF
check, and one `httpx.AsyncClient` keeps its connections to them (HTTP/2 where offered: one
connection carries concurrent sends).
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import logging
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from chatcore.models import Device, PushResult
from chatcore.server.push.endpoint import encode_push, outcome_of, retry_after_seconds
from chatcore_fcm.credentials import ServiceAccount
from chatcore_fcm.settings import FcmSettings

__all__ = ["AccessTokens", "FcmAdapter", "TokenError", "fcm_message", "read_answer"]

log = logging.getLogger(__name__)

#: The OAuth grant of a service account's signed JWT (RFC 7523).
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: Bytes of an answer read at most: FCM's and Google's error bodies are far smaller.
ANSWER_BYTES = 64 * 1024
#: Bytes of an answer kept in a PushResult's detail.
DETAIL_CHARS = 300


class TokenError(Exception):
    """No access token: `result` is what every send waiting for it answers (`retry` or
    `failed`)."""

    def __init__(self, result: PushResult) -> None:
        super().__init__(result.detail)
        self.result = result


class _NoAnswer(Exception):
    """The exchange ended without an HTTP answer (timeout, refused, reset): a `retry`."""


@dataclass(frozen=True)
class _Answer:
    status: int
    retry_after: str | None
    body: bytes


class _Http:
    """The adapter's one httpx.AsyncClient and the timeout of every exchange on it."""

    def __init__(self, client: httpx.AsyncClient, timeout_seconds: float) -> None:
        self.client = client
        self.timeout_seconds = timeout_seconds

    async def exchange(self, request: httpx.Request) -> _Answer:
        """Send `request` and read at most ANSWER_BYTES of the answer, all within the
        timeout; _NoAnswer when there is no answer."""
        try:
            # httpx's timeout bounds each read and write; this bounds the whole exchange.
            async with asyncio.timeout(self.timeout_seconds):
                response = await self.client.send(request, stream=True)
                try:
                    body = b""
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) >= ANSWER_BYTES:
                            break
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TimeoutException):
            raise _NoAnswer("no answer in time") from None
        except httpx.HTTPError as exc:
            raise _NoAnswer(f"{type(exc).__name__}: {exc}".strip()) from None
        retry_after = response.headers.get("retry-after")
        return _Answer(response.status_code, retry_after, body[:ANSWER_BYTES])


class AccessTokens:
    """The service account's OAuth access tokens for FCM, fetched one at a time and cached.

    A token is fetched with a JWT signed by the account's key (`ServiceAccount.assertion`),
    POSTed as `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<jwt>` to the
    token URL. `get` answers the cached token until `RENEW_BEFORE_SECONDS` before it expires,
    then fetches a new one; should that fail, the old one serves until `USABLE_BEFORE_SECONDS`
    before it expires, each send trying again. Concurrent callers wait for the one fetch in
    flight (an asyncio.Lock) and share its outcome, success or failure, so a burst of sends
    makes one token request, and a token endpoint that is down costs one timeout, not one per
    waiting send. A failure raises `TokenError`: `retry` for a network error, a timeout, 429
    or 5xx; `failed` for any other refusal (bad credentials: logged at error, once until a
    token is had again).
    """

    RENEW_BEFORE_SECONDS = 300.0
    #: A token is not sent any more this close to its expiry, renewed or not (a send may take
    #: a few seconds, and our clock may be off Google's a little).
    USABLE_BEFORE_SECONDS = 60.0
    #: Assumed when the answer gives no usable `expires_in` (Google's tokens last an hour).
    DEFAULT_LIFETIME_SECONDS = 3600.0

    def __init__(self, account: ServiceAccount, token_url: str, http: _Http) -> None:
        self.account = account
        self.token_url = token_url
        self._http = http
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._renew_at = 0.0
        self._usable_until = 0.0
        self._fetches = 0  # fetches finished, success or not
        self._failure: PushResult | None = None  # of the last fetch
        self._logged: str | None = None

    async def get(self) -> str:
        """A valid access token; TokenError when none can be had."""
        if self._token is not None and time.monotonic() < self._renew_at:
            return self._token
        seen = self._fetches
        async with self._lock:
            if self._fetches != seen:  # a fetch finished while we waited: its outcome is ours
                if self._failure is not None:
                    raise TokenError(self._failure)
                if self._token is not None:
                    return self._token
            elif self._token is not None and time.monotonic() < self._renew_at:
                return self._token
            return await self._fetch()

    def invalidate(self, token: str) -> None:
        """Forget `token` (FCM refused it) unless a newer one replaced it already, so that
        sends refused together make one new fetch, not one each."""
        if self._token == token:
            self._token = None

    async def _fetch(self) -> str:
        try:
            token, lifetime = await self._request()
        except TokenError as exc:
            if self._token is not None and time.monotonic() < self._usable_until:
                # Renewing ahead of time failed; the token in hand still works a while, and
                # the next send tries again.
                self._failure = None
                return self._token
            self._failure = exc.result
            self._token = None
            raise
        finally:
            self._fetches += 1
        now = time.monotonic()
        self._failure = None
        self._logged = None
        self._token = token
        self._renew_at = now + lifetime - self.RENEW_BEFORE_SECONDS
        self._usable_until = now + lifetime - self.USABLE_BEFORE_SECONDS
        return token

    async def _request(self) -> tuple[str, float]:
        assertion = self.account.assertion(self.token_url)
        request = self._http.client.build_request(
            "POST",
            self.token_url,
            data={"grant_type": JWT_BEARER_GRANT, "assertion": assertion},
            headers={"Accept": "application/json"},
        )
        try:
            answer = await self._http.exchange(request)
        except _NoAnswer as exc:
            raise TokenError(PushResult(outcome="retry", detail=f"token endpoint: {exc}")) from None
        if 200 <= answer.status < 300:
            try:
                data = orjson.loads(answer.body)
                token = data["access_token"]
                if not isinstance(token, str) or not token:
                    raise TypeError
            except (orjson.JSONDecodeError, TypeError, KeyError):
                detail = f"token endpoint: HTTP {answer.status} without an access_token"
                raise TokenError(PushResult(outcome="retry", detail=detail)) from None
            return token, _lifetime(data.get("expires_in"), self.DEFAULT_LIFETIME_SECONDS)
        detail = f"token endpoint: HTTP {answer.status}: {_oauth_error(answer.body)}".rstrip(": ")
        if answer.status == 429 or answer.status >= 500:
            wait = retry_after_seconds(answer.retry_after, time.time())
            raise TokenError(PushResult(outcome="retry", retry_after_seconds=wait, detail=detail))
        self._log_refusal(detail)
        raise TokenError(PushResult(outcome="failed", detail=detail))

    def _log_refusal(self, detail: str) -> None:
        if detail != self._logged:
            self._logged = detail
            log.error(
                "FCM: %s refused the service account %s (%s); check the [fcm] service "
                "account key (revoked or deleted key, wrong project, clock far off)",
                self.token_url,
                self.account.client_email,
                detail,
            )


def _lifetime(value: Any, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return default
    try:
        seconds = float(value)
    except ValueError:
        return default
    return seconds if 0 < seconds < 10 * 86400 else default


def _oauth_error(body: bytes) -> str:
    """`error: error_description` of an OAuth error answer (RFC 6749 §5.2), or its start."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:DETAIL_CHARS].decode("utf-8", "replace").strip()
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        described = data.get("error_description")
        text = data["error"] + (f": {described}" if isinstance(described, str) else "")
        return text[:DETAIL_CHARS]
    return body[:DETAIL_CHARS].decode("utf-8", "replace").strip()


# --- the message ---------------------------------------------------------------------------


def notification_of(push: Mapping[str, Any]) -> dict[str, str] | None:
    """The `notification` block the system shows, for a push with a preview; None for one
    without (id-only: the app fetches the message and shows it itself).

    Title: the room's name in a group, else the sender's name, else "New message". Body: the
    preview, after "<sender>: " in a group (where the title names the room, not the sender).
    """
    preview = push.get("preview")
    if not isinstance(preview, str):
        return None
    sender = _text(push.get("sender_name"))
    room = _text(push.get("room_name"))
    if not push.get("direct") and room:
        return {"title": room, "body": f"{sender}: {preview}" if sender else preview}
    return {"title": sender or "New message", "body": preview}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def data_of(push: Mapping[str, Any]) -> dict[str, str]:
    """Every field of the push as a string, as FCM wants data values: ints in decimal, bools
    "true"/"false", other non-strings as JSON; None fields are left out."""
    return {str(key): _data_value(value) for key, value in push.items() if value is not None}


def _data_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):  # before int: bool is an int
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return orjson.dumps(value).decode()


def fcm_message(token: str, push: Mapping[str, Any], ttl_seconds: int) -> dict[str, Any]:
    """The `message` of a send request (FCM HTTP v1 `projects.messages`) for a device token.

    With a preview: `notification` (what the system shows when the app is not running) and
    `data`. Without one (id-only): `data` alone, and for Apple devices a background push
    (`content-available`; APNs wants priority 5 and push type "background" for those) so the
    app wakes to fetch the message. `android.priority` is "high" either way: a chat message
    is what high priority is for, and a data message needs it to wake the app at once.
    """
    message: dict[str, Any] = {"token": token}
    notification = notification_of(push)
    if notification is not None:
        message["notification"] = notification
    message["data"] = data_of(push)
    # No collapse_key: each message is its own notification; FCM keeps up to 100
    # non-collapsible messages per offline device, and only 4 collapse keys at a time.
    message["android"] = {"priority": "high", "ttl": f"{ttl_seconds}s"}
    if notification is None:
        message["apns"] = {
            "headers": {"apns-push-type": "background", "apns-priority": "5"},
            "payload": {"aps": {"content-available": 1}},
        }
    return message


# --- the answer ----------------------------------------------------------------------------


@dataclass(frozen=True)
class GoogleError:
    """The parts of a Google API error answer (`{"error": {"code", "message", "status",
    "details": [...]}}`) that say what FCM refused."""

    status: str
    message: str
    fcm_code: str | None  # errorCode of the google.firebase.fcm.v1.FcmError detail
    bad_fields: tuple[str, ...]  # fields of the google.rpc.BadRequest detail

    @classmethod
    def parse(cls, body: bytes) -> GoogleError | None:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        error = data.get("error") if isinstance(data, dict) else None
        if not isinstance(error, dict):
            return None
        fcm_code = None
        bad_fields: list[str] = []
        details = error.get("details")
        for detail in details if isinstance(details, list) else []:
            if not isinstance(detail, dict):
                continue
            kind = str(detail.get("@type", ""))
            if kind.endswith("google.firebase.fcm.v1.FcmError"):
                code = detail.get("errorCode")
                fcm_code = code if isinstance(code, str) else fcm_code
            elif kind.endswith("google.rpc.BadRequest"):
                violations = detail.get("fieldViolations")
                for violation in violations if isinstance(violations, list) else []:
                    if isinstance(violation, dict) and isinstance(violation.get("field"), str):
                        bad_fields.append(violation["field"])
        status, message = error.get("status"), error.get("message")
        return cls(
            status=status if isinstance(status, str) else "",
            message=message if isinstance(message, str) else "",
            fcm_code=fcm_code,
            bad_fields=tuple(bad_fields),
        )

    @property
    def about_the_token(self) -> bool:
        """Whether FCM refused the device token itself: unregistered (the app was
        uninstalled, the token expired) or not a valid registration token. FCM's token
        guide says such tokens are never valid again and may be deleted. A 400 about
        anything else (our payload) says nothing about the device, so it is not `gone`."""
        if self.fcm_code == "UNREGISTERED" or "message.token" in self.bad_fields:
            return True
        invalid = "INVALID_ARGUMENT" in (self.fcm_code, self.status)
        return invalid and "registration token" in self.message.lower()

    def describe(self) -> str:
        code = self.fcm_code or self.status
        return f"{code}: {self.message}"[:DETAIL_CHARS].strip(": ")


def read_answer(status: int, retry_after: str | None, body: bytes, now: float) -> PushResult:
    """The outcome of FCM's answer to a send: `chatcore.server.push.endpoint.outcome_of` (2xx sent,
    404
    gone, 429/5xx retry, other statuses failed), except that a 400 refusing the token itself
    (`GoogleError.about_the_token`) is `gone`, and a 404 that is not a Google NOT_FOUND error
    is `failed`. The detail is FCM's error code and message."""
    error = GoogleError.parse(body) if status >= 300 else None
    if error is not None:
        detail = error.describe()
    elif status >= 300:
        detail = body[:DETAIL_CHARS].decode("utf-8", "replace").strip()
    else:
        detail = ""
    result = outcome_of(status, retry_after, now, detail)
    if status == 400 and error is not None and error.about_the_token:
        return PushResult(outcome="gone", detail=result.detail)
    if status == 404 and (error is None or error.status != "NOT_FOUND"):
        # Not FCM saying the token is unknown (its 404 is a NOT_FOUND error, UNREGISTERED):
        # a wrong api_url or a proxy. Taking it as gone would remove every device.
        return PushResult(outcome="failed", detail=result.detail)
    return result


# --- the adapter ---------------------------------------------------------------------------


class FcmAdapter:
    """The `PushAdapter` of platform "fcm" (see `chatcore.interfaces.PushAdapter`).

    Each push is one POST of `{"message": fcm_message(...)}` to
    `<api_url>/v1/projects/<project_id>/messages:send` with `Authorization: Bearer <access
    token>` (`AccessTokens`). FCM answering 401 makes the adapter fetch a new token and send
    once more; a second 401 is `failed`. A 401 for Apple credentials missing from the
    Firebase project (`THIRD_PARTY_AUTH_ERROR`) is `failed` at once: no token of ours helps.

    The service account is had at `start` (`FcmSettings.load_service_account`: the file is
    read then); a missing or unusable one raises ConfigError there.
    """

    platform = "fcm"

    def __init__(self, settings: FcmSettings) -> None:
        if not settings.enabled:
            raise ValueError("the FCM adapter needs [fcm] service_account_file or _json")
        self.settings = settings
        self.max_payload_bytes = settings.max_payload_bytes
        self._http: _Http | None = None
        self._tokens: AccessTokens | None = None
        self._send_url = ""

    async def start(self) -> None:
        account = self.settings.load_service_account()
        token_url = self.settings.token_url or account.token_uri
        project = quote(account.project_id, safe="")
        self._send_url = f"{self.settings.api_url.rstrip('/')}/v1/projects/{project}/messages:send"
        client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.settings.timeout_seconds),
            # Redirects are not followed (a bearer token must not travel anywhere else) and
            # no proxy comes from the environment: where pushes go is the config's choice.
            follow_redirects=False,
            trust_env=False,
            http2=importlib.util.find_spec("h2") is not None,
            verify=_ssl_context(),
        )
        self._http = _Http(client, self.settings.timeout_seconds)
        self._tokens = AccessTokens(account, token_url, self._http)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.client.aclose()
            self._http = None
            self._tokens = None

    async def send(self, device: Device, push: Mapping[str, Any]) -> PushResult:
        """Send `push` to the device's registration token; FCM's answer as a PushResult
        (network errors, timeouts and an unreachable token endpoint are `retry`)."""
        if self._tokens is None:
            raise RuntimeError("FcmAdapter.send before start()")
        if device.token is None:
            return PushResult(outcome="failed", detail="the device has no FCM token")
        oversized = encode_push(push, self.max_payload_bytes)
        if isinstance(oversized, PushResult):
            return oversized
        # Within max_payload_bytes the message fits FCM's limit (chatcore_fcm.settings).
        message = fcm_message(device.token, push, self.settings.ttl_seconds)
        body = orjson.dumps({"message": message})
        try:
            token = await self._tokens.get()
            answer = await self._post(token, body)
            if answer.status == 401 and not _third_party_auth(answer.body):
                # Our token was refused (revoked, expired early): one new token, one more try.
                self._tokens.invalidate(token)
                token = await self._tokens.get()
                answer = await self._post(token, body)
                if answer.status == 401:
                    log.error(
                        "FCM refused a fresh access token of the service account %s",
                        self._tokens.account.client_email,
                    )
        except TokenError as exc:
            return exc.result
        except _NoAnswer as exc:
            return PushResult(outcome="retry", detail=f"FCM: {exc}")
        return read_answer(answer.status, answer.retry_after, answer.body, time.time())

    async def _post(self, token: str, body: bytes) -> _Answer:
        assert self._http is not None
        request = self._http.client.build_request(
            "POST",
            self._send_url,
            content=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        return await self._http.exchange(request)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One TLS context (the CA bundle loaded, some 0.1 s) for every adapter in the process.
    Certificates are verified; like proxies, no CA bundle comes from the environment."""
    return httpx.create_ssl_context(trust_env=False)


def _third_party_auth(body: bytes) -> bool:
    error = GoogleError.parse(body)
    return error is not None and error.fcm_code == "THIRD_PARTY_AUTH_ERROR"
