"""The storage contract, rooms, members, room lists and read receipts: `RoomStorage`."""

from __future__ import annotations

import pytest

from chatcore.errors import ChatError, ErrorCode
from chatcore.interfaces import Storage
from chatcore.models import User
from chatcore.testing.storage_contract.base import ContractBase, draft, gather, make_users, store


class RoomsContract(ContractBase):
    """Rooms, members, room lists and read receipts: `RoomStorage`."""

    # --- direct rooms ------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_direct_room_is_one_per_pair(self, storage: Storage) -> None:
        alice, bob, carol = await make_users(storage, "alice", "bob", "carol")
        room, was_created = await storage.create_direct_room(alice.id, bob.id, now_ts=1_000)
        assert was_created is True
        assert (room.kind, room.name, room.owner_id, room.last_seq) == ("direct", None, None, 0)
        assert (room.created_ts, room.last_ts) == (1_000, 1_000)
        assert room.member_ids == tuple(sorted((alice.id, bob.id)))  # joined together: by id
        assert await storage.get_room(room.id) == room
        # Either of the two asking again gets the same room, unchanged.
        assert await storage.create_direct_room(bob.id, alice.id, now_ts=2_000) == (room, False)
        assert await storage.create_direct_room(alice.id, bob.id, now_ts=3_000) == (room, False)
        other, was_created = await storage.create_direct_room(alice.id, carol.id, now_ts=4_000)
        assert was_created is True and other.id != room.id
        assert await storage.direct_peers(alice.id) == sorted((bob.id, carol.id))
        assert await storage.direct_peers(bob.id) == [alice.id]

    @pytest.mark.anyio
    async def test_direct_room_needs_two_existing_users(self, storage: Storage) -> None:
        (alice,) = await make_users(storage, "alice")
        for peer in ("no-such-user", alice.id):
            with pytest.raises(ChatError) as caught:
                await storage.create_direct_room(alice.id, peer, now_ts=1_000)
            assert caught.value.code is ErrorCode.BAD_REQUEST
        assert await storage.list_rooms(alice.id) == []

    @pytest.mark.anyio
    async def test_concurrent_direct_room_creation_makes_one_room(self, storage: Storage) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        pairs = [(alice.id, bob.id), (bob.id, alice.id)] * 4
        results = await gather(*(storage.create_direct_room(a, b, now_ts=1_000) for a, b in pairs))
        assert len({room.id for room, _ in results}) == 1, results
        assert sorted(was_created for _, was_created in results) == [False] * 7 + [True]
        assert [view.room.id for view in await storage.list_rooms(alice.id)] == [results[0][0].id]

    @pytest.mark.anyio
    async def test_direct_room_from_two_nodes_at_once_is_one_room(
        self, storage: Storage, other_node: Storage
    ) -> None:
        users = await make_users(storage, "u0", "u1", "u2", "u3")
        pairs = [(users[0].id, users[i].id) for i in (1, 2, 3)]
        calls = [
            node.create_direct_room(*(pair if flip else pair[::-1]), now_ts=1_000)
            for pair in pairs
            for node in (storage, other_node)
            for flip in (True, False)
        ]
        results = await gather(*calls)
        assert not [r for r in results if isinstance(r, BaseException)], results
        for i, pair in enumerate(pairs):
            mine = results[4 * i : 4 * i + 4]
            assert len({room.id for room, _ in mine}) == 1, mine
            assert sorted(was_created for _, was_created in mine) == [False, False, False, True]
            assert set(mine[0][0].member_ids) == set(pair)
        assert len(await other_node.list_rooms(users[0].id)) == 3

    # --- group rooms and membership ------------------------------------------------------------

    @pytest.mark.anyio
    async def test_group_room_has_the_owner_and_each_member_once(self, storage: Storage) -> None:
        owner, bob, carol = await make_users(storage, "owner", "bob", "carol")
        members = [carol.id, bob.id, carol.id, owner.id]
        room = await storage.create_group_room(owner.id, "Book club", members, now_ts=1_000)
        assert (room.kind, room.name, room.owner_id, room.last_seq) == (
            "group",
            "Book club",
            owner.id,
            0,
        )
        assert (room.created_ts, room.last_ts) == (1_000, 1_000)
        assert room.member_ids == tuple(sorted((owner.id, bob.id, carol.id)))
        assert await storage.get_room(room.id) == room
        alone = await storage.create_group_room(owner.id, "Notes", [], now_ts=2_000)
        assert alone.member_ids == (owner.id,) and alone.id != room.id
        assert await storage.direct_peers(owner.id) == []  # groups make no direct peers

    @pytest.mark.anyio
    async def test_group_room_with_an_unknown_user_is_refused(self, storage: Storage) -> None:
        owner, bob = await make_users(storage, "owner", "bob")
        with pytest.raises(ChatError) as caught:
            await storage.create_group_room(owner.id, "Club", [bob.id, "ghost"], now_ts=1_000)
        assert caught.value.code is ErrorCode.BAD_REQUEST
        assert "Unknown user" in caught.value.message and "ghost" in caught.value.message
        assert await storage.list_rooms(owner.id) == [] and await storage.list_rooms(bob.id) == []

    @pytest.mark.anyio
    async def test_unknown_room(self, storage: Storage) -> None:
        (alice,) = await make_users(storage, "alice")
        assert await storage.get_room("no-such-room") is None
        assert await storage.room_view("no-such-room", alice.id) is None
        assert await storage.remove_member("no-such-room", alice.id) is None
        assert await storage.mark_read("no-such-room", alice.id, 1) is None
        assert await storage.messages_after("no-such-room", 0, 10) == []
        assert await storage.messages_before("no-such-room", None, 10) == []
        with pytest.raises(ChatError) as caught:
            await storage.add_member("no-such-room", alice.id, now_ts=1_000)
        assert caught.value.code is ErrorCode.NOT_FOUND

    @pytest.mark.anyio
    async def test_add_and_remove_members(self, storage: Storage) -> None:
        owner, zed, amy = await make_users(storage, "owner", "zed", "amy")
        room = await storage.create_group_room(owner.id, "Club", [], now_ts=1_000)
        after = await storage.add_member(room.id, zed.id, now_ts=2_000)
        assert after is not None and after.member_ids == (owner.id, zed.id)
        after = await storage.add_member(room.id, amy.id, now_ts=3_000)
        # Members are listed in the order they joined, whatever their ids.
        assert after is not None and after.member_ids == (owner.id, zed.id, amy.id)
        assert await storage.add_member(room.id, zed.id, now_ts=4_000) is None  # already in
        assert await storage.get_room(room.id) == after
        after = await storage.remove_member(room.id, zed.id)
        assert after is not None and after.member_ids == (owner.id, amy.id)
        assert after.owner_id == owner.id  # a member leaving changes no ownership
        assert await storage.remove_member(room.id, zed.id) is None  # not a member any more
        assert [view.room.id for view in await storage.list_rooms(zed.id)] == []
        assert await storage.room_view(room.id, zed.id) is None
        with pytest.raises(ChatError) as caught:
            await storage.add_member(room.id, "ghost", now_ts=5_000)
        assert caught.value.code is ErrorCode.BAD_REQUEST

    @pytest.mark.anyio
    async def test_owner_leaving_passes_ownership_to_the_earliest_member(
        self, storage: Storage
    ) -> None:
        owner, first, second = await make_users(storage, "owner", "first", "second")
        room = await storage.create_group_room(owner.id, "Club", [], now_ts=1_000)
        await storage.add_member(room.id, second.id, now_ts=5_000)
        await storage.add_member(room.id, first.id, now_ts=3_000)  # joined earlier in time
        after = await storage.remove_member(room.id, owner.id)
        assert after is not None and after.owner_id == first.id
        assert after.member_ids == (first.id, second.id)
        after = await storage.remove_member(room.id, first.id)
        assert after is not None and (after.owner_id, after.member_ids) == (second.id, (second.id,))
        after = await storage.remove_member(room.id, second.id)
        assert after is not None and (after.owner_id, after.member_ids) == (None, ())
        assert await storage.get_room(room.id) == after

    # --- room lists, unread counts, read receipts ----------------------------------------------

    @pytest.mark.anyio
    async def test_rooms_are_listed_most_recently_active_first(self, storage: Storage) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        old = await storage.create_group_room(alice.id, "old", [bob.id], now_ts=100)
        direct, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=200)
        new = await storage.create_group_room(alice.id, "new", [], now_ts=300)

        async def order(user: User) -> list[str]:
            return [view.room.id for view in await storage.list_rooms(user.id)]

        assert await order(alice) == [new.id, direct.id, old.id]  # by creation
        assert await order(bob) == [direct.id, old.id]  # only their own rooms
        await store(storage, draft(old, bob, "m1", ts=400))
        assert await order(alice) == [old.id, new.id, direct.id]  # by last message
        await store(storage, draft(direct, alice, "m2", ts=500))
        assert await order(alice) == [direct.id, old.id, new.id]
        views = await storage.list_rooms(alice.id)
        assert (views[0].room.last_seq, views[0].room.last_ts) == (1, 500)
        assert views[0].last_message is not None and views[0].last_message.ref == "m2"
        assert views[2].last_message is None and views[2].room.last_seq == 0
        for view in views:  # room_view shows a room as the list does
            assert await storage.room_view(view.room.id, alice.id) == view
        assert await storage.room_seqs(alice.id) == {old.id: 1, direct.id: 1, new.id: 0}
        assert await storage.room_seqs(bob.id) == {old.id: 1, direct.id: 1}

    @pytest.mark.anyio
    async def test_unread_counts_non_deleted_messages_of_others(self, storage: Storage) -> None:
        alice, bob, carol = await make_users(storage, "alice", "bob", "carol")
        room = await storage.create_group_room(alice.id, "Club", [bob.id, carol.id], now_ts=1)
        sent = await store(
            storage,
            draft(room, alice, "a1"),  # 1
            draft(room, bob, "b1"),  # 2
            draft(room, carol, "c1"),  # 3
            draft(room, bob, "b2"),  # 4
            draft(room, alice, "a2"),  # 5
        )

        async def unread(user: User) -> tuple[int, int]:
            view = await storage.room_view(room.id, user.id)
            assert view is not None
            assert [v for v in await storage.list_rooms(user.id) if v.room.id == room.id] == [view]
            return view.unread, view.read_seq

        assert await unread(alice) == (3, 0)  # her own two do not count
        assert await unread(bob) == (3, 0)
        assert await storage.delete_message(room.id, sent[1].id, now_ts=10) is not None
        assert await unread(alice) == (2, 0)  # a deleted one does not count
        assert await unread(bob) == (3, 0)  # nor does deleting your own change your count
        assert await storage.mark_read(room.id, alice.id, 3) == 3
        assert await unread(alice) == (1, 3)  # only b2 (seq 4) is above seq 3
        assert await storage.mark_read(room.id, alice.id, 5) == 5
        assert await unread(alice) == (0, 5)
        await store(storage, draft(room, carol, "c2"))
        assert await unread(alice) == (1, 5)

    @pytest.mark.anyio
    async def test_read_seq_is_clamped_and_never_moves_back(self, storage: Storage) -> None:
        alice, bob, carol = await make_users(storage, "alice", "bob", "carol")
        room, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=1)
        assert await storage.mark_read(room.id, alice.id, 5) is None  # nothing to read yet
        await store(storage, *(draft(room, bob, f"b{i}") for i in range(4)))
        assert await storage.mark_read(room.id, alice.id, 2) == 2
        assert await storage.mark_read(room.id, alice.id, 1) is None  # backwards: ignored
        assert await storage.mark_read(room.id, alice.id, 2) is None  # no move
        assert await storage.mark_read(room.id, alice.id, 10**6) == 4  # clamped to last_seq
        assert await storage.mark_read(room.id, alice.id, 10**6) is None
        assert await storage.mark_read(room.id, carol.id, 3) is None  # not a member
        view = await storage.room_view(room.id, alice.id)
        assert view is not None and (view.read_seq, view.unread) == (4, 0)
        other = await storage.room_view(room.id, bob.id)
        assert other is not None and other.read_seq == 0  # per member
        # Concurrent receipts: the highest wins, whatever order they land in.
        await store(storage, *(draft(room, bob, f"c{i}") for i in range(6)))
        await gather(*(storage.mark_read(room.id, alice.id, s) for s in (7, 10, 5, 9, 6, 8)))
        view = await storage.room_view(room.id, alice.id)
        assert view is not None and view.read_seq == 10
