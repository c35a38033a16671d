"""The media and sticker endpoints of docs/protocol.md ("Media", "Stickers").

Uploads are parsed here, as they arrive (werkzeug's sans-I/O multipart decoder over the body
stream), and handed to `chatcore.server.media.upload` as a stream of the `file` part's bytes:
nothing
is held in memory, and the body is cut off at its limit. Downloads stream from the media store
with `ETag`, `If-None-Match`, `Range`, `nosniff`, and `attachment` for anything not an image.
`chatcore.server.media` decides who may read what; these views read the request and shape the reply.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING
from urllib.parse import quote

from quart import Response, request
from quart_schema import (
    document_request,
    document_response,
    security_scheme,
    validate_querystring,
)
from werkzeug.http import parse_options_header, quote_header_value
from werkzeug.sansio.multipart import Data, Epilogue, File, MultipartDecoder, NeedData

from chatcore.errors import ErrorCode, bad_request, not_found, unauthorized
from chatcore.models import Identity
from chatcore.models import Media as MediaModel
from chatcore.server import media, stickers
from chatcore_rest.auth import BEARER, authenticate, bearer_token, requires_auth
from chatcore_rest.endpoints.base import API_PREFIX, Area
from chatcore_rest.errors import error_response
from chatcore_rest.jsonio import json_response
from chatcore_rest.openapi import Reply, api_doc
from chatcore_rest.request import BodyLimit
from chatcore_rest.schemas import (
    MediaBody,
    MediaQuery,
    StickerPackBody,
    StickerPacks,
    ThumbnailQuery,
    UploadForm,
)
from chatcore_rest.state import rest_state

if TYPE_CHECKING:
    from chatcore.server.app import App
    from chatcore.settings import LimitsSettings

__all__ = ["AREA", "MEDIA", "body_limits"]

MEDIA = API_PREFIX + "/media"
STICKER_PACKS = API_PREFIX + "/sticker-packs"
#: Room in an upload's body for the multipart framing: boundaries, part headers, small fields.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
#: An upload has the `file` part and maybe a few small fields; more parts are not an upload.
MAX_PARTS = 8
UPLOAD_HELP = "Send the file as multipart/form-data, in a part named `file`."
#: Downloads: media never changes under its id, but who may read it can, so caches keep it
#: private and not for long.
CACHE_CONTROL = "private, max-age=3600"
#: What a browser may do with a served file: nothing active (no scripts, no plugins, no forms).
SANDBOX = "default-src 'none'; img-src 'self' data:; media-src 'self'; sandbox"
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")

_BINARY = {"type": "string", "format": "binary"}
_BYTES_REPLIES = {
    200: Reply("The bytes, with `ETag`; `Content-Disposition: attachment` unless an image.",
               "application/octet-stream", _BINARY),
    206: Reply("The requested range (`Content-Range`).", "application/octet-stream", _BINARY),
    304: Reply("Not modified: `If-None-Match` holds the current ETag."),
    416: Reply("The range cannot be served (code `bad_request`; `Content-Range: bytes */SIZE`).",
               "application/json", {"$ref": "#/components/schemas/Error"}),
}  # fmt: skip
#: Bearer or the signature of a Media's `url`.
_BEARER_OR_SIGNATURE: list[dict[str, list[str]]] = [{BEARER: []}, {}]


# --- uploads ----------------------------------------------------------------------------------


class _FilePart:
    """The `file` part of a multipart body, read as it arrives."""

    def __init__(self, boundary: bytes, limit: int) -> None:
        self._decoder = MultipartDecoder(boundary, max_form_memory_size=limit, max_parts=MAX_PARTS)
        self._body = request.body.__aiter__()
        self._limit = limit
        self._received = 0
        self._ended = False
        self._events_iter: AsyncIterator[File | Data | Epilogue] = self._events()
        self.filename: str | None = None

    async def _events(self) -> AsyncIterator[File | Data | Epilogue]:
        while True:
            event = self._decoder.next_event()
            if isinstance(event, NeedData):
                if self._ended:
                    raise bad_request("The multipart body ends too early.")
                try:
                    chunk = await self._body.__anext__()
                except StopAsyncIteration:
                    self._ended = True
                    self._decoder.receive_data(None)
                    continue
                self._received += len(chunk)
                if self._received > self._limit:
                    raise media.too_large(self._limit - MULTIPART_OVERHEAD_BYTES)
                self._decoder.receive_data(chunk)
                continue
            if isinstance(event, File | Data | Epilogue):
                yield event
                if isinstance(event, Epilogue):
                    return

    async def open(self) -> None:
        """Read up to the start of the `file` part; `bad_request` when there is none."""
        async for event in self._events_iter:
            if isinstance(event, File) and event.name == "file":
                self.filename = event.filename
                return
            if isinstance(event, Epilogue):
                break
        raise bad_request(UPLOAD_HELP)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The bytes of the `file` part."""
        async for event in self._events_iter:
            if isinstance(event, Data):
                if event.data:
                    yield event.data
                if not event.more_data:
                    return
            else:  # pragma: no cover - the decoder ends a part with its last Data event
                return


def _boundary() -> bytes:
    mimetype, options = parse_options_header(request.headers.get("Content-Type", ""))
    boundary = options.get("boundary", "")
    if mimetype != "multipart/form-data" or not 1 <= len(boundary) <= 200:
        raise bad_request(UPLOAD_HELP)
    return boundary.encode("latin-1", "replace")


@requires_auth
@document_request(UploadForm)
@document_response(MediaBody, 201)
@api_doc(errors=(400, 401, 413, 415), request_types=("multipart/form-data",))
async def upload_media(identity: Identity) -> Response:
    """Upload a file (multipart/form-data, part `file`).

    The size is checked first (over `max_upload_bytes` of /info: 413, nothing kept), then the
    type, sniffed from the bytes against the server's allow-list (415). Identical content is
    stored once; the storage key never comes from the file's name.
    """
    app = rest_state().app
    limit = app.settings.limits.max_upload_bytes
    if request.content_length is not None and request.content_length > upload_body_limit(
        app.settings.limits
    ):
        raise media.too_large(limit)
    part = _FilePart(_boundary(), upload_body_limit(app.settings.limits))
    try:
        await part.open()
        stored = await media.upload(app, identity.user_id, part.chunks(), part.filename)
    except ValueError as exc:  # the decoder's complaint about a malformed body
        raise bad_request(f"The multipart body is malformed ({str(exc)[:100]}).") from None
    return json_response(stored.wire(), 201)


def upload_body_limit(limits: LimitsSettings) -> int:
    return limits.max_upload_bytes + MULTIPART_OVERHEAD_BYTES


def body_limits(limits: LimitsSettings) -> list[BodyLimit]:
    """An upload's body may be as large as the largest file plus its multipart framing."""
    return [BodyLimit("POST", MEDIA, upload_body_limit(limits))]


# --- downloads --------------------------------------------------------------------------------


async def _readable(media_id: str) -> MediaModel:
    """The media, for the Bearer token's user or the signature of a Media's `url`."""
    app = rest_state().app
    expires, sig = request.args.get("exp"), request.args.get("sig")
    if (expires or sig) and media.check_signature(app, media_id, expires, sig):
        found = await app.storage.get_media(media_id)
        if found is None:
            raise not_found("This media")
        return found
    if bearer_token(request.headers.get("Authorization")) is None:
        if expires or sig:
            raise unauthorized("This media link has expired or is not valid; ask for a new one.")
        raise unauthorized()
    identity = await authenticate()
    return await media.readable(app, identity.user_id, media_id)


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    return etag in (tag.strip().removeprefix("W/") for tag in header.split(","))


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end) of a single `bytes=` range (end exclusive); None to send everything (no
    header, or one we do not serve, as RFC 9110 allows); `bad_request` 416 when unsatisfiable."""
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None  # several ranges, or another unit: the whole file is a valid answer
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        length = int(last)
        if length == 0 or size == 0:
            raise _unsatisfiable()
        return max(0, size - length), size
    start = int(first)
    end = size if not last else min(int(last) + 1, size)
    if last and int(last) < start:
        return None  # not a valid range: ignored
    if start >= size:
        raise _unsatisfiable()
    return start, end


class _Unsatisfiable(Exception):
    pass


def _unsatisfiable() -> _Unsatisfiable:
    return _Unsatisfiable()


def _disposition(item: MediaModel) -> str:
    kind = "inline" if media.is_image(item.content_type) else "attachment"
    if not item.filename:
        return kind
    ascii_name = item.filename.encode("ascii", "replace").decode().replace("?", "_")
    return (
        f"{kind}; filename={quote_header_value(ascii_name)}; "
        f"filename*=UTF-8''{quote(item.filename, safe='')}"
    )


async def _serve(key: str, content_type: str, size: int, etag: str, disposition: str) -> Response:
    """Stream a stored file with docs/protocol.md's headers, honouring If-None-Match and Range."""
    store = media.media_store(rest_state().app)
    headers = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "Cache-Control": CACHE_CONTROL,
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": SANDBOX,
        "Content-Disposition": disposition,
    }
    if _etag_matches(request.headers.get("If-None-Match"), etag):
        return Response(b"", 304, headers)
    wanted = request.headers.get("Range")
    if_range = request.headers.get("If-Range")
    if if_range is not None and if_range.strip() != etag:
        wanted = None  # the client's copy is another version: send all of this one
    try:
        span = _byte_range(wanted, size)
    except _Unsatisfiable:
        return error_response(
            ErrorCode.BAD_REQUEST,
            f"The range cannot be served: the file has {size} bytes.",
            416,
            {**headers, "Content-Range": f"bytes */{size}"},
        )
    status, (start, end) = (200, (0, size)) if span is None else (206, span)
    if status == 206:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    headers["Content-Length"] = str(end - start)
    response = Response(store.read(key, start, end), status, headers, content_type=content_type)
    response.timeout = None  # a large file on a slow link may take longer than Quart's default
    return response


@security_scheme(_BEARER_OR_SIGNATURE)
@validate_querystring(MediaQuery)
@api_doc(errors=(401, 404), replies=_BYTES_REPLIES)
async def download_media(media_id: str, query_args: MediaQuery) -> Response:
    """Download a file: with the Bearer header, or with the signature of its Media's `url`.

    Supports `Range` (one range; 206, or 416 when unsatisfiable) and `If-None-Match` (304).
    Images are served inline, anything else as an attachment; always with `nosniff`.
    """
    item = await _readable(media_id)
    return await _serve(
        media.blob_key(item.sha256), item.content_type, item.size, f'"{item.sha256}"',
        _disposition(item),
    )  # fmt: skip


@security_scheme(_BEARER_OR_SIGNATURE)
@validate_querystring(ThumbnailQuery)
@api_doc(errors=(400, 401, 404), replies=_BYTES_REPLIES)
async def media_thumbnail(media_id: str, query_args: ThumbnailQuery) -> Response:
    """A JPEG or PNG of an image, no larger than size x size (images only).

    Made once per size and kept; accepts the Bearer header or the Media `url`'s signature.
    """
    item = await _readable(media_id)
    thumb = await media.thumbnail(rest_state().app, item, query_args.size)
    return await _serve(thumb.key, thumb.content_type, thumb.size, thumb.etag, "inline")


# --- sticker packs ----------------------------------------------------------------------------


@requires_auth
@document_response(StickerPacks)
@api_doc(errors=(401,))
async def list_sticker_packs(identity: Identity) -> Response:
    """Every sticker pack of the server, by name, with signed URLs of the images."""
    packs = await stickers.list_packs(rest_state().app)
    return json_response({"packs": [pack.wire() for pack in packs]})


@requires_auth
@document_response(StickerPackBody)
@api_doc(errors=(401, 404))
async def get_sticker_pack(identity: Identity, pack_id: str) -> Response:
    """One sticker pack."""
    pack = await stickers.get_pack(rest_state().app, pack_id)
    return json_response(pack.wire())


def has_media_store(app: App) -> bool:
    """Media and stickers are served by a node with a media store only."""
    return app.media is not None


AREA = Area(
    routes=[
        ("POST", MEDIA, upload_media),
        ("GET", MEDIA + "/<media_id>", download_media),
        ("GET", MEDIA + "/<media_id>/thumbnail", media_thumbnail),
        ("GET", STICKER_PACKS, list_sticker_packs),
        ("GET", STICKER_PACKS + "/<pack_id>", get_sticker_pack),
    ],
    features=("media", "stickers"),
    available=has_media_store,
    body_limits=body_limits,
)
