"""The webhook push adapter: a signed JSON POST to the URL the device registered."""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Mapping
from typing import Any

from chatcore.models import Device, PushResult
from chatcore.server.push.endpoint import EndpointClient, encode_push
from chatcore_push_webhook.settings import WebhookSettings

__all__ = ["WebhookAdapter", "signature"]

log = logging.getLogger(__name__)


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """The `X-Chatcore-Signature` value: `sha256=` and the hex HMAC-SHA256 of
    `<timestamp>.<body>` keyed by the secret."""
    # A few KB hashed once: microseconds, no reason to leave the event loop for it.
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


class WebhookAdapter:
    """`PushAdapter` for platform "webhook" (see `chatcore.interfaces.PushAdapter`).

    Each push is one POST of the push as JSON to `device.endpoint`, with the headers
    `X-Chatcore-Timestamp` (unix seconds) and `X-Chatcore-Signature`
    (`sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`). The endpoint is checked with
    `chatcore.server.push.ssrf` and sent by `chatcore.server.push.endpoint.EndpointClient` (the
    checked address pinned, no redirects, no proxy, one timeout for the whole exchange;
    connections kept per destination, HTTP/2 over https where the receiver offers it).
    """

    platform = "webhook"

    def __init__(self, settings: WebhookSettings) -> None:
        if settings.secret is None:
            raise ValueError("the webhook adapter needs [push_webhook] secret")
        self.settings = settings
        self.max_payload_bytes = settings.max_payload_bytes
        self._secret = settings.secret.get_secret_value().encode()
        self._client = EndpointClient.from_settings(settings)

    async def start(self) -> None:
        await self._client.start()

    async def close(self) -> None:
        await self._client.close()

    async def send(self, device: Device, push: Mapping[str, Any]) -> PushResult:
        """POST `push` to the device's endpoint; the outcome, never an exception."""
        if device.endpoint is None:
            return PushResult(outcome="failed", detail="the device has no endpoint")
        body = encode_push(push, self.max_payload_bytes)
        if isinstance(body, PushResult):
            return body
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Chatcore-Timestamp": timestamp,
            "X-Chatcore-Signature": signature(self._secret, timestamp, body),
        }
        return await self._client.post(device.endpoint, body, headers)
