"""Media: uploads, who may read what, signed URLs and thumbnails (docs/protocol.md, "Media").

An upload streams into a private temporary file (never into memory, and never into the media
store before it is complete and accepted): its size is counted as it arrives (over
`max_upload_bytes`: `too_large`, nothing kept), then its type is sniffed from its first bytes
against the store's allow-list (`unsupported_media_type`), images are measured with Pillow in a
worker thread with a pixel bound checked before anything is decoded, and the bytes go to the
store under a key made from their sha256: identical content is stored once, and no name a
client gives ever reaches a key.

A user may read media they uploaded, media of a non-deleted `media` message in a room they
belong to, sticker images and avatars; everyone else gets `not_found`. A Media's `url` carries
an HMAC signature (key from `AuthBackend.signing_key`, the same on every node) and an expiry,
so a browser can load it without the Authorization header.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import re
import tempfile
import time
import unicodedata
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote

from chatcore.clock import now_ms
from chatcore.errors import ChatError, ErrorCode, bad_request, not_found
from chatcore.state import StateKey

if TYPE_CHECKING:
    from chatcore.interfaces import MediaStore
    from chatcore.models import Media, MediaPolicy
    from chatcore.server.app import App

#: The contract's default allow-list (docs/protocol.md, Media).
DEFAULT_ALLOWED_TYPES = (
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "audio/ogg",
    "audio/mpeg",
    "video/mp4",
    "video/webm",
)
#: Every type `sniff` recognizes: what an allow-list may hold.
SNIFFED_TYPES = (
    *DEFAULT_ALLOWED_TYPES,
    "image/bmp",
    "image/avif",
    "image/heic",
    "image/heif",
    "audio/wav",
    "audio/flac",
    "audio/mp4",
    "video/quicktime",
    "video/x-matroska",
)
#: Types Pillow measures and thumbnails, and that are served inline; anything else is served
#: as an attachment.
IMAGE_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WEBP"}
#: Signed URLs point here (the contract fixes the path: `/api/v1/media/...`).
MEDIA_PATH = "/api/v1/media/"
URL_PURPOSE = "media-url"
#: How many bytes of an upload the sniffer looks at.
HEAD_BYTES = 4096
#: Uploads are written to the temporary file, hashed and copied in chunks of this size.
CHUNK_BYTES = 256 * 1024
FILENAME_MAX = 255
#: Images decoded at once per node (each may take width x height x 4 bytes of memory).
IMAGE_WORKERS = 2
_SLOTS_KEY = StateKey[asyncio.Semaphore]("chatcore.server.media.image_slots")


# --- sniffing ---------------------------------------------------------------------------------

_MP4_BRANDS = {
    b"isom",
    b"iso2",
    b"iso3",
    b"iso4",
    b"iso5",
    b"iso6",
    b"mp41",
    b"mp42",
    b"avc1",
    b"dash",
    b"M4V ",
    b"mmp4",
    b"msnv",
    b"MSNV",
    b"f4v ",
}
_FTYP_OTHERS = {b"M4A ": "audio/mp4", b"qt  ": "video/quicktime", b"avif": "image/avif",
                b"heic": "image/heic", b"heix": "image/heic", b"mif1": "image/heif"}  # fmt: skip


def sniff(head: bytes) -> str | None:
    """The content type of a file from its first bytes (magic numbers), or None when unknown.

    Knows the contract's default types and a few more an operator may allow. Text formats
    (HTML, SVG, scripts) are never recognized: a browser could run them.
    """
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        return "video/mp4" if brand in _MP4_BRANDS else _FTYP_OTHERS.get(brand)
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: Matroska or WebM, told by the doctype
        if b"webm" in head[:64]:
            return "video/webm"
        return "video/x-matroska" if b"matroska" in head[:64] else None
    if head.startswith(b"ID3") or _mpeg_audio_frame(head):
        return "audio/mpeg"
    if head.startswith(b"BM") and len(head) > 14 and head[6:10] == b"\0\0\0\0":
        return "image/bmp"
    return None


def _mpeg_audio_frame(head: bytes) -> bool:
    # An MPEG audio frame header: 11 sync bits, a version other than "reserved", a layer.
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version, layer = (head[1] >> 3) & 3, (head[1] >> 1) & 3
    bitrate, rate = head[2] >> 4, (head[2] >> 2) & 3
    return version != 1 and layer != 0 and bitrate not in (0, 15) and rate != 3


def is_image(content_type: str) -> bool:
    return content_type in IMAGE_FORMATS


# --- the store and its policy -----------------------------------------------------------------


def media_store(app: App) -> MediaStore:
    """The node's media store; `bad_request` on a node that has none."""
    store: MediaStore | None = app.media
    if store is None:
        raise bad_request("This server does not store media.")
    return store


def blob_key(sha256: str) -> str:
    """Where the bytes with this hash live: made by the server from the content alone."""
    return f"blobs/{sha256[:2]}/{sha256}"


def thumbnail_key(sha256: str, edge: int, extension: str) -> str:
    return f"thumbs/{sha256[:2]}/{sha256}-{edge}.{extension}"


def _image_slots(app: App) -> asyncio.Semaphore:
    slots = app.state.get(_SLOTS_KEY)
    if slots is None:
        slots = app.state[_SLOTS_KEY] = asyncio.Semaphore(IMAGE_WORKERS)
    return slots


# --- uploads ----------------------------------------------------------------------------------


class Spool:
    """An upload on its way in: an unnamed temporary file (gone when closed, also after a
    crash), its size, its sha256 and its first bytes. File work and hashing run in threads."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.head = b""
        self._hash = hashlib.sha256()
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._file: IO[bytes] | None = None

    async def open(self) -> Spool:
        self._file = await asyncio.to_thread(tempfile.TemporaryFile)
        return self

    @property
    def file(self) -> IO[bytes]:
        if self._file is None:
            raise RuntimeError("the spool is not open")
        return self._file

    async def write(self, data: bytes) -> None:
        """Take the next bytes; `too_large` as soon as the total passes the limit."""
        self.size += len(data)
        if self.size > self.limit:
            raise too_large(self.limit)
        if len(self.head) < HEAD_BYTES:
            self.head += data[: HEAD_BYTES - len(self.head)]
        self._pending.append(data)
        self._pending_bytes += len(data)
        if self._pending_bytes >= CHUNK_BYTES:
            await self.flush()

    async def flush(self) -> None:
        if self._pending:
            data, self._pending, self._pending_bytes = b"".join(self._pending), [], 0
            await asyncio.to_thread(self._write, data)

    def _write(self, data: bytes) -> None:
        self.file.write(data)
        self._hash.update(data)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    async def chunks(self) -> AsyncIterator[bytes]:
        """The spooled bytes from the start (call `flush` first)."""
        await asyncio.to_thread(self.file.seek, 0)
        while chunk := await asyncio.to_thread(self.file.read, CHUNK_BYTES):
            yield chunk

    async def close(self) -> None:
        if self._file is not None:
            file, self._file = self._file, None
            await asyncio.to_thread(file.close)


def too_large(limit: int) -> ChatError:
    return ChatError(ErrorCode.TOO_LARGE, f"A file is at most {limit} bytes.")


def clean_filename(filename: object) -> str | None:
    """A client's file name, kept only as a label (for `Content-Disposition`): the last path
    part, without control characters, at most 255 characters; None when nothing is left."""
    if not isinstance(filename, str):
        return None
    name = re.split(r"[/\\]", filename)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()
    if name in ("", ".", ".."):
        return None
    return name[:FILENAME_MAX]


async def upload(
    app: App, uploader_id: str | None, chunks: AsyncIterable[bytes], filename: object = None
) -> Media:
    """Store an upload (see the module docstring); its Media, with a signed `url`."""
    store = media_store(app)
    spool = await Spool(app.settings.limits.max_upload_bytes).open()
    try:
        async for chunk in chunks:
            await spool.write(chunk)
        await spool.flush()
        media = await ingest(app, spool, uploader_id, clean_filename(filename))
    finally:
        await spool.close()
    return with_url(app, media, store)


async def ingest(
    app: App,
    spool: Spool,
    uploader_id: str | None,
    filename: str | None,
    *,
    media_id: str | None = None,
    images_only: bool = False,
) -> Media:
    """Check a complete, flushed spool and store it: bytes in the store, a row in storage."""
    from chatcore.models import Media

    store = media_store(app)
    policy = store.policy
    if spool.size == 0:
        raise bad_request("The file is empty.")
    content_type = sniff(spool.head)
    if content_type is None or content_type not in policy.allowed_types:
        allowed = ", ".join(policy.allowed_types)
        raise ChatError(
            ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            f"This kind of file is not accepted (judged by its content); allowed: {allowed}.",
        )
    width = height = None
    if is_image(content_type):
        async with _image_slots(app):
            width, height = await asyncio.to_thread(
                _measure, spool.file, IMAGE_FORMATS[content_type], policy.max_image_pixels
            )
    elif images_only:
        raise ChatError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, "Only images are accepted here.")
    sha = spool.sha256
    key = blob_key(sha)
    # The key is the content's hash, so a blob of the right size is this very content; one of
    # another size is the remains of an interrupted write and is replaced.
    if await store.size(key) != spool.size:
        await store.put(key, spool.chunks())
    media = Media(
        id=media_id or uuid.uuid4().hex,
        uploader_id=uploader_id,
        content_type=content_type,
        size=spool.size,
        sha256=sha,
        width=width,
        height=height,
        filename=filename,
        created_ts=now_ms(),
    )
    return await app.storage.create_media(media)


class _ImageRefused(Exception):
    def __init__(self, error: ChatError) -> None:
        self.error = error


def _pixel_bound(max_pixels: int) -> Any:
    """Pillow, with its own decompression-bomb bound no higher than ours (it checks the
    header's size in `Image.open`, before decoding; the bound only ever goes down)."""
    from PIL import Image

    if Image.MAX_IMAGE_PIXELS is None or Image.MAX_IMAGE_PIXELS > max_pixels:
        Image.MAX_IMAGE_PIXELS = max_pixels
    return Image


def _open_image(data: IO[bytes], pil_format: str, max_pixels: int) -> Any:
    """Open (read the header of) an image of the sniffed format, refusing one of more pixels
    than `max_pixels` before anything is decoded. Runs in a worker thread."""
    Image = _pixel_bound(max_pixels)
    data.seek(0)
    try:
        image = Image.open(data, formats=[pil_format])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise too_many_pixels(max_pixels) from None
    except (OSError, SyntaxError, ValueError):
        raise ChatError(
            ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            f"This file starts like a {pil_format} image but is not a readable one.",
        ) from None
    width, height = image.size
    if width * height > max_pixels or width < 1 or height < 1:
        image.close()
        raise too_many_pixels(max_pixels)
    return image


def too_many_pixels(max_pixels: int) -> ChatError:
    return ChatError(ErrorCode.TOO_LARGE, f"An image is at most {max_pixels} pixels (w x h).")


def _measure(data: IO[bytes], pil_format: str, max_pixels: int) -> tuple[int, int]:
    with _open_image(data, pil_format, max_pixels) as image:
        width, height = image.size
    return int(width), int(height)


# --- who may read what ------------------------------------------------------------------------


async def readable(app: App, user_id: str, media_id: str) -> Media:
    """The media, when `user_id` may read it; else `not_found` (docs/protocol.md, Visibility)."""
    media = await app.storage.get_media(media_id)
    if media is None or (
        media.uploader_id != user_id and not await app.storage.media_shared_with(media_id, user_id)
    ):
        raise not_found("This media")
    return media


async def get(app: App, user_id: str, media_id: str) -> Media:
    """The media's metadata with a `url` signed for this reader."""
    return with_url(app, await readable(app, user_id, media_id))


# --- signed URLs ------------------------------------------------------------------------------


def _signature(app: App, media_id: str, expires: int) -> str:
    key = app.auth.signing_key(URL_PURPOSE)
    digest = hmac.new(key, f"{media_id}\x00{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def signed_url(app: App, media_id: str, store: MediaStore | None = None) -> str:
    """`/api/v1/media/{id}?exp=...&sig=...`, valid for the store's `url_ttl_seconds`.

    The expiry is rounded up to the minute, so the URL of one media stays the same for a
    minute and a browser's cache can serve repeated views.
    """
    ttl = (store or media_store(app)).policy.url_ttl_seconds
    expires = (int(time.time()) + ttl) // 60 * 60 + 60
    sig = _signature(app, media_id, expires)
    return f"{MEDIA_PATH}{quote(media_id, safe='')}?exp={expires}&sig={sig}"


def check_signature(app: App, media_id: str, expires: object, sig: object) -> bool:
    """True when `sig` was made by a node of this service for this media and `expires` is
    still ahead."""
    if not isinstance(sig, str) or not isinstance(expires, str) or not expires.isdigit():
        return False
    if len(expires) > 12 or int(expires) < time.time():
        return False
    return hmac.compare_digest(sig.encode(), _signature(app, media_id, int(expires)).encode())


def with_url(app: App, media: Media, store: MediaStore | None = None) -> Media:
    return media.model_copy(update={"url": signed_url(app, media.id, store)})


# --- thumbnails -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Thumbnail:
    key: str
    content_type: str
    size: int
    etag: str


def thumbnail_edge(policy: MediaPolicy, wanted: int) -> int:
    """The largest configured size not above `wanted`; `bad_request` below the smallest."""
    fitting = [edge for edge in policy.thumbnail_sizes if edge <= wanted]
    if not fitting:
        smallest = min(policy.thumbnail_sizes)
        raise bad_request(f"size must be at least {smallest}.")
    return max(fitting)


async def thumbnail(app: App, media: Media, wanted: int) -> Thumbnail:
    """A thumbnail of an image, no larger than wanted x wanted, made once and kept in the
    store under a key derived from the image's hash and the size (JPEG for JPEG photos, PNG
    for the rest, which may be transparent)."""
    store = media_store(app)
    if not is_image(media.content_type):
        raise bad_request("Only images have thumbnails.")
    edge = thumbnail_edge(store.policy, wanted)
    extension, content_type = (
        ("jpg", "image/jpeg") if media.content_type == "image/jpeg" else ("png", "image/png")
    )
    key = thumbnail_key(media.sha256, edge, extension)
    size = await store.size(key)
    if size is None:
        original = io.BytesIO()
        async for chunk in store.read(blob_key(media.sha256)):
            original.write(chunk)
        async with _image_slots(app):
            data = await asyncio.to_thread(
                _make_thumbnail,
                original,
                IMAGE_FORMATS[media.content_type],
                edge,
                extension,
                store.policy.max_image_pixels,
            )
        size = await store.put(key, _one(data))
    return Thumbnail(key, content_type, size, f'"{media.sha256}-{edge}{extension}"')


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _make_thumbnail(
    original: IO[bytes], pil_format: str, edge: int, extension: str, max_pixels: int
) -> bytes:
    from PIL import ImageOps

    with _open_image(original, pil_format, max_pixels) as image:
        if pil_format == "JPEG":
            image.draft("RGB", (edge, edge))  # decode at a reduced scale: less memory and time
        image.seek(0)  # the first frame of an animation
        frame = ImageOps.exif_transpose(image) or image
        frame.thumbnail((edge, edge))
        out = io.BytesIO()
        if extension == "jpg":
            frame.convert("RGB").save(out, "JPEG", quality=85, optimize=True)
        else:
            has_alpha = frame.mode in ("RGBA", "LA", "PA") or "transparency" in frame.info
            frame.convert("RGBA" if has_alpha else "RGB").save(out, "PNG", optimize=True)
    return out.getvalue()
