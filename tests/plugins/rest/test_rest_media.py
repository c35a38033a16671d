"""Media, stickers and the profile over REST, end to end: a real `chatcore serve` process with
its media in a folder, spoken to over HTTP (docs/protocol.md, "Media", "Stickers", `PATCH /me`).

Covers uploads and downloads (ETag, 304, Range, 416, nosniff, attachment), upload attacks (a
traversal name, oversize, a type lie, a decompression bomb), who may read what (owner, member
of a room where it is shared, outsider, the signed URL), media and sticker messages, sticker
pack import (folder, zip, zip-slip), and avatars.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import itertools
import json
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from chatcore.testing.rest import assert_error, ok
from chatcore.testing.server import ServerProcess, start_server
from chatcore.testing.users import PASSWORD, TestUser, unique_username
from chatcore.testing.wsclient import WSClient

pytestmark = pytest.mark.e2e

MAX_UPLOAD = 200_000
CLI = [sys.executable, "-m", "chatcore"]
MEDIA_KEYS = {"id", "content_type", "size", "sha256", "url"}
_refs = itertools.count()


# --- fixtures and helpers ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("media-server")
    with start_server(folder, {"limits": {"max_upload_bytes": MAX_UPLOAD}}) as running:
        yield running


def new_user(http: httpx.Client) -> TestUser:
    username = unique_username("media")
    body = {"username": username, "password": PASSWORD}
    assert http.post("/auth/register", json=body).status_code == 201
    tokens = ok(http.post("/auth/login", json=body))
    return TestUser(
        username, PASSWORD, tokens["user"], tokens["access_token"], tokens["refresh_token"]
    )


@pytest.fixture(scope="module")
def alice(client: httpx.Client) -> TestUser:
    return new_user(client)


@pytest.fixture(scope="module")
def bob(client: httpx.Client) -> TestUser:
    return new_user(client)


@pytest.fixture(scope="module")
def eve(client: httpx.Client) -> TestUser:
    """An outsider: in no room with anyone."""
    return new_user(client)


def png(width: int = 40, height: int = 30, color: str = "red", mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height), color).save(buffer, "PNG")
    return buffer.getvalue()


def jpeg(width: int = 64, height: int = 48) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "blue").save(buffer, "JPEG")
    return buffer.getvalue()


PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def bomb_png(side: int = 20_000) -> bytes:
    """A valid PNG of side x side pixels of one color (1-bit), a few tens of KiB on disk but
    side * side pixels once decoded: a decompression bomb."""
    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def upload(
    http: httpx.Client, user: TestUser, data: bytes, name: str = "file.png", status: int = 201
) -> dict[str, Any]:
    reply = http.post("/media", files={"file": (name, data, "image/png")}, headers=user.headers)
    return ok(reply, status)


def stored_files(server: ServerProcess) -> list[Path]:
    return sorted(p for p in (server.folder / "media").rglob("*") if p.is_file())


def direct(http: httpx.Client, a: TestUser, b: TestUser) -> str:
    reply = http.post("/rooms", json={"kind": "direct", "user_id": b.id}, headers=a.headers)
    assert reply.status_code in (200, 201), reply.text
    return str(reply.json()["id"])


def send(
    http: httpx.Client, user: TestUser, room_id: str, status: int = 201, **fields: Any
) -> httpx.Response:
    payload = {"ref": f"media-ref-{next(_refs)}", **fields}
    reply = http.post(f"/rooms/{room_id}/messages", json=payload, headers=user.headers)
    assert reply.status_code == status, reply.text
    return reply


def signing_key(server: ServerProcess) -> bytes:
    """The media URL key as chatcore_auth derives it from the configured secret."""
    secret = server.config["auth"]["secret"].encode()
    return hmac.new(secret, b"chatcore signing key\x00media-url", hashlib.sha256).digest()


def sign(server: ServerProcess, media_id: str, expires: int) -> str:
    digest = hmac.new(
        signing_key(server), f"{media_id}\x00{expires}".encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


# --- upload and download ----------------------------------------------------------------------


def test_upload_answers_media_and_keys_come_from_content(
    client: httpx.Client, server: ServerProcess, alice: TestUser
) -> None:
    data = png(40, 30)
    media = upload(client, alice, data, name="../../x.png")
    assert MEDIA_KEYS <= set(media) <= MEDIA_KEYS | {"width", "height", "filename"}
    assert media["content_type"] == "image/png"
    assert (media["width"], media["height"]) == (40, 30)
    assert media["size"] == len(data)
    assert media["sha256"] == hashlib.sha256(data).hexdigest()
    assert media["filename"] == "x.png"  # a label only, without its path
    assert media["url"].startswith(f"/api/v1/media/{media['id']}?")
    # The name never reaches the store: the bytes live under their hash, inside the folder.
    root = server.folder / "media"
    assert [
        p.relative_to(root).as_posix() for p in stored_files(server) if p.name == media["sha256"]
    ]
    assert not any("x.png" in str(p) for p in server.folder.rglob("*"))
    assert not (server.folder.parent / "x.png").exists()
    # The same content again is stored once.
    again = upload(client, alice, data, name="copy.png")
    assert again["id"] != media["id"] and again["sha256"] == media["sha256"]
    assert len([p for p in stored_files(server) if p.name == media["sha256"]]) == 1


def test_download_headers_etag_and_304(client: httpx.Client, alice: TestUser) -> None:
    data = png(12, 12, "green")
    media = upload(client, alice, data)
    reply = client.get(f"/media/{media['id']}", headers=alice.headers)
    assert reply.status_code == 200
    assert reply.content == data
    assert reply.headers["content-type"] == "image/png"
    assert reply.headers["etag"] == f'"{media["sha256"]}"'
    assert reply.headers["x-content-type-options"] == "nosniff"
    assert not reply.headers["content-disposition"].startswith("attachment")
    assert reply.headers["content-length"] == str(len(data))
    cached = client.get(
        f"/media/{media['id']}", headers={**alice.headers, "If-None-Match": reply.headers["etag"]}
    )
    assert cached.status_code == 304 and cached.content == b""
    other = client.get(
        f"/media/{media['id']}", headers={**alice.headers, "If-None-Match": '"something-else"'}
    )
    assert other.status_code == 200 and other.content == data


def test_ranges(client: httpx.Client, alice: TestUser) -> None:
    data = PDF + bytes(range(256)) * 8
    media = upload(client, alice, data, name="doc.pdf")
    url, size = f"/media/{media['id']}", len(data)

    def get(range_header: str) -> httpx.Response:
        return client.get(url, headers={**alice.headers, "Range": range_header})

    first = get("bytes=0-9")
    assert first.status_code == 206 and first.content == data[:10]
    assert first.headers["content-range"] == f"bytes 0-9/{size}"
    tail = get("bytes=-5")
    assert tail.status_code == 206 and tail.content == data[-5:]
    rest = get(f"bytes={size - 3}-")
    assert rest.status_code == 206 and rest.content == data[-3:]
    clamped = get(f"bytes=10-{size + 100}")
    assert clamped.status_code == 206 and clamped.content == data[10:]
    outside = get(f"bytes={size}-")
    assert_error(outside, 416, "bad_request")
    assert outside.headers["content-range"] == f"bytes */{size}"
    whole = get("bytes=0-1,5-6")  # several ranges: the whole file is a valid answer
    assert whole.status_code == 200 and whole.content == data
    stale = client.get(
        url, headers={**alice.headers, "Range": "bytes=0-9", "If-Range": '"old-version"'}
    )
    assert stale.status_code == 200 and stale.content == data


def test_what_is_not_an_image_is_an_attachment(client: httpx.Client, alice: TestUser) -> None:
    media = upload(client, alice, PDF, name="report \u00e9t\u00e9.pdf")
    assert media["content_type"] == "application/pdf"
    assert "width" not in media
    reply = client.get(f"/media/{media['id']}", headers=alice.headers)
    assert reply.headers["content-type"] == "application/pdf"
    disposition = reply.headers["content-disposition"]
    assert disposition.startswith("attachment")
    assert "filename*=UTF-8''report%20%C3%A9t%C3%A9.pdf" in disposition
    assert reply.headers["x-content-type-options"] == "nosniff"


# --- upload attacks and refusals --------------------------------------------------------------


def test_oversize_upload_is_refused_and_nothing_is_kept(
    client: httpx.Client, server: ServerProcess, alice: TestUser
) -> None:
    before = stored_files(server)
    just_over = png() + b"\x00" * (MAX_UPLOAD - len(png()) + 1)
    message = assert_error(
        client.post("/media", files={"file": ("a.png", just_over)}, headers=alice.headers),
        413,
        "too_large",
    )
    assert str(MAX_UPLOAD) in message
    far_over = b"\x89PNG\r\n\x1a\n" + b"\x00" * (2 * MAX_UPLOAD)
    assert_error(
        client.post("/media", files={"file": ("b.png", far_over)}, headers=alice.headers),
        413,
        "too_large",
    )

    # Without a Content-Length (chunked), the body is cut off at the limit as it arrives.
    boundary = "chatcoreboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="c.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()

    def chunked() -> Iterator[bytes]:
        yield head + b"\x89PNG\r\n\x1a\n"
        for _ in range(40):
            yield b"\x00" * 10_000
        yield f"\r\n--{boundary}--\r\n".encode()

    reply = client.post(
        "/media",
        content=chunked(),
        headers={**alice.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert_error(reply, 413, "too_large")
    assert stored_files(server) == before


def test_a_type_lie_is_refused(
    client: httpx.Client, server: ServerProcess, alice: TestUser
) -> None:
    before = stored_files(server)
    html = b"<!doctype html><html><script>alert(document.cookie)</script></html>"
    reply = client.post(
        "/media", files={"file": ("cat.png", html, "image/png")}, headers=alice.headers
    )
    assert_error(reply, 415, "unsupported_media_type")
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    reply = client.post("/media", files={"file": ("a.svg", svg)}, headers=alice.headers)
    assert_error(reply, 415, "unsupported_media_type")
    # Magic numbers of an image, but not an image.
    broken = b"\x89PNG\r\n\x1a\n" + b"not really a png" * 10
    reply = client.post("/media", files={"file": ("b.png", broken)}, headers=alice.headers)
    assert_error(reply, 415, "unsupported_media_type")
    assert stored_files(server) == before


def test_a_decompression_bomb_is_refused(
    client: httpx.Client, server: ServerProcess, alice: TestUser
) -> None:
    bomb = bomb_png()
    assert len(bomb) < MAX_UPLOAD
    before = stored_files(server)
    started = time.monotonic()
    reply = client.post("/media", files={"file": ("bomb.png", bomb)}, headers=alice.headers)
    assert "pixels" in assert_error(reply, 413, "too_large")
    assert time.monotonic() - started < 5, "refused from the header, not after decoding"
    assert stored_files(server) == before
    assert client.get(server.base_url + "/healthz").status_code == 200


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"files": {"other": ("a.png", png())}}, 400),  # no `file` part
        ({"json": {"file": "aGVsbG8="}}, 400),  # not multipart
        ({"files": {"file": ("empty.png", b"")}}, 400),
    ],
)
def test_malformed_uploads(
    client: httpx.Client, alice: TestUser, kwargs: dict[str, Any], status: int
) -> None:
    assert_error(client.post("/media", headers=alice.headers, **kwargs), status, "bad_request")


def test_upload_requires_auth(client: httpx.Client) -> None:
    assert_error(client.post("/media", files={"file": ("a.png", png())}), 401, "unauthorized")


# --- who may read what ------------------------------------------------------------------------


def test_access_owner_member_outsider_and_deletion(
    client: httpx.Client, alice: TestUser, bob: TestUser, eve: TestUser
) -> None:
    media = upload(client, alice, png(20, 20, "yellow"))
    path = f"/media/{media['id']}"
    assert client.get(path, headers=alice.headers).status_code == 200
    # Not shared yet: bob may not read it, and cannot share it either.
    assert_error(client.get(path, headers=bob.headers), 404, "not_found")
    room = direct(client, alice, bob)
    send(client, bob, room, 404, kind="media", media_id=media["id"])
    # Shared in their room: bob may read it, eve (no member) may not.
    message = send(client, alice, room, kind="media", media_id=media["id"], body="look").json()
    assert (message["kind"], message["media_id"], message["body"]) == ("media", media["id"], "look")
    assert client.get(path, headers=bob.headers).status_code == 200
    assert client.get(path + "/thumbnail?size=64", headers=bob.headers).status_code == 200
    assert_error(client.get(path, headers=eve.headers), 404, "not_found")
    assert_error(client.get(path + "/thumbnail", headers=eve.headers), 404, "not_found")
    # A deleted message no longer shares its media.
    ok(client.delete(f"/rooms/{room}/messages/{message['id']}", headers=alice.headers), 204)
    assert_error(client.get(path, headers=bob.headers), 404, "not_found")
    assert client.get(path, headers=alice.headers).status_code == 200
    assert_error(client.get("/media/no-such-media", headers=alice.headers), 404, "not_found")
    assert_error(client.get(path), 401, "unauthorized")


def test_signed_urls(client: httpx.Client, server: ServerProcess, alice: TestUser) -> None:
    data = png(8, 8, "black")
    media = upload(client, alice, data)
    with httpx.Client(base_url=server.base_url, timeout=10) as anonymous:
        reply = anonymous.get(media["url"])  # no Authorization header
        assert reply.status_code == 200 and reply.content == data
        thumb = anonymous.get(media["url"].replace("?", "/thumbnail?", 1) + "&size=64")
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/png"
        path, query = media["url"].split("?")
        params = dict(item.split("=", 1) for item in query.split("&"))
        tampered = {
            **params,
            "sig": params["sig"][:-2] + ("AA" if params["sig"][-2:] != "AA" else "BB"),
        }
        assert_error(anonymous.get(path, params=tampered), 401, "unauthorized")
        later = {**params, "exp": str(int(params["exp"]) + 3600)}
        assert_error(anonymous.get(path, params=later), 401, "unauthorized")
        other = upload(client, alice, png(9, 9, "black"))
        assert_error(
            anonymous.get(f"/api/v1/media/{other['id']}", params=params), 401, "unauthorized"
        )
        expired = int(time.time()) - 10
        stale = {"exp": str(expired), "sig": sign(server, media["id"], expired)}
        assert_error(anonymous.get(path, params=stale), 401, "unauthorized")
        # The derivation is the documented one: a fresh signature of ours is accepted.
        fresh = int(time.time()) + 60
        good = {"exp": str(fresh), "sig": sign(server, media["id"], fresh)}
        assert anonymous.get(path, params=good).status_code == 200


def test_thumbnails(client: httpx.Client, alice: TestUser) -> None:
    media = upload(client, alice, png(300, 150, "red", "RGBA"))
    reply = client.get(f"/media/{media['id']}/thumbnail?size=100", headers=alice.headers)
    assert reply.status_code == 200 and reply.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(reply.content)) as image:
        assert max(image.size) <= 100 and image.size[0] == 2 * image.size[1]
    etag = reply.headers["etag"]
    again = client.get(
        f"/media/{media['id']}/thumbnail?size=100",
        headers={**alice.headers, "If-None-Match": etag},
    )
    assert again.status_code == 304
    photo = upload(client, alice, jpeg(640, 480), name="photo.jpg")
    reply = client.get(f"/media/{photo['id']}/thumbnail", headers=alice.headers)  # size=256
    assert reply.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(reply.content)) as image:
        assert image.format == "JPEG" and max(image.size) <= 256
    pdf = upload(client, alice, PDF, name="a.pdf")
    assert_error(
        client.get(f"/media/{pdf['id']}/thumbnail", headers=alice.headers), 400, "bad_request"
    )
    assert_error(
        client.get(f"/media/{media['id']}/thumbnail?size=8", headers=alice.headers),
        400,
        "bad_request",
    )
    assert_error(
        client.get(f"/media/{media['id']}/thumbnail?size=big", headers=alice.headers),
        400,
        "bad_request",
    )


# --- media and sticker messages ---------------------------------------------------------------


def test_media_message_rules(client: httpx.Client, alice: TestUser, bob: TestUser) -> None:
    room = direct(client, alice, bob)
    mine = upload(client, alice, png(5, 5, "white"))
    send(client, alice, room, 400, kind="media")  # no media_id
    send(client, alice, room, 400, kind="text", body="hi", media_id=mine["id"])
    send(client, alice, room, 400, kind="text", body="hi", sticker_id="x")
    send(client, alice, room, 404, kind="media", media_id="no-such-media")
    send(client, alice, room, 404, kind="sticker", sticker_id="no-such-sticker")
    caption_free = send(client, alice, room, kind="media", media_id=mine["id"]).json()
    assert caption_free["body"] == "" and caption_free["media_id"] == mine["id"]


def test_media_message_over_websocket(
    client: httpx.Client, server: ServerProcess, alice: TestUser, bob: TestUser
) -> None:
    room = direct(client, alice, bob)
    media = upload(client, alice, png(6, 6, "gray"))

    async def main() -> None:
        async with WSClient.connect(server.ws_url, alice.access_token) as ws:
            message = await ws.send_message(room, "", kind="media", media_id=media["id"])
            assert message["kind"] == "media" and message["media_id"] == media["id"]
            refused = await ws.send(room, "", kind="media", media_id="not-visible")
            assert refused["type"] == "error" and refused["code"] == "not_found"

    asyncio.run(main())
    assert client.get(f"/media/{media['id']}", headers=bob.headers).status_code == 200


# --- sticker packs ----------------------------------------------------------------------------


def import_pack(server: ServerProcess, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "stickers", "import", str(path), "--config", str(server.config_path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=server.folder,
    )


def test_sticker_packs_from_a_folder_and_a_zip(
    client: httpx.Client,
    server: ServerProcess,
    alice: TestUser,
    bob: TestUser,
    eve: TestUser,
    tmp_path: Path,
) -> None:
    folder = tmp_path / "Happy Cats"
    folder.mkdir()
    (folder / "a.png").write_bytes(png(32, 32, "orange"))
    (folder / "b.webp").write_bytes(_webp())
    (folder / "README.txt").write_text("not a sticker")
    (folder / "pack.json").write_text(
        json.dumps(
            {
                "name": "Happy Cats",
                "stickers": [{"file": "b.webp", "emoji": "😺"}, {"file": "a.png"}],
            }
        )
    )
    done = import_pack(server, folder)
    assert done.returncode == 0, done.stderr
    archive = tmp_path / "dogs.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("dogs/1.png", png(16, 16, "brown"))
        zf.writestr("dogs/2.png", png(16, 16, "tan"))
    done = import_pack(server, archive)
    assert done.returncode == 0, done.stderr

    packs = ok(client.get("/sticker-packs", headers=eve.headers))["packs"]
    by_name = {pack["name"]: pack for pack in packs}
    cats, dogs = by_name["Happy Cats"], by_name["dogs"]
    assert [s.get("emoji") for s in cats["stickers"]] == ["😺", None]
    assert len(dogs["stickers"]) == 2
    assert ok(client.get(f"/sticker-packs/{cats['id']}", headers=eve.headers)) == cats
    assert_error(client.get("/sticker-packs/no-such-pack", headers=eve.headers), 404, "not_found")
    sticker = cats["stickers"][0]
    assert set(sticker) == {"id", "emoji", "media_id", "url"}
    with httpx.Client(base_url=server.base_url, timeout=10) as anonymous:
        image = anonymous.get(sticker["url"])
        assert image.status_code == 200 and image.headers["content-type"] == "image/webp"
        assert image.headers["etag"]
    # Sticker images are readable by everyone; a sticker message carries a valid sticker_id.
    assert client.get(f"/media/{sticker['media_id']}", headers=eve.headers).status_code == 200
    room = direct(client, alice, bob)
    message = send(client, alice, room, kind="sticker", sticker_id=sticker["id"]).json()
    assert message["kind"] == "sticker" and message["sticker_id"] == sticker["id"]
    # Importing again changes nothing: the same ids, so old messages still point somewhere.
    assert import_pack(server, folder).returncode == 0
    again = ok(client.get(f"/sticker-packs/{cats['id']}", headers=eve.headers))
    assert [s["id"] for s in again["stickers"]] == [s["id"] for s in cats["stickers"]]


def _webp() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 24), "purple").save(buffer, "WEBP")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "member", ["../evil.png", "/abs/evil.png", "pack/../../evil.png", "C:/evil.png"]
)
def test_zip_slip_is_refused(
    client: httpx.Client, server: ServerProcess, alice: TestUser, tmp_path: Path, member: str
) -> None:
    archive = tmp_path / "slip.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ok.png", png(8, 8))
        info = zipfile.ZipInfo("placeholder")
        info.filename = member  # ZipInfo would normalise some names; write them as they are
        zf.writestr(info, png(8, 8))
    done = import_pack(server, archive)
    assert done.returncode != 0
    assert "outside the pack" in done.stderr and "Traceback" not in done.stderr
    names = [p["name"] for p in ok(client.get("/sticker-packs", headers=alice.headers))["packs"]]
    assert "slip" not in names
    assert not (tmp_path / "evil.png").exists() and not (server.folder / "evil.png").exists()


def test_a_pack_of_something_else_is_refused(server: ServerProcess, tmp_path: Path) -> None:
    folder = tmp_path / "fake"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"<html>not an image</html>")
    done = import_pack(server, folder)
    assert done.returncode != 0 and "a.png" in done.stderr


# --- the profile ------------------------------------------------------------------------------


def test_profile_and_avatar(client: httpx.Client, alice: TestUser, eve: TestUser) -> None:
    user = new_user(client)
    renamed = ok(client.patch("/me", json={"display_name": "  New Name "}, headers=user.headers))
    assert renamed["display_name"] == "New Name" and "avatar_media_id" not in renamed
    avatar = upload(client, user, png(50, 50, "pink"))
    # Before it is an avatar, the image is private.
    assert_error(client.get(f"/media/{avatar['id']}", headers=eve.headers), 404, "not_found")
    changed = ok(client.patch("/me", json={"avatar_media_id": avatar["id"]}, headers=user.headers))
    assert changed["avatar_media_id"] == avatar["id"]
    assert ok(client.get("/me", headers=user.headers))["avatar_media_id"] == avatar["id"]
    assert (
        ok(client.get(f"/users/{user.id}", headers=eve.headers))["avatar_media_id"] == avatar["id"]
    )
    # An avatar is public: whoever sees the user may load it.
    assert client.get(f"/media/{avatar['id']}", headers=eve.headers).status_code == 200
    # Someone else's private media, a file that is no image, a wrong type: refused.
    private = upload(client, alice, png(7, 7, "cyan"))
    reply = client.patch("/me", json={"avatar_media_id": private["id"]}, headers=user.headers)
    assert_error(reply, 404, "not_found")
    pdf = upload(client, user, PDF, name="a.pdf")
    reply = client.patch("/me", json={"avatar_media_id": pdf["id"]}, headers=user.headers)
    assert_error(reply, 400, "bad_request")
    for bad in (
        {"avatar_media_id": 5},
        {"display_name": ""},
        {"display_name": None},
        {"nick": "x"},
    ):
        assert_error(client.patch("/me", json=bad, headers=user.headers), 400, "bad_request")
    assert ok(client.get("/me", headers=user.headers))["avatar_media_id"] == avatar["id"]
    cleared = ok(client.patch("/me", json={"avatar_media_id": None}, headers=user.headers))
    assert "avatar_media_id" not in cleared and cleared["display_name"] == "New Name"
    assert_error(client.patch("/me", json={"display_name": "x"}), 401, "unauthorized")


# --- discovery and documentation --------------------------------------------------------------


def test_info_reports_media_and_stickers(client: httpx.Client) -> None:
    info = ok(client.get("/info"))
    assert {"media", "stickers"} <= set(info["features"])
    assert info["limits"]["max_upload_bytes"] == MAX_UPLOAD


def test_openapi_documents_media_endpoints(client: httpx.Client) -> None:
    document = ok(client.get("/openapi.json"))
    paths = document["paths"]
    upload_op = paths["/api/v1/media"]["post"]
    form = upload_op["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form == {"$ref": "#/components/schemas/UploadForm"}
    assert {"201", "400", "401", "413", "415"} <= set(upload_op["responses"])
    download = paths["/api/v1/media/{media_id}"]["get"]
    assert {"200", "206", "304", "401", "404", "416"} <= set(download["responses"])
    assert {"200", "400", "404"} <= set(
        paths["/api/v1/media/{media_id}/thumbnail"]["get"]["responses"]
    )
    assert "patch" in paths["/api/v1/me"]
    assert (
        "get" in paths["/api/v1/sticker-packs"]
        and "get" in paths["/api/v1/sticker-packs/{pack_id}"]
    )
    schemas = document["components"]["schemas"]
    assert set(schemas["MediaBody"]["required"]) == MEDIA_KEYS
    assert set(schemas["Pack"]["required"]) == {"id", "name", "stickers"}
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(document)
