"""The storage contract, room administration: roles, topics, mutes, bans and the room log
(`ModerationStorage`)."""

from __future__ import annotations

import pytest

from chatcore.errors import ChatError, ErrorCode
from chatcore.interfaces import Storage
from chatcore.models import RoomBan, RoomLogDraft, Stored
from chatcore.testing.storage_contract.base import ContractBase, draft, make_users, store


class ModerationContract(ContractBase):
    """Room administration: `ModerationStorage`."""

    # --- roles ---------------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_a_group_starts_with_its_owner_and_no_admins(self, storage: Storage) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        room = await storage.create_group_room(alice.id, "team", [bob.id], now_ts=1_000)
        assert (room.owner_id, room.admin_ids) == (alice.id, ())
        assert (room.role_of(alice.id), room.role_of(bob.id)) == ("owner", "member")
        assert (room.topic, room.avatar_media_id) == (None, None)
        direct, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=1_000)
        assert (direct.owner_id, direct.admin_ids) == (None, ())
        assert await storage.set_member_role(direct.id, bob.id, "admin") is None

    @pytest.mark.anyio
    async def test_roles_change_and_show_in_rooms_and_lists(self, storage: Storage) -> None:
        alice, bob, carol, dave = await make_users(storage, "alice", "bob", "carol", "dave")
        room = await storage.create_group_room(alice.id, "t", [bob.id, carol.id], now_ts=1_000)
        changed = await storage.set_member_role(room.id, carol.id, "admin")
        assert changed is not None and changed.admin_ids == (carol.id,)
        changed = await storage.set_member_role(room.id, bob.id, "admin")
        assert changed is not None and set(changed.admin_ids) == {bob.id, carol.id}
        assert await storage.get_room(room.id) == changed
        view = await storage.room_view(room.id, bob.id)
        assert view is not None and view.room == changed
        assert [v.room for v in await storage.list_rooms(carol.id)] == [changed]
        back = await storage.set_member_role(room.id, bob.id, "member")
        assert back is not None and back.admin_ids == (carol.id,)
        # Not a member, the owner, the role "owner", a room that does not exist: nothing.
        assert await storage.set_member_role(room.id, dave.id, "admin") is None
        assert await storage.set_member_role(room.id, alice.id, "member") is None
        assert await storage.set_member_role(room.id, bob.id, "owner") is None
        assert await storage.set_member_role("no-such-room", bob.id, "admin") is None
        assert (await storage.get_room(room.id)) == back

    @pytest.mark.anyio
    async def test_ownership_moves_and_the_old_owner_becomes_an_admin(
        self, storage: Storage
    ) -> None:
        alice, bob, carol = await make_users(storage, "alice", "bob", "carol")
        room = await storage.create_group_room(alice.id, "t", [bob.id], now_ts=1_000)
        moved = await storage.transfer_ownership(room.id, bob.id)
        assert moved is not None
        assert (moved.owner_id, moved.admin_ids) == (bob.id, (alice.id,))
        assert await storage.get_room(room.id) == moved
        assert await storage.transfer_ownership(room.id, bob.id) == moved  # owns it already
        assert await storage.transfer_ownership(room.id, carol.id) is None  # not a member
        assert await storage.get_room(room.id) == moved

    @pytest.mark.anyio
    async def test_a_leaving_owner_passes_the_room_to_the_first_admin(
        self, storage: Storage
    ) -> None:
        alice, bob, carol = await make_users(storage, "alice", "bob", "carol")
        room = await storage.create_group_room(alice.id, "t", [bob.id], now_ts=1_000)
        await storage.add_member(room.id, carol.id, now_ts=2_000)
        await storage.set_member_role(room.id, carol.id, "admin")
        after = await storage.remove_member(room.id, alice.id)
        # carol joined after bob, but is an admin: she owns it now, and is no admin any more.
        assert after is not None and (after.owner_id, after.admin_ids) == (carol.id, ())
        assert after.role_of(carol.id) == "owner"
        # Without admins, the member who joined first.
        after = await storage.remove_member(room.id, carol.id)
        assert after is not None and after.owner_id == bob.id

    # --- the room's name, topic and avatar ----------------------------------------------------

    @pytest.mark.anyio
    async def test_update_room_changes_only_the_fields_given(self, storage: Storage) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        room = await storage.create_group_room(alice.id, "team", [bob.id], now_ts=1_000)
        changed = await storage.update_room(room.id, {"topic": "Plans for Q1"})
        assert changed is not None
        assert (changed.name, changed.topic, changed.avatar_media_id) == (
            "team",
            "Plans for Q1",
            None,
        )
        changed = await storage.update_room(room.id, {"name": "crew", "avatar_media_id": "m1"})
        assert changed is not None
        assert (changed.name, changed.topic, changed.avatar_media_id) == (
            "crew",
            "Plans for Q1",
            "m1",
        )
        assert changed.wire()["topic"] == "Plans for Q1"
        cleared = await storage.update_room(room.id, {"topic": None, "avatar_media_id": None})
        assert cleared is not None and (cleared.topic, cleared.avatar_media_id) == (None, None)
        assert "topic" not in cleared.wire() and "avatar_media_id" not in cleared.wire()
        assert await storage.get_room(room.id) == cleared
        direct, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=1_000)
        assert await storage.update_room(direct.id, {"topic": "x"}) is None
        assert await storage.update_room("no-such-room", {"topic": "x"}) is None

    # --- mutes -------------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_a_muted_member_cannot_send_until_the_mute_ends(self, storage: Storage) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        room = await storage.create_group_room(alice.id, "t", [bob.id], now_ts=1_000)
        assert await storage.set_muted_until(room.id, bob.id, 10_000) is True
        assert await storage.muted_until(room.id, bob.id) == 10_000
        results = await storage.store_messages(
            [
                draft(room, bob, "b1", ts=9_999),
                draft(room, alice, "a1", ts=9_999),
                draft(room, bob, "b2", ts=10_000),  # the mute has ended at its time
            ]
        )
        refused, sent, later = results
        assert isinstance(refused, ChatError) and refused.code is ErrorCode.FORBIDDEN
        assert "muted" in refused.message
        assert isinstance(sent, Stored) and sent.message.seq == 1
        assert isinstance(later, Stored) and later.message.seq == 2
        # The refused ref stayed free: unmuted, the same ref is stored.
        assert await storage.set_muted_until(room.id, bob.id, None) is True
        assert await storage.muted_until(room.id, bob.id) is None
        (stored,) = await store(storage, draft(room, bob, "b1", ts=9_999))
        assert stored.seq == 3

    @pytest.mark.anyio
    async def test_muting_a_non_member_changes_nothing(self, storage: Storage) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        room = await storage.create_group_room(alice.id, "t", [], now_ts=1_000)
        assert await storage.set_muted_until(room.id, bob.id, 10_000) is False
        assert await storage.muted_until(room.id, bob.id) is None
        assert await storage.set_muted_until("no-such-room", bob.id, 10_000) is False

    @pytest.mark.anyio
    async def test_a_mute_set_after_an_idle_spell_refuses_the_next_batch(
        self, storage: Storage
    ) -> None:
        # The writer may decide a batch on a read made before the mute (PostgreSQL's writer
        # checks again under the lock): a send after the mute is refused however it runs.
        alice, bob = await make_users(storage, "alice", "bob")
        room = await storage.create_group_room(alice.id, "t", [bob.id], now_ts=1_000)
        await store(storage, draft(room, bob, "b1", ts=2_000))
        await storage.set_muted_until(room.id, bob.id, 50_000)
        (refused,) = await storage.store_messages([draft(room, bob, "b2", ts=3_000)])
        assert isinstance(refused, ChatError) and refused.code is ErrorCode.FORBIDDEN
        # A retry of a message stored before the mute still gets its original.
        (again,) = await storage.store_messages([draft(room, bob, "b1", ts=4_000)])
        assert isinstance(again, Stored) and again.created is False

    # --- bans --------------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_a_ban_removes_the_member_and_is_listed(self, storage: Storage) -> None:
        alice, bob, carol = await make_users(storage, "alice", "bob", "carol")
        room = await storage.create_group_room(alice.id, "t", [bob.id], now_ts=1_000)
        banned = await storage.ban_member(
            RoomBan(room_id=room.id, user_id=bob.id, by=alice.id, reason="spam", ts=2_000)
        )
        assert banned is not None
        after, was_member = banned
        assert was_member is True and after.member_ids == (alice.id,)
        assert await storage.room_view(room.id, bob.id) is None
        # A user who is not a member may be banned too (kept out before anyone adds them).
        banned = await storage.ban_member(RoomBan(room_id=room.id, user_id=carol.id, ts=3_000))
        assert banned is not None and banned[1] is False
        bans = await storage.list_bans(room.id)
        assert [(b.user_id, b.by, b.reason, b.ts) for b in bans] == [
            (carol.id, None, None, 3_000),
            (bob.id, alice.id, "spam", 2_000),
        ]
        assert await storage.get_ban(room.id, bob.id) == bans[1]
        # Banning again replaces the reason and time.
        await storage.ban_member(
            RoomBan(room_id=room.id, user_id=bob.id, by=alice.id, reason="again", ts=4_000)
        )
        again = await storage.get_ban(room.id, bob.id)
        assert again is not None and (again.reason, again.ts) == ("again", 4_000)
        assert await storage.unban(room.id, bob.id) is True
        assert await storage.unban(room.id, bob.id) is False
        assert await storage.get_ban(room.id, bob.id) is None
        assert [b.user_id for b in await storage.list_bans(room.id)] == [carol.id]
        assert await storage.ban_member(RoomBan(room_id="no-such", user_id=bob.id, ts=1)) is None

    @pytest.mark.anyio
    async def test_a_banned_member_cannot_send(self, storage: Storage) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        room = await storage.create_group_room(alice.id, "t", [bob.id], now_ts=1_000)
        await storage.ban_member(RoomBan(room_id=room.id, user_id=bob.id, by=alice.id, ts=2_000))
        (refused,) = await storage.store_messages([draft(room, bob, "b1")])
        assert isinstance(refused, ChatError) and refused.code is ErrorCode.NOT_FOUND

    # --- the room log ------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_the_room_log_pages_newest_first(self, storage: Storage) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        room = await storage.create_group_room(alice.id, "t", [bob.id], now_ts=1_000)
        other = await storage.create_group_room(alice.id, "u", [], now_ts=1_000)
        entries = []
        for i in range(5):
            entries.append(
                await storage.append_room_log(
                    RoomLogDraft(
                        room_id=room.id,
                        ts=2_000,  # the same time: the id orders them
                        actor_id=alice.id,
                        action="member.mute",
                        target_id=bob.id,
                        details={"until_ts": i, "note": "ünï"},
                    )
                )
            )
        await storage.append_room_log(
            RoomLogDraft(room_id=other.id, ts=2_000, actor_id=None, action="room.update")
        )
        ids = [int(e.id) for e in entries]
        assert ids == sorted(ids) and len(set(ids)) == 5
        newest = await storage.room_log(room.id, None, 3)
        assert newest == entries[:1:-1]
        assert newest[0].details == {"until_ts": 4, "note": "ünï"}
        rest = await storage.room_log(room.id, newest[-1].id, 3)
        assert rest == entries[1::-1]
        assert await storage.room_log(room.id, entries[0].id, 3) == []
        for bad in ("x", "", "1e3", "-1"):
            assert await storage.room_log(room.id, bad, 3) == []
        assert await storage.room_log(room.id, None, 0) == []
        (only,) = await storage.room_log(other.id, None, 10)
        assert (only.actor_id, only.target_id, only.details) == (None, None, {})
