"""`ApnsAdapter`: one alert push to one iOS device through APNs' HTTP/2 provider API.

One `httpx.AsyncClient` per adapter, made in `start` and closed in `close`: APNs wants a
connection kept open and reused for many pushes (each push is one HTTP/2 stream on it) rather
than one connection per push. The endpoint comes from our own config, not from a client, so
no SSRF check applies; redirects are still not followed and no proxy is taken from the
environment. Reading the key and CA files happens once, at start, in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
import time
from collections.abc import Mapping
from typing import Any

import anyio
import httpx
import orjson
from cryptography.hazmat.primitives.asymmetric import ec

from chatcore.models import Device, PushResult
from chatcore.server.app import StartupError
from chatcore.server.push.endpoint import encode_push, outcome_of, start_of_body
from chatcore_apns.payload import body_of
from chatcore_apns.settings import ApnsSettings
from chatcore_apns.token import ProviderToken, load_key

__all__ = ["DEVICE_TOKEN", "ApnsAdapter"]

log = logging.getLogger(__name__)

#: An APNs device token as apps register it: hex digits of 8 to 100 bytes (today 32; Apple
#: says not to rely on a length). Anything else is refused before it reaches the URL path.
DEVICE_TOKEN = re.compile(r"(?:[0-9A-Fa-f]{2}){8,100}")
#: 400 reasons that condemn the token for this app: malformed, of another environment, or
#: of another app (topic). The device is removed (`gone`), as for 410.
GONE_REASONS = frozenset({"BadDeviceToken", "DeviceTokenNotForTopic"})
#: The 403 reason after which a new provider token is made and the push sent once more.
EXPIRED_TOKEN = "ExpiredProviderToken"
#: Bytes of an error body read: APNs sends a small JSON {"reason": ..., "timestamp": ...}.
DETAIL_BYTES = 512


class ApnsAdapter:
    """The `PushAdapter` of platform "apns" (see `chatcore.interfaces.PushAdapter`).

    Each push is one POST to `{url}/3/device/<token>` with the headers APNs wants for an
    alert (`apns-push-type: alert`, priority 10, topic, expiration) and the body of
    `chatcore_apns.payload.body_of`: the alert iOS shows plus the push for the app.
    `max_payload_bytes` bounds the push JSON (`[apns] max_payload_bytes`) so that the whole
    body fits APNs' 4096 bytes.
    """

    platform = "apns"

    def __init__(self, settings: ApnsSettings) -> None:
        if not settings.configured:
            raise ValueError("[apns] needs key (or key_file), key_id, team_id and topic")
        self.settings = settings
        self.max_payload_bytes = settings.max_payload_bytes
        self.url = settings.url
        self._token: ProviderToken | None = None
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        key, verify = await anyio.to_thread.run_sync(self._read_files)
        assert self.settings.key_id is not None and self.settings.team_id is not None
        self._token = ProviderToken(key, self.settings.key_id, self.settings.team_id)
        self._client = httpx.AsyncClient(
            # APNs speaks HTTP/2 only: never fall back to HTTP/1.1, whatever ALPN says.
            http1=False,
            http2=True,
            verify=verify,
            timeout=httpx.Timeout(self.settings.timeout_seconds),
            follow_redirects=False,
            trust_env=False,
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _read_files(self) -> tuple[ec.EllipticCurvePrivateKey, ssl.SSLContext]:
        """The signing key and the TLS context: blocking file reads, run in a worker thread."""
        settings = self.settings
        if settings.key is not None:
            key = load_key(settings.key.get_secret_value())  # checked with the config
        else:
            assert settings.key_file is not None
            try:
                with open(settings.key_file, "rb") as f:
                    key = load_key(f.read())
            except OSError as exc:
                raise StartupError(
                    f"apns.key_file {settings.key_file}: cannot be read: {exc.strerror}"
                ) from None
            except ValueError as exc:
                raise StartupError(f"apns.key_file {settings.key_file}: {exc}") from None
        try:
            # With ca_file, only those authorities are trusted (a private proxy's own CA).
            context = ssl.create_default_context(cafile=settings.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise StartupError(f"apns.ca_file {settings.ca_file}: cannot be used: {exc}") from None
        return key, context

    async def send(self, device: Device, push: Mapping[str, Any]) -> PushResult:
        """POST `push` as an alert to the device's token; APNs' answer as a PushResult (network
        errors and timeouts are `retry`). One more POST, with a new provider token, when APNs
        says the token expired."""
        client, token = self._client, self._token
        if client is None or token is None:
            raise RuntimeError("ApnsAdapter.send before start()")
        if device.platform != "apns" or device.token is None:
            return PushResult(outcome="failed", detail="not an APNs device with a token")
        if not DEVICE_TOKEN.fullmatch(device.token):
            return PushResult(outcome="failed", detail="the device token is not APNs' hex")
        oversized = encode_push(push, self.max_payload_bytes)
        if isinstance(oversized, PushResult):
            return oversized
        # Within APNs' 4096 bytes: the alert's part of the body is bounded (see payload).
        body = body_of(push)
        url = f"{self.url}/3/device/{device.token}"
        bearer = token.current()
        result, reason = await self._post(client, url, body, bearer)
        if reason == EXPIRED_TOKEN:
            result, reason = await self._post(client, url, body, token.renew(bearer))
            if reason == EXPIRED_TOKEN:  # a fresh token refused as old: our clock is off
                log.warning("APNs refused a new provider token as expired; is the clock right?")
                return PushResult(outcome="failed", detail=f"{result.detail} (a new token too)")
        return result

    async def _post(
        self, client: httpx.AsyncClient, url: str, body: bytes, bearer: str
    ) -> tuple[PushResult, str]:
        """One request; its PushResult and APNs' reason (empty when it gave none)."""
        settings = self.settings
        now = time.time()
        # 0 is APNs' "deliver now or never", not the epoch.
        expiration = int(now) + settings.expiration_seconds if settings.expiration_seconds else 0
        headers = {
            "authorization": f"bearer {bearer}",
            "apns-topic": settings.topic or "",
            "apns-push-type": "alert",
            "apns-priority": "10",
            "apns-expiration": str(expiration),
            "content-type": "application/json",
        }
        try:
            # httpx's timeout bounds each read and write; this bounds the whole exchange.
            async with asyncio.timeout(settings.timeout_seconds):
                async with client.stream("POST", url, content=body, headers=headers) as response:
                    text = await start_of_body(response, DETAIL_BYTES)
        except (TimeoutError, httpx.TimeoutException):
            return PushResult(outcome="retry", detail="APNs did not answer in time"), ""
        except httpx.HTTPError as exc:
            return PushResult(outcome="retry", detail=f"{type(exc).__name__}: {exc}".strip()), ""
        reason = _reason(text)
        retry_after = response.headers.get("retry-after")
        return _outcome(response.status_code, reason, text, retry_after), reason


def _outcome(status: int, reason: str, text: str, retry_after: str | None) -> PushResult:
    """APNs' answer as a PushResult: `outcome_of`, refined by what APNs' reasons mean. The
    detail is the reason, else the start of the body."""
    detail = reason or text
    if status == 400 and reason in GONE_REASONS:
        return PushResult(outcome="gone", detail=f"HTTP 400: {reason}")
    if status == 404:
        # BadPath: our URL is wrong (a bad api_url), not the device: never remove it for that.
        return PushResult(outcome="failed", detail=f"HTTP 404: {detail}" if detail else "HTTP 404")
    return outcome_of(status, retry_after, time.time(), detail)


def _reason(text: str) -> str:
    """The `reason` of an APNs error body, "" when there is none."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        return ""
    reason = data.get("reason") if isinstance(data, dict) else None
    return reason if isinstance(reason, str) else ""
