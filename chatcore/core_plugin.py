"""The core's own plugin: what every node serves whatever transports it has."""

from __future__ import annotations

from typing import Any

from chatcore import asyncapi
from chatcore.app import App
from chatcore.hookspecs import hookimpl
from chatcore.routes import Request, Route


async def asyncapi_document(request: Request) -> dict[str, Any]:
    return asyncapi.document(request.app)


@hookimpl
def chatcore_register_routes(app: App) -> list[Route]:
    return [
        Route(
            "/asyncapi.json",
            asyncapi_document,
            auth=False,
            summary="The AsyncAPI document of the WebSocket protocol",
        )
    ]
