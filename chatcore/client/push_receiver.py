"""A webhook push receiver: the push handler as a small HTTP server of its own.

The server's webhook adapter POSTs each push, signed, to the URL a device registered
(`platform = "webhook"`). This receiver checks the signature with `[client]
push_webhook_secret` (refusing unsigned or stale requests with 401), hands the push to
`chatcore.client.push.handle_push` (which stores its message in the device store and publishes
`PushReceived`) and answers 204, or 400 for what is not a chatcore push. It runs beside the app
on the same device store (`chatcore client push-receiver`), or inside any program as
`serve_webhooks(client, host, port)`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

import orjson
from quart import Quart, Response, request

from chatcore.client.events import PushReceived
from chatcore.client.push import PushError, handle_push, verify_webhook

if TYPE_CHECKING:
    from chatcore.client.app import Client

log = logging.getLogger(__name__)

#: The path the server's webhook pushes are POSTed to.
PUSH_PATH = "/push"
#: A push is at most 4096 bytes; a larger request is not one.
MAX_BODY_BYTES = 64 * 1024


def webhook_app(
    client: Client, on_event: Callable[[PushReceived], Awaitable[Any]] | None = None
) -> Quart:
    """The receiver as a Quart app (mount it in a bigger one, or serve it alone)."""
    app = Quart(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    secret = client.settings.client.push_webhook_secret

    @app.post(PUSH_PATH)
    async def receive() -> Response:
        body = cast(bytes, await request.get_data(as_text=False))
        if secret is not None and not verify_webhook(
            secret.get_secret_value().encode(), dict(request.headers), body
        ):
            return _error(401, "unauthorized", "The signature is missing, wrong or too old.")
        try:
            notice = await handle_push(client, body)
        except PushError as exc:
            return _error(400, "bad_request", str(exc))
        if on_event is not None:
            await on_event(PushReceived(notice))
        return Response(status=204)

    return app


def _error(status: int, code: str, message: str) -> Response:
    body = orjson.dumps({"error": {"code": code, "message": message}})
    return Response(body, status=status, content_type="application/json")


async def serve_webhooks(
    client: Client,
    host: str,
    port: int,
    *,
    on_event: Callable[[PushReceived], Awaitable[Any]] | None = None,
) -> None:
    """Serve the receiver on `host:port` until cancelled (Ctrl-C)."""
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    if client.settings.client.push_webhook_secret is None:
        log.warning("[client] push_webhook_secret is not set: webhook signatures are not checked")
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    await serve(webhook_app(client, on_event), config, mode="asgi")
