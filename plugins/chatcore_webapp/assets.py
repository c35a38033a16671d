"""The app's files, read once at start: each with its type, ETag and a gzip copy, and the
release they make together (`Release`: the page points at files under `v/<version>/`)."""

from __future__ import annotations

import gzip
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["STATIC", "Asset", "Release", "load_assets", "load_release"]

STATIC = Path(__file__).with_name("static")

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
#: Below this size gzip saves less than its framing and the client's work.
_GZIP_FROM = 512


@dataclass(frozen=True)
class Asset:
    """One file of the app, as it is served."""

    path: str  # relative to static/, with "/" separators
    body: bytes
    gzipped: bytes | None  # None when compressing does not pay
    content_type: str
    etag: str  # quoted, as in the header


def load_assets(folder: Path = STATIC) -> list[Asset]:
    """Every servable file under `folder` (files of an unknown type are left out)."""
    return [
        _asset(file.relative_to(folder).as_posix(), file.read_bytes(), content_type)
        for file in sorted(folder.rglob("*"))
        if file.is_file() and (content_type := _TYPES.get(file.suffix)) is not None
    ]


def _asset(path: str, body: bytes, content_type: str) -> Asset:
    packed = gzip.compress(body, compresslevel=9, mtime=0)
    return Asset(
        path=path,
        body=body,
        gzipped=packed if len(body) >= _GZIP_FROM and len(packed) < len(body) else None,
        content_type=content_type,
        etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"',
    )


#: The page's references to its style sheet and modules (`href="css/..."`, `src="js/..."`).
_PAGE_REFERENCE = re.compile(r'((?:href|src)=")((?:css|js)/)')


@dataclass(frozen=True)
class Release:
    """The app's files as one release. Each file is served at its own path (revalidated on
    every use) and under `v/<version>/` (cached for good: a new release has a new version).
    The page points at the versioned copies, whose relative imports stay in that version, so
    a reload takes every module from the browser's cache without asking the server, and a new
    release is never mixed with the last one's modules."""

    version: str
    assets: list[Asset]  # index.html points at v/<version>/

    @property
    def prefix(self) -> str:
        return f"v/{self.version}/"


def load_release(folder: Path = STATIC) -> Release:
    """The files of `folder` as a release; its version is a digest of all of them."""
    assets = load_assets(folder)
    digest = hashlib.sha256()
    for asset in assets:
        digest.update(f"{asset.path}\0{asset.etag}\n".encode())
    version = digest.hexdigest()[:16]
    page = [
        _asset(
            a.path,
            _PAGE_REFERENCE.sub(rf"\1v/{version}/\2", a.body.decode()).encode(),
            a.content_type,
        )
        if a.path == "index.html"
        else a
        for a in assets
    ]
    return Release(version, page)
