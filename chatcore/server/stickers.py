"""Sticker packs: import from a folder or a zip file, list, get (docs/protocol.md, "Stickers").

A pack on disk is a folder (or a zip of one) of images, optionally with a `pack.json`:

    {"id": "cats", "name": "Cats", "stickers": [{"file": "happy.png", "emoji": "😺"}, ...]}

Without a manifest every image file is a sticker, in name order, and the pack is named after
the folder or zip file. Nothing is ever extracted to disk: a zip's members are read into memory
one by one, within size bounds, and a member whose name tries to leave the pack (`../x`, an
absolute path, a drive, a backslash) or is a link refuses the whole pack. Each image goes
through the same checks as an upload (sniffed type, pixel bound) and is stored once by content.

Importing is idempotent: pack, sticker and media ids derive from the pack id, the file names
and the content, so importing the same pack again changes nothing and keeps the ids that
messages refer to.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import unicodedata
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import anyio

from chatcore.clock import now_ms
from chatcore.errors import ChatError, bad_request, not_found
from chatcore.hooks import call_all
from chatcore.models import Sticker, StickerPack
from chatcore.server import media

if TYPE_CHECKING:
    from chatcore.server.app import App

MANIFEST = "pack.json"
MANIFEST_MAX_BYTES = 64 * 1024
STICKER_MAX_BYTES = 1024 * 1024
PACK_MAX_STICKERS = 500
PACK_MAX_BYTES = 64 * 1024 * 1024
ZIP_MAX_MEMBERS = 2000
PACK_NAME_MAX = 100
EMOJI_MAX = 32
PACK_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp"}


@dataclass
class PackSource:
    """A pack read from disk: its default name, its files (relative name -> bytes), and its
    manifest when it has one."""

    default_name: str
    files: dict[str, bytes] = field(default_factory=dict)
    manifest: dict[str, Any] | None = None


def refused(path: Path | str, why: str) -> ChatError:
    return bad_request(f"Sticker pack {os.fspath(path)!s}: {why}")


# --- reading a pack from disk (blocking: run in a worker thread) -----------------------------


def read_pack(path: Path) -> PackSource:
    """Read a pack folder or zip file, with every bound checked."""
    if path.is_dir():
        return _read_folder(path)
    if path.is_file() and zipfile.is_zipfile(path):
        return _read_zip(path)
    raise refused(path, "not a folder or a zip file.")


class _Budget:
    def __init__(self, where: Path) -> None:
        self.where = where
        self.total = 0
        self.count = 0

    def take(self, name: str, size: int, manifest: bool = False) -> int:
        """Check one file's size against the bounds; return the most bytes to read of it."""
        limit = MANIFEST_MAX_BYTES if manifest else STICKER_MAX_BYTES
        if size > limit:
            raise refused(self.where, f"{name} is larger than {limit} bytes.")
        self.total += size
        self.count += 0 if manifest else 1
        if self.total > PACK_MAX_BYTES:
            raise refused(self.where, f"the files add up to more than {PACK_MAX_BYTES} bytes.")
        if self.count > PACK_MAX_STICKERS:
            raise refused(self.where, f"a pack has at most {PACK_MAX_STICKERS} stickers.")
        return limit


def _wanted(name: str) -> bool:
    return name == MANIFEST or PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES


def _read_folder(path: Path) -> PackSource:
    source = PackSource(path.resolve().name)
    budget = _Budget(path)
    for entry in sorted(path.iterdir()):
        info = entry.lstat()
        if stat.S_ISLNK(info.st_mode):
            raise refused(path, f"{entry.name} is a link; a pack holds plain files only.")
        if not stat.S_ISREG(info.st_mode) or not _wanted(entry.name):
            continue  # sub-folders, READMEs, licences: not part of the pack
        limit = budget.take(entry.name, info.st_size, manifest=entry.name == MANIFEST)
        with entry.open("rb") as f:
            data = f.read(limit + 1)
        if len(data) > limit:  # grew while we looked
            raise refused(path, f"{entry.name} is larger than {limit} bytes.")
        _add(source, entry.name, data, path)
    return source


def _member_name(info: zipfile.ZipInfo, where: Path) -> str:
    """A zip member's name within the pack: its path without a common top folder. Refuses a
    name that could leave the pack, and links."""
    name = info.filename
    parts = name.split("/")
    if (
        name.startswith("/")
        or "\\" in name
        or "\x00" in name
        or ":" in parts[0]
        or any(part in ("..", ".") for part in parts)
    ):
        raise refused(where, f"the member {name!r} points outside the pack.")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise refused(where, f"the member {name!r} is a link; a pack holds plain files only.")
    return name


def _read_zip(path: Path) -> PackSource:
    try:
        return _read_archive(path)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        # A damaged member (a CRC or a size that lies), an unknown compression, a password.
        raise refused(path, f"not a valid zip file ({exc}).") from None


def _read_archive(path: Path) -> PackSource:
    source = PackSource(path.stem)
    budget = _Budget(path)
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
        if len(members) > ZIP_MAX_MEMBERS:
            raise refused(path, f"a pack zip has at most {ZIP_MAX_MEMBERS} members.")
        names = [_member_name(info, path) for info in members]  # every name, before any read
        files = [(n, i) for n, i in zip(names, members, strict=True) if not i.is_dir()]
        # A zip of a folder: its files sit under one top folder, which names the pack.
        tops = {n.split("/", 1)[0] for n, _ in files if "/" in n}
        prefix = f"{tops.pop()}/" if len(tops) == 1 and all("/" in n for n, _ in files) else ""
        if prefix:
            source.default_name = prefix.rstrip("/")
        for name, info in sorted(files, key=lambda item: item[0]):
            relative = name[len(prefix) :]
            if "/" in relative or not _wanted(relative):
                continue
            limit = budget.take(relative, info.file_size, manifest=relative == MANIFEST)
            with archive.open(info) as member:
                data = member.read(limit + 1)  # the header's size may lie
            if len(data) > limit:
                raise refused(path, f"{relative} is larger than {limit} bytes.")
            _add(source, relative, data, path)
    return source


def _add(source: PackSource, name: str, data: bytes, where: Path) -> None:
    if name != MANIFEST:
        source.files[name] = data
        return
    try:
        manifest = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise refused(where, f"{MANIFEST} is not valid JSON.") from None
    if not isinstance(manifest, dict):
        raise refused(where, f"{MANIFEST} must hold a JSON object.")
    source.manifest = manifest


# --- importing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    file: str
    emoji: str | None


def _text(value: object, what: str, limit: int, where: Path) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise refused(where, f"{what} must be a string of 1 to {limit} characters.")
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise refused(where, f"{what} cannot contain control characters.")
    return value.strip()


def _entries(source: PackSource, where: Path) -> list[_Entry]:
    listed = (source.manifest or {}).get("stickers")
    if listed is None:
        return [_Entry(name, None) for name in sorted(source.files)]
    if not isinstance(listed, list) or not all(isinstance(item, dict) for item in listed):
        raise refused(where, f'"stickers" in {MANIFEST} must be a list of objects.')
    entries = []
    for item in listed:
        file = item.get("file")
        if not isinstance(file, str) or file not in source.files:
            raise refused(where, f"{MANIFEST} names {file!r}, which is not an image of the pack.")
        emoji = item.get("emoji")
        entries.append(
            _Entry(file, None if emoji is None else _text(emoji, "emoji", EMOJI_MAX, where))
        )
    return entries


def pack_id_for(name: str) -> str:
    """A pack id from a name: lower-case letters, digits, `-` and `_`."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-_")[:64]
    if not slug:
        slug = "pack-" + hashlib.sha256(name.encode()).hexdigest()[:12]
    return slug


def _derived_id(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]


async def import_pack(
    app: App, path: str | os.PathLike[str], name: str | None = None
) -> StickerPack:
    """Import (or re-import) the pack at `path`, a folder or a zip file; return it with URLs."""
    where = Path(path)
    source = await anyio.to_thread.run_sync(read_pack, where)
    manifest = source.manifest or {}
    title = _text(name or manifest.get("name") or source.default_name, "name", PACK_NAME_MAX, where)
    pack_id = manifest.get("id", pack_id_for(title))
    if not isinstance(pack_id, str) or not PACK_ID.fullmatch(pack_id):
        raise refused(where, "id must be 1 to 64 of a-z, 0-9, '-', '_' (starting a-z or 0-9).")
    entries = _entries(source, where)
    if not entries:
        raise refused(where, "it holds no images (.png, .jpg, .gif, .webp).")
    stickers = []
    for entry in entries:
        stored = await _store_image(app, entry.file, source.files[entry.file], where)
        stickers.append(
            Sticker(
                id=_derived_id(pack_id, entry.file),
                pack_id=pack_id,
                emoji=entry.emoji,
                media_id=stored,
            )
        )
    pack = StickerPack(id=pack_id, name=title, stickers=tuple(stickers))
    return with_urls(app, await app.storage.put_sticker_pack(pack, now_ms()))


async def _store_image(app: App, file: str, data: bytes, where: Path) -> str:
    spool = await media.Spool(STICKER_MAX_BYTES).open()
    try:
        await spool.write(data)
        await spool.flush()
        # The media id derives from the content: the same image is one media row, however
        # often and in however many packs it is imported.
        stored = await media.ingest(
            app,
            spool,
            None,
            media.clean_filename(PurePosixPath(file).name),
            media_id="st" + spool.sha256[:30],
            images_only=True,
        )
    except ChatError as exc:
        raise ChatError(exc.code, f"Sticker pack {where}: {file}: {exc.message}") from None
    finally:
        await spool.close()
    return stored.id


async def import_contributed_packs(app: App) -> list[StickerPack]:
    """Import every pack that plugins name through `chatcore_sticker_packs`."""
    answers = await call_all(app.hook.chatcore_sticker_packs, app=app)
    paths: Iterable[Any] = [p for answer in answers for p in answer]
    return [await import_pack(app, path) for path in paths]


# --- reading ----------------------------------------------------------------------------------


def with_urls(app: App, pack: StickerPack) -> StickerPack:
    """The pack with a signed `url` on each sticker (sticker images are readable by all)."""
    store = media.media_store(app)
    stickers = tuple(
        s.model_copy(update={"url": media.signed_url(app, s.media_id, store)})
        for s in pack.stickers
    )
    return pack.model_copy(update={"stickers": stickers})


async def list_packs(app: App) -> list[StickerPack]:
    return [with_urls(app, pack) for pack in await app.storage.list_sticker_packs()]


async def get_pack(app: App, pack_id: str) -> StickerPack:
    pack = await app.storage.get_sticker_pack(pack_id)
    if pack is None:
        raise not_found("This sticker pack")
    return with_urls(app, pack)
