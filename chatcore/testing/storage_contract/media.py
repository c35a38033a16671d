"""The storage contract, media metadata: `MediaStorage`."""

from __future__ import annotations

from typing import Any

import pytest

from chatcore.interfaces import Storage
from chatcore.models import Media, Sticker, StickerPack
from chatcore.testing.storage_contract.base import ContractBase, draft, make_users, store


def media_row(media_id: str, uploader_id: str | None, **fields: Any) -> Media:
    """A media row (`fields` override content_type, size, sha256, width, height, filename)."""
    values: dict[str, Any] = {
        "content_type": "image/png",
        "size": 1234,
        "sha256": "ab" * 32,
        "width": 640,
        "height": 480,
        "filename": "holiday photo.png",
        "created_ts": 7_000,
        **fields,
    }
    return Media(id=media_id, uploader_id=uploader_id, **values)


class MediaContract(ContractBase):
    """Media metadata: `MediaStorage`."""

    @pytest.mark.anyio
    async def test_created_media_reads_back_as_stored(self, storage: Storage) -> None:
        (alice,) = await make_users(storage, "alice")
        photo = media_row("media-photo", alice.id)
        doc = media_row(
            "media-doc", alice.id, content_type="application/pdf", width=None, height=None
        )
        asset = media_row("media-asset", None, filename=None)  # a sticker asset: no uploader
        for item in (photo, doc, asset):
            assert await storage.create_media(item) == item
            assert await storage.get_media(item.id) == item
        assert not doc.is_image and photo.is_image

    @pytest.mark.anyio
    async def test_creating_an_existing_id_returns_the_first_row(self, storage: Storage) -> None:
        """Sticker assets use ids derived from their content: a re-import reuses the row."""
        first = media_row("media-same", None, created_ts=1)
        assert await storage.create_media(first) == first
        again = media_row("media-same", None, created_ts=2, size=99, filename="other.png")
        assert await storage.create_media(again) == first
        assert await storage.get_media("media-same") == first

    @pytest.mark.anyio
    async def test_unknown_media_is_none(self, storage: Storage) -> None:
        assert await storage.get_media("no-such-media") is None
        assert await storage.get_media("no-such-media\x00") is None
        assert await storage.media_shared_with("no-such-media\x00", "no-such-user\x00") is False

    @pytest.mark.anyio
    async def test_media_is_shared_by_live_media_messages_with_room_members(
        self, storage: Storage
    ) -> None:
        alice, bob, carol = await make_users(storage, "alice", "bob", "carol")
        photo = await storage.create_media(media_row("media-photo", alice.id))
        # Uploading alone shares it with nobody, the uploader included (that is another reason).
        for user in (alice, bob, carol):
            assert await storage.media_shared_with(photo.id, user.id) is False
        room = await storage.create_group_room(alice.id, "team", [bob.id], now_ts=1)
        (sent,) = await store(
            storage, draft(room, alice, "p", kind="media", body="", media_id=photo.id)
        )
        assert await storage.media_shared_with(photo.id, alice.id) is True
        assert await storage.media_shared_with(photo.id, bob.id) is True
        assert await storage.media_shared_with(photo.id, carol.id) is False  # not a member
        await storage.remove_member(room.id, bob.id)
        assert await storage.media_shared_with(photo.id, bob.id) is False  # left the room
        await storage.delete_message(room.id, sent.id, now_ts=2)
        assert await storage.media_shared_with(photo.id, alice.id) is False  # deleted

    @pytest.mark.anyio
    async def test_sticker_images_and_avatars_are_shared_with_everyone(
        self, storage: Storage
    ) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        image = await storage.create_media(media_row("media-sticker", None))
        avatar = await storage.create_media(media_row("media-avatar", alice.id))
        assert await storage.media_shared_with(image.id, bob.id) is False
        assert await storage.media_shared_with(avatar.id, bob.id) is False
        sticker = Sticker(id="sticker-1", pack_id="pack-1", media_id=image.id)
        await storage.put_sticker_pack(StickerPack(id="pack-1", name="p", stickers=(sticker,)), 1)
        await storage.update_profile(alice.id, {"avatar_media_id": avatar.id})
        assert await storage.media_shared_with(image.id, bob.id) is True
        assert await storage.media_shared_with(avatar.id, bob.id) is True
        await storage.update_profile(alice.id, {"avatar_media_id": None})
        assert await storage.media_shared_with(avatar.id, bob.id) is False
