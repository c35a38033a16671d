"""The storage contract, sticker packs: `StickerStorage`."""

from __future__ import annotations

import pytest

from chatcore.interfaces import Storage
from chatcore.models import Sticker, StickerPack
from chatcore.testing.storage_contract.base import ContractBase
from chatcore.testing.storage_contract.media import media_row


async def with_images(storage: Storage, *ids: str) -> None:
    """Create the media rows (sticker assets, no uploader) the stickers of a test point at."""
    for media_id in ids:
        await storage.create_media(media_row(media_id, None))


def pack(pack_id: str, name: str, *stickers: tuple[str, str | None, str]) -> StickerPack:
    """A pack of (sticker id, emoji, media id) stickers, in that order."""
    return StickerPack(
        id=pack_id,
        name=name,
        stickers=tuple(
            Sticker(id=sticker_id, pack_id=pack_id, emoji=emoji, media_id=media_id)
            for sticker_id, emoji, media_id in stickers
        ),
    )


class StickersContract(ContractBase):
    """Sticker packs: `StickerStorage`."""

    @pytest.mark.anyio
    async def test_a_pack_reads_back_with_its_stickers_in_order(self, storage: Storage) -> None:
        await with_images(storage, "img-a", "img-b", "img-c")
        # Sticker ids out of alphabetical order: the pack's order is kept, not the ids'.
        cats = pack("cats", "Cats", ("s-z", "🐱", "img-a"), ("s-a", None, "img-b"))
        assert await storage.put_sticker_pack(cats, now_ts=1) == cats
        assert await storage.get_sticker_pack("cats") == cats
        assert await storage.get_sticker("s-z") == cats.stickers[0]
        assert await storage.get_sticker("s-a") == cats.stickers[1]
        # Two packs may share an image.
        dogs = pack("dogs", "Dogs", ("s-dog", "🐶", "img-a"), ("s-dog2", None, "img-c"))
        assert await storage.put_sticker_pack(dogs, now_ts=2) == dogs
        assert await storage.get_sticker("s-dog") == dogs.stickers[0]

    @pytest.mark.anyio
    async def test_packs_are_listed_by_name(self, storage: Storage) -> None:
        await with_images(storage, "img-a")
        zoo = pack("p1", "Zoo", ("s-1", None, "img-a"))
        apes = pack("p2", "Apes", ("s-2", None, "img-a"))
        empty = pack("p3", "Middle")
        for added in (zoo, apes, empty):
            await storage.put_sticker_pack(added, now_ts=1)
        assert await storage.list_sticker_packs() == [apes, empty, zoo]
        assert await storage.get_sticker_pack("p3") == empty

    @pytest.mark.anyio
    async def test_putting_a_pack_again_replaces_it(self, storage: Storage) -> None:
        await with_images(storage, "img-a", "img-b")
        first = pack("cats", "Cats", ("s-1", "🐱", "img-a"), ("s-2", None, "img-b"))
        await storage.put_sticker_pack(first, now_ts=1)
        second = pack("cats", "More cats", ("s-3", "😺", "img-b"), ("s-1", "😸", "img-a"))
        assert await storage.put_sticker_pack(second, now_ts=2) == second
        assert await storage.list_sticker_packs() == [second]
        assert await storage.get_sticker("s-2") is None  # dropped from the pack
        assert await storage.get_sticker("s-1") == second.stickers[1]  # moved, new emoji
        assert await storage.put_sticker_pack(pack("cats", "Cats"), now_ts=3) == pack(
            "cats", "Cats"
        )
        assert await storage.get_sticker("s-3") is None

    @pytest.mark.anyio
    async def test_unknown_packs_and_stickers_are_none(self, storage: Storage) -> None:
        assert await storage.list_sticker_packs() == []
        for unknown in ("no-such-id", "no-such-id\x00"):
            assert await storage.get_sticker_pack(unknown) is None
            assert await storage.get_sticker(unknown) is None
