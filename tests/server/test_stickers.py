"""Sticker packs in-process: the safe reader of folders and zips, and packs contributed by a
plugin through `chatcore_sticker_packs` (imported at start-up), on a real SQLite file and a
media folder."""

from __future__ import annotations

import io
import os
import stat
import zipfile
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from chatcore import hookimpl
from chatcore.errors import ChatError
from chatcore.server import stickers
from chatcore.server.app import App
from chatcore.testing.server import FAST_AUTH

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def png(color: str = "red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buffer, "PNG")
    return buffer.getvalue()


def zip_with(path: Path, members: dict[str, bytes], links: tuple[str, ...] = ()) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo("placeholder")
            info.filename = name
            if name in links:
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, data)
    return path


async def test_a_zip_of_one_folder_is_read_without_extracting(tmp_path: Path) -> None:
    archive = zip_with(tmp_path / "x.zip", {"cats/a.png": png(), "cats/notes.txt": b"hi"})
    source = stickers.read_pack(archive)
    assert source.default_name == "cats"
    assert list(source.files) == ["a.png"]
    assert os.listdir(tmp_path) == ["x.zip"]


@pytest.mark.parametrize(
    ("members", "links", "why"),
    [
        ({"../a.png": b"x"}, (), "outside the pack"),
        ({"a/../../b.png": b"x"}, (), "outside the pack"),
        ({"/etc/a.png": b"x"}, (), "outside the pack"),
        ({"a\\..\\b.png": b"x"}, (), "outside the pack"),
        ({"link.png": b"/etc/passwd"}, ("link.png",), "link"),
        ({"big.png": b"\0" * (stickers.STICKER_MAX_BYTES + 1)}, (), "larger than"),
    ],
)
async def test_unsafe_zips_are_refused(
    tmp_path: Path, members: dict[str, bytes], links: tuple[str, ...], why: str
) -> None:
    archive = zip_with(tmp_path / "bad.zip", {"ok.png": png(), **members}, links)
    with pytest.raises(ChatError, match=why):
        stickers.read_pack(archive)


async def test_a_zip_bomb_is_read_no_further_than_the_bound(tmp_path: Path) -> None:
    # A member whose header claims a small size but whose data inflates to far more.
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.png", b"\0" * (8 * stickers.STICKER_MAX_BYTES))
    data = bytearray(archive.read_bytes())
    # Patch the uncompressed size in the central directory to lie (1 KiB).
    central = data.rfind(b"PK\x01\x02")
    data[central + 24 : central + 28] = (1024).to_bytes(4, "little")
    archive.write_bytes(bytes(data))
    # zipfile stops at the declared size; the CRC then fails: refused, nothing inflated.
    with pytest.raises(ChatError, match="not a valid zip"):
        stickers.read_pack(archive)


async def test_folder_links_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "pack"
    folder.mkdir()
    (folder / "a.png").write_bytes(png())
    (folder / "b.png").symlink_to("/etc/passwd")
    with pytest.raises(ChatError, match="link"):
        stickers.read_pack(folder)


class PackPlugin:
    def __init__(self, path: Path) -> None:
        self.path = path

    @hookimpl
    def chatcore_sticker_packs(self, app: Any) -> list[Path]:
        return [self.path]


async def test_a_plugin_contributes_packs_imported_at_start(tmp_path: Path) -> None:
    folder = tmp_path / "Blobs"
    folder.mkdir()
    (folder / "one.png").write_bytes(png("red"))
    (folder / "two.png").write_bytes(png("blue"))
    overrides = {
        "storage": {"url": f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}"},
        "media": {"url": f"file://{tmp_path / 'media'}"},
        "auth": {"secret": "s" * 64, **FAST_AUTH},
    }
    for _ in range(2):  # a second node start imports the same pack again: nothing changes
        app = App.from_config(overrides=overrides, extra_plugins=[PackPlugin(folder)])
        await app.start(listen=False)
        try:
            packs = await stickers.list_packs(app)
        finally:
            await app.stop()
        assert [(p.id, p.name, len(p.stickers)) for p in packs] == [("blobs", "Blobs", 2)]
        assert all(s.url and s.url.startswith("/api/v1/media/") for s in packs[0].stickers)
