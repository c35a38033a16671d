"""The API docs page for people: `/api/v1/docs`, Swagger UI on `/api/v1/openapi.json`.

Swagger UI's files are vendored in `static/docs/` (see its README.md) and served from here, so
the page works offline and loads nothing from another origin (quart-schema's own pages, which
load from a CDN, are switched off in `chatcore_rest.application`). The page and its files are
not part of the OpenAPI document and need no auth, like the document itself.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

from quart import Response, request
from quart_schema import hide

from chatcore.errors import not_found
from chatcore_rest.endpoints.base import API_PREFIX, Area

__all__ = ["AREA", "DOCS_PATH", "STATIC_DOCS"]

DOCS_PATH = API_PREFIX + "/docs"
STATIC_DOCS = Path(__file__).parent.parent / "static" / "docs"

#: The files the page loads (by its relative URLs `docs/<name>`), and the licenses that travel
#: with them.
_FILES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "docs.js": "text/javascript; charset=utf-8",
    "LICENSE": "text/plain; charset=utf-8",
    "NOTICE": "text/plain; charset=utf-8",
    "swagger-ui-bundle.js.LICENSE.txt": "text/plain; charset=utf-8",
}

#: Swagger UI sets inline styles and draws icons from data: URLs; everything else is this
#: origin's. "Try it out" calls the API on this origin too.
_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)


@dataclass(frozen=True)
class _File:
    body: bytes
    gzipped: bytes
    content_type: str
    etag: str  # unquoted


@functools.cache
def _load(name: str, content_type: str) -> _File:
    """A file of the page, read and compressed once per process."""
    body = (STATIC_DOCS / name).read_bytes()
    etag = hashlib.sha256(body).hexdigest()[:32]
    return _File(body, gzip.compress(body, compresslevel=9, mtime=0), content_type, etag)


def _serve(file: _File) -> Response:
    # Revalidated on every use (a cheap 304): an upgrade of the files is seen at once.
    headers = {
        "Content-Type": file.content_type,
        "ETag": f'"{file.etag}"',
        "Cache-Control": "no-cache",
        "Vary": "Accept-Encoding",
        "Content-Security-Policy": _POLICY,
        "Referrer-Policy": "no-referrer",
    }
    if file.etag in request.if_none_match:
        return Response(b"", status=304, headers=headers)
    if "gzip" in request.accept_encodings and len(file.gzipped) < len(file.body):
        return Response(file.gzipped, headers={**headers, "Content-Encoding": "gzip"})
    return Response(file.body, headers=headers)


@hide
async def get_docs_page() -> Response:
    """The API docs page (HTML)."""
    return _serve(_load("docs.html", "text/html; charset=utf-8"))


@hide
async def get_docs_file(name: str) -> Response:
    """One of the page's files (`not_found` for any other name)."""
    content_type = _FILES.get(name)
    if content_type is None:
        raise not_found("This file")
    return _serve(_load(name, content_type))


AREA = Area(
    routes=[
        ("GET", DOCS_PATH, get_docs_page),
        ("GET", DOCS_PATH + "/<name>", get_docs_file),
    ]
)
