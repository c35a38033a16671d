"""`WebPushAdapter`: one encrypted push to one browser subscription.

Why not `pywebpush.webpush()`: it sends with `requests` (blocking) or a throwaway aiohttp
session. We use pywebpush only for RFC 8291 encryption (`WebPusher.encode`) and send with one
`EndpointClient` per adapter (started in `start`, closed in `close`): connections (HTTP/2 where
the push service offers it) are reused across pushes and the event loop never waits on a socket.
Encrypting stays on the loop: one ephemeral P-256 key, one ECDH and AES-GCM over at most 4 KB,
well under a millisecond, cheaper than a hop to a worker thread would be worth. A push is
encrypted once: the body of a push that is to be tried again is kept (`RetryBodies`) and sent
as it is by the next try.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from http_ece import ECEException
from pywebpush import WebPusher, WebPushException

from chatcore.models import Device, PushResult
from chatcore.server.push.endpoint import EndpointClient, EndpointURL, encode_push
from chatcore_webpush.settings import WebPushSettings
from chatcore_webpush.vapid import VapidSigner, b64url_decode, load_private_key

__all__ = ["WebPushAdapter"]

log = logging.getLogger(__name__)

#: Bytes of a refusal's body kept in `PushResult.detail`.
DETAIL_BYTES = 300


class WebPushAdapter:
    """The `PushAdapter` of platform "webpush" (see `chatcore.interfaces.PushAdapter`).

    `max_payload_bytes` is the limit on the push JSON before encryption (`[webpush]
    max_payload_bytes`, at most 3993): the encrypted body then fits the 4096 bytes every push
    service accepts.
    """

    platform = "webpush"

    def __init__(self, settings: WebPushSettings) -> None:
        if settings.vapid_private_key is None or settings.vapid_subject is None:
            raise ValueError("[webpush] needs vapid_private_key and vapid_subject")
        self.settings = settings
        self.max_payload_bytes = settings.max_payload_bytes
        key = load_private_key(settings.vapid_private_key.get_secret_value())
        self.signer = VapidSigner(key, settings.vapid_subject)
        self._client = EndpointClient.from_settings(settings)
        self._retry_bodies = RetryBodies()

    async def start(self) -> None:
        await self._client.start()

    async def close(self) -> None:
        await self._client.close()

    async def send(self, device: Device, push: Mapping[str, Any]) -> PushResult:
        """Encrypt `push` for the subscription and POST it; the push service's answer as a
        PushResult (network errors and timeouts are `retry`)."""
        if device.platform != "webpush" or device.endpoint is None or device.keys is None:
            return PushResult(outcome="failed", detail="not a Web Push device with keys")
        plaintext = encode_push(push, self.max_payload_bytes)
        if isinstance(plaintext, PushResult):
            return plaintext
        try:
            url = EndpointURL.parse(device.endpoint)
        except ValueError as exc:
            return PushResult(outcome="failed", detail=f"invalid endpoint URL: {exc}")
        key = (device.endpoint, device.keys.p256dh, device.keys.auth, plaintext)
        body = self._retry_bodies.take(key)
        if body is None:
            try:
                body = encrypt(plaintext, device.keys.p256dh, device.keys.auth)
            except ValueError as exc:
                return PushResult(outcome="failed", detail=f"unusable subscription keys: {exc}")
        headers = {
            # The origin is the JWT's audience.
            "Authorization": self.signer.authorization(url.origin),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": str(self.settings.ttl_seconds),
        }
        # Push services are https only (RFC 8030 §8); plain http is for a local test service.
        result = await self._client.post(device.endpoint, body, headers, https_only=True)
        if result.outcome == "retry":
            self._retry_bodies.keep(key, body)
        return result


class RetryBodies:
    """Encrypted bodies of pushes that are to be tried again, by subscription and push, so that a
    push is encrypted once however often it is tried. The body of a retry is as good as a new
    one: RFC 8291 gives each body its own key and salt, and the push service sees each try as
    the same message. Bounded (`LIMIT`, the oldest dropped first: such a push is encrypted
    again), and a body leaves when its next try takes it."""

    LIMIT = 1024

    def __init__(self) -> None:
        self._bodies: OrderedDict[tuple[str, str, str, bytes], bytes] = OrderedDict()

    def keep(self, key: tuple[str, str, str, bytes], body: bytes) -> None:
        self._bodies[key] = body
        self._bodies.move_to_end(key)
        while len(self._bodies) > self.LIMIT:
            self._bodies.popitem(last=False)

    def take(self, key: tuple[str, str, str, bytes]) -> bytes | None:
        return self._bodies.pop(key, None)


def encrypt(plaintext: bytes, p256dh: str, auth: str) -> bytes:
    """The aes128gcm body (RFC 8291) of `plaintext` for a subscription's keys; ValueError when
    the keys are not a P-256 point and a 16-byte secret."""
    point, secret = b64url_decode(p256dh), b64url_decode(auth)
    if len(point) != 65 or point[0] != 4:
        raise ValueError("p256dh is not an uncompressed P-256 point")
    if len(secret) != 16:
        raise ValueError("auth is not 16 bytes")
    subscription = {"endpoint": "", "keys": {"p256dh": p256dh, "auth": auth}}
    try:
        body: bytes = WebPusher(subscription).encode(plaintext, "aes128gcm")["body"]
    except (ECEException, WebPushException) as exc:  # cryptography's own errors are ValueError
        raise ValueError(str(exc)) from None
    return body
