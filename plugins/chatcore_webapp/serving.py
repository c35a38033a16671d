"""The routes that serve the app's files, with the page's security headers."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from chatcore.routes import Handler, Request, Response, Route
from chatcore_webapp.assets import Asset, Release

if TYPE_CHECKING:
    from chatcore.server.app import App

__all__ = ["asset_routes", "content_security_policy"]


def content_security_policy(ws_url: str | None) -> str:
    """The page's policy: its own files only, no inline script or style, no framing; network
    access to its own origin (the REST API) and to the WebSocket's origin (another port)."""
    connect = ["'self'"]
    if ws_url:
        parts = urlsplit(ws_url)
        connect.append(f"{parts.scheme}://{parts.netloc}")
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' blob: data:",
            "media-src 'self' blob:",
            "connect-src " + " ".join(connect),
            "worker-src 'self'",
            "manifest-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


#: A versioned file never changes: the browser keeps it and never asks again.
FOREVER = "public, max-age=31536000, immutable"
#: Any other file is asked for on every use (a cheap 304): a new release is seen at once.
REVALIDATE = "no-cache"


def asset_routes(release: Release, mount: str, app: App) -> list[Route]:
    """Each file at `mount`/path and at `mount`/v/<version>/path (the page itself at
    `mount`/ and `mount`/index.html only)."""
    prefix = "/" + mount.strip("/") if mount.strip("/") else ""
    routes = []
    for asset in release.assets:
        routes.append(_route(f"{prefix}/{asset.path}", _serve(asset, app, REVALIDATE)))
        if asset.path == "index.html":
            routes.append(_route(f"{prefix}/", _serve(asset, app, REVALIDATE)))
        else:
            versioned = f"{prefix}/{release.prefix}{asset.path}"
            routes.append(_route(versioned, _serve(asset, app, FOREVER)))
    return routes


def _route(path: str, handler: Handler) -> Route:
    # "//" marks a path from the server root, outside /api/v1 (chatcore.routes).
    return Route("/" + path, handler, auth=False, documented=False)


def _serve(asset: Asset, app: App, cache_control: str) -> Handler:
    policy: list[str] = []  # built on the first request: the WebSocket's URL is known by then

    async def serve(request: Request) -> Response:
        if not policy:
            policy.append(content_security_policy(app.ws_url))
        headers = {
            "Content-Type": asset.content_type,
            "ETag": asset.etag,
            "Cache-Control": cache_control,
            "Vary": "Accept-Encoding",
            "Content-Security-Policy": policy[0],
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cross-Origin-Opener-Policy": "same-origin",
        }
        if _listed(request.headers.get("If-None-Match", "")) & {asset.etag, "*"}:
            return Response(None, status=304, headers=headers)
        if asset.gzipped is not None and "gzip" in _listed(
            request.headers.get("Accept-Encoding", "")
        ):
            return Response(asset.gzipped, headers={**headers, "Content-Encoding": "gzip"})
        return Response(asset.body, headers=headers)

    return serve


def _listed(header: str) -> set[str]:
    """The items of a comma-separated header, without parameters (`gzip;q=1` is gzip)."""
    return {item.split(";", 1)[0].strip() for item in header.split(",")}
