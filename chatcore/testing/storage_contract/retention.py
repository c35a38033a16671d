"""The storage contract, retention: rooms' own settings, deleting old messages and unused media,
and the lease of cluster-wide jobs (`RetentionStorage`)."""

from __future__ import annotations

import pytest

from chatcore.interfaces import Storage
from chatcore.models import Room, Sticker, StickerPack
from chatcore.testing.storage_contract.base import (
    ContractBase,
    draft,
    gather,
    make_users,
    seqs,
    store,
)
from chatcore.testing.storage_contract.media import media_row


async def room_with_messages(storage: Storage, *timestamps: int) -> Room:
    """A group room of alice and bob with one message of alice's per timestamp, in order."""
    alice, bob = await make_users(storage, "alice", "bob")
    room = await storage.create_group_room(alice.id, "g", [bob.id], 1)
    for n, ts in enumerate(timestamps):
        await store(storage, draft(room, alice, f"r{n}", ts=ts))
    return room


class RetentionContract(ContractBase):
    """Retention: `RetentionStorage`."""

    @pytest.mark.anyio
    async def test_a_rooms_own_setting_reads_back_and_none_is_the_default(
        self, storage: Storage
    ) -> None:
        room = await room_with_messages(storage)
        assert await storage.get_room_retention(room.id) is None
        await storage.set_room_retention(room.id, 30, 5)
        assert await storage.get_room_retention(room.id) == 30
        await storage.set_room_retention(room.id, 7, 6)
        assert await storage.get_room_retention(room.id) == 7
        await storage.set_room_retention(room.id, None, 7)
        assert await storage.get_room_retention(room.id) is None
        assert await storage.get_room_retention("no-such-room\x00") is None

    @pytest.mark.anyio
    async def test_retention_rooms_pages_every_room_or_only_those_with_a_setting(
        self, storage: Storage
    ) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        made = [await storage.create_group_room(alice.id, f"g{n}", [bob.id], 1) for n in range(5)]
        ids = sorted(room.id for room in made)
        await storage.set_room_retention(ids[1], 10, 1)
        await storage.set_room_retention(ids[3], 20, 1)
        first = await storage.retention_rooms("", 3, every_room=True)
        rest = await storage.retention_rooms(first[-1][0], 3, every_room=True)
        assert first + rest == [
            (ids[0], None),
            (ids[1], 10),
            (ids[2], None),
            (ids[3], 20),
            (ids[4], None),
        ]
        assert await storage.retention_rooms("", 10, every_room=False) == [
            (ids[1], 10),
            (ids[3], 20),
        ]
        assert await storage.retention_rooms(ids[1], 10, every_room=False) == [(ids[3], 20)]

    @pytest.mark.anyio
    async def test_purge_deletes_the_oldest_messages_in_bounded_batches(
        self, storage: Storage
    ) -> None:
        room = await room_with_messages(storage, *(1_000 + n for n in range(10)))
        assert await storage.first_seq(room.id) == 1
        # Seqs 1..7 have ts below 1_007; a batch of 3 deletes 3 of them.
        first = await storage.purge_messages(room.id, 1_007, 3)
        assert first.count == 3
        assert await storage.first_seq(room.id) == 4
        second = await storage.purge_messages(room.id, 1_007, 100)
        assert second.count == 4  # fewer than the limit: nothing older is left
        assert (await storage.purge_messages(room.id, 1_007, 100)).count == 0
        assert await storage.first_seq(room.id) == 8
        # What remains reads as the whole room: catch-up from 0, history into the deleted range.
        assert seqs(await storage.messages_after(room.id, 0, 100)) == [8, 9, 10]
        assert seqs(await storage.messages_before(room.id, None, 100)) == [10, 9, 8]
        assert await storage.messages_before(room.id, 5, 100) == []
        # The room's last seq stays, so a new message never reuses a deleted seq.
        alice_id = room.owner_id
        assert alice_id is not None
        assert (await storage.room_seqs(alice_id))[room.id] == 10
        [new] = await store(storage, draft(room, alice_id, "after-purge", ts=2_000))
        assert new.seq == 11

    @pytest.mark.anyio
    async def test_purge_stops_at_the_first_newer_message(self, storage: Storage) -> None:
        # Seq 2 is newer than seq 3 (two nodes' clocks): 3 waits until 2 is old enough too, so
        # what remains stays one range of seqs.
        room = await room_with_messages(storage, 100, 900, 200, 300)
        assert (await storage.purge_messages(room.id, 500, 100)).count == 1
        assert seqs(await storage.messages_after(room.id, 0, 100)) == [2, 3, 4]
        assert (await storage.purge_messages(room.id, 1_000, 100)).count == 3
        assert await storage.messages_after(room.id, 0, 100) == []
        assert await storage.first_seq(room.id) == 5  # nothing left: past the last seq

    @pytest.mark.anyio
    async def test_purge_names_the_media_of_the_deleted_messages(self, storage: Storage) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        room = await storage.create_group_room(alice.id, "g", [bob.id], 1)
        await storage.create_media(media_row("media-old", alice.id, created_ts=10))
        await store(
            storage,
            draft(room, alice, "m1", kind="media", body="", media_id="media-old", ts=100),
            draft(room, alice, "t1", ts=110),
            draft(room, alice, "m2", kind="media", body="", media_id="media-old", ts=120),
        )
        purged = await storage.purge_messages(room.id, 1_000, 100)
        assert purged.count == 3
        assert purged.media_ids == ("media-old",)

    @pytest.mark.anyio
    async def test_first_seq_of_rooms_without_messages(self, storage: Storage) -> None:
        room = await room_with_messages(storage)
        assert await storage.first_seq(room.id) == 1
        assert await storage.first_seq("no-such-room") == 0

    @pytest.mark.anyio
    async def test_purge_media_deletes_only_old_media_nothing_uses(self, storage: Storage) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        room = await storage.create_group_room(alice.id, "g", [bob.id], 1)
        sha = {name: f"{n:064x}" for n, name in enumerate(("a", "b", "c", "d", "e", "f"), 1)}
        rows = {
            "in-message": media_row("in-message", alice.id, sha256=sha["a"], created_ts=10),
            "avatar": media_row("avatar", alice.id, sha256=sha["b"], created_ts=10),
            "sticker": media_row("sticker", None, sha256=sha["c"], created_ts=10),
            "unused": media_row("unused", alice.id, sha256=sha["d"], created_ts=10),
            "unused-new": media_row("unused-new", alice.id, sha256=sha["e"], created_ts=5_000),
            # Two rows of the same content: its bytes stay while one of them does.
            "twin-1": media_row("twin-1", alice.id, sha256=sha["f"], created_ts=10),
            "twin-2": media_row("twin-2", bob.id, sha256=sha["f"], created_ts=5_000),
        }
        for row in rows.values():
            await storage.create_media(row)
        await store(storage, draft(room, alice, "m", kind="media", body="", media_id="in-message"))
        await storage.update_profile(alice.id, {"avatar_media_id": "avatar"})
        sticker = Sticker(id="sticker-1", pack_id="pack-1", media_id="sticker")
        await storage.put_sticker_pack(StickerPack(id="pack-1", name="p", stickers=(sticker,)), 1)

        only = await storage.purge_media(1_000, 100, only=["in-message", "unused-new", "twin-1"])
        assert only.count == 1
        assert only.unused_sha256 == ()  # twin-2 still names the content
        assert await storage.get_media("twin-1") is None

        swept = await storage.purge_media(1_000, 100)
        assert swept.count == 1
        assert swept.unused_sha256 == (sha["d"],)
        kept = {name for name in rows if await storage.get_media(name) is not None}
        assert kept == {"in-message", "avatar", "sticker", "unused-new", "twin-2"}

        later = await storage.purge_media(10_000, 1)
        assert later.count == 1  # the limit: one of unused-new and twin-2
        assert (await storage.purge_media(10_000, 1)).count == 1
        assert (await storage.purge_media(10_000, 1)).count == 0

    @pytest.mark.anyio
    async def test_a_lease_is_held_by_one_holder_until_it_expires(self, storage: Storage) -> None:
        assert await storage.claim_lease("job", "node-a", 1_000, 500)
        assert not await storage.claim_lease("job", "node-b", 1_200, 500)
        assert await storage.claim_lease("job", "node-a", 1_400, 500)  # renewed: until 1_900
        assert not await storage.claim_lease("job", "node-b", 1_800, 500)
        assert await storage.claim_lease("job", "node-b", 1_900, 500)  # expired: taken over
        assert not await storage.claim_lease("job", "node-a", 2_000, 500)
        assert await storage.claim_lease("other-job", "node-a", 2_000, 500)  # leases are by name

    @pytest.mark.anyio
    async def test_a_released_lease_is_free_at_once(self, storage: Storage) -> None:
        assert await storage.claim_lease("job", "node-a", 1_000, 60_000)
        await storage.release_lease("job", "node-b")  # not its lease: nothing changes
        assert not await storage.claim_lease("job", "node-b", 1_001, 60_000)
        await storage.release_lease("job", "node-a")
        assert await storage.claim_lease("job", "node-b", 1_002, 60_000)

    @pytest.mark.anyio
    async def test_concurrent_claims_on_two_nodes_have_one_winner(
        self, storage: Storage, other_node: Storage
    ) -> None:
        for round_ts in (10_000, 20_000, 30_000):  # a free lease, then expired ones
            answers = await gather(
                *(
                    node.claim_lease("job", f"{name}-{n}", round_ts, 5_000)
                    for n in range(4)
                    for node, name in ((storage, "a"), (other_node, "b"))
                )
            )
            assert not [a for a in answers if isinstance(a, BaseException)], answers
            assert answers.count(True) == 1, answers
