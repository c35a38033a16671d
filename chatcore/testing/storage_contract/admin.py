"""The storage contract, server administration: `AdminStorage` (and what it adds to users
and logins: the admin flag, disabled and erased users, last seen)."""

from __future__ import annotations

import pytest

from chatcore.errors import ChatError, ErrorCode
from chatcore.interfaces import Storage
from chatcore.models import DELETED_USER
from chatcore.testing.storage_contract.base import (
    FAR,
    ContractBase,
    device,
    draft,
    make_user,
    make_users,
    queued,
    store,
)


class AdminContract(ContractBase):
    """Server admins, disabled and erased users, a user's logins, counts, the audit log."""

    # --- admins and disabled users ---------------------------------------------------------

    @pytest.mark.anyio
    async def test_promote_and_demote(self, storage: Storage) -> None:
        user = await make_user(storage, "adminny")
        assert user.is_admin is False
        promoted = await storage.set_admin(user.id, True)
        assert promoted is not None and promoted.is_admin
        found = await storage.get_user(user.id)
        assert found is not None and found.is_admin
        credentials = await storage.get_credentials("ADMINNY")
        assert credentials is not None and credentials.user.is_admin
        demoted = await storage.set_admin(user.id, False)
        assert demoted is not None and not demoted.is_admin
        assert await storage.set_admin("no-such-user", True) is None

    @pytest.mark.anyio
    async def test_the_admin_flag_is_never_on_the_wire(self, storage: Storage) -> None:
        user = await make_user(storage, "quiet")
        promoted = await storage.set_admin(user.id, True)
        assert promoted is not None
        assert promoted.wire() == {"id": user.id, "username": "quiet", "display_name": "quiet"}

    @pytest.mark.anyio
    async def test_disable_ends_every_live_login_and_refuses_new_ones(
        self, storage: Storage
    ) -> None:
        user, other = await make_users(storage, "dora", "dan")
        first = await storage.create_login(user.id, "d1", FAR, now_ts=1_000)
        second = await storage.create_login(user.id, "d2", FAR, now_ts=1_100)
        ended_before = await storage.create_login(user.id, "d3", FAR, now_ts=1_200)
        await storage.end_login(ended_before, now_ts=1_300)
        others = await storage.create_login(other.id, "o1", FAR, now_ts=1_000)

        ended = await storage.disable_user(user.id, now_ts=2_000)
        assert ended is not None and set(ended) == {first, second}
        assert await storage.login_ended(first) and await storage.login_ended(second)
        assert not await storage.login_ended(others)  # nobody else's
        assert set(await storage.ended_logins_since(2_000)) == {first, second}
        found = await storage.get_user(user.id)
        assert found is not None and found.disabled
        credentials = await storage.get_credentials("dora")
        assert credentials is not None and credentials.user.disabled
        # Refresh tokens of the ended logins no longer rotate; no new login starts.
        outcome = await storage.rotate_refresh_token("d1", "d1b", FAR, now_ts=2_100)
        assert outcome.status == "ended"
        with pytest.raises(ChatError) as refused:
            await storage.create_login(user.id, "d4", FAR, now_ts=2_200)
        assert refused.value.code is ErrorCode.FORBIDDEN
        # Disabling again ends nothing more; an unknown user is None.
        assert await storage.disable_user(user.id, now_ts=3_000) == []
        assert await storage.disable_user("no-such-user", now_ts=3_000) is None

        enabled = await storage.enable_user(user.id)
        assert enabled is not None and not enabled.disabled
        assert await storage.login_ended(first)  # ended logins stay ended
        again = await storage.create_login(user.id, "d5", FAR, now_ts=4_000)
        assert not await storage.login_ended(again)
        assert await storage.enable_user("no-such-user") is None

    @pytest.mark.anyio
    async def test_logins_of_a_user_and_ending_them(self, storage: Storage) -> None:
        user, other = await make_users(storage, "lena", "leo")
        first = await storage.create_login(user.id, "l1", FAR, now_ts=1_000)
        second = await storage.create_login(user.id, "l2", FAR, now_ts=2_000)
        others = await storage.create_login(other.id, "x1", FAR, now_ts=1_000)
        outcome = await storage.rotate_refresh_token("l1", "l1b", FAR, now_ts=3_000)
        assert outcome.status == "ok"

        logins = await storage.user_logins(user.id, limit=10)
        assert [login.id for login in logins] == [second, first]  # newest first
        assert (logins[1].created_ts, logins[1].last_used_ts, logins[1].ended_ts) == (
            1_000,
            3_000,
            None,
        )
        assert logins[0].last_used_ts == 2_000  # never refreshed: its start
        assert len(await storage.user_logins(user.id, limit=1)) == 1

        # Another user's login is not ended through this one.
        assert await storage.end_user_logins(user.id, others, now_ts=4_000) == []
        assert not await storage.login_ended(others)
        assert await storage.end_user_logins(user.id, first, now_ts=4_000) == [first]
        assert await storage.end_user_logins(user.id, first, now_ts=4_500) == []  # ended already
        assert await storage.end_user_logins(user.id, None, now_ts=5_000) == [second]
        logins = await storage.user_logins(user.id, limit=10)
        assert [login.ended_ts for login in logins] == [5_000, 4_000]

    @pytest.mark.anyio
    async def test_admin_users_with_state_and_counts(self, storage: Storage) -> None:
        ann, bob, cid = await make_users(storage, "ann", "bob", "cid")
        await storage.create_login(ann.id, "a1", FAR, now_ts=7_000)
        ended = await storage.create_login(ann.id, "a2", FAR, now_ts=8_000)
        await storage.end_login(ended, now_ts=8_500)
        room = await storage.create_group_room(ann.id, "g", [bob.id], now_ts=1)
        await storage.create_direct_room(ann.id, cid.id, now_ts=1)
        await store(storage, draft(room, ann, "r1"), draft(room, ann, "r2"), draft(room, bob, "r3"))
        await storage.set_admin(bob.id, True)
        await storage.disable_user(cid.id, now_ts=9_000)

        listed = await storage.admin_users("", limit=10, offset=0)
        assert [u.user.username for u in listed] == ["ann", "bob", "cid"]
        a, b, c = listed
        assert (a.rooms, a.messages, a.logins, a.last_seen_ts) == (2, 2, 1, 8_000)
        assert (b.rooms, b.messages, b.logins, b.last_seen_ts) == (1, 1, 0, None)
        assert (b.is_admin, b.disabled, c.disabled, a.is_admin) == (True, False, True, False)
        assert a.created_ts > 0
        assert [u.user.username for u in await storage.admin_users("B", 10, 0)] == ["bob"]
        assert [u.user.username for u in await storage.admin_users("", 2, 1)] == ["bob", "cid"]
        assert await storage.admin_users("%", 10, 0) == []  # matched literally
        one = await storage.admin_user(ann.id)
        assert one == a
        assert await storage.admin_user("no-such-user") is None

    @pytest.mark.anyio
    async def test_last_seen_moves_on_login_and_refresh(self, storage: Storage) -> None:
        user = await make_user(storage, "seen")
        await storage.create_login(user.id, "s1", FAR, now_ts=5_000)
        await storage.rotate_refresh_token("s1", "s2", FAR, now_ts=6_000)
        found = await storage.admin_user(user.id)
        assert found is not None and found.last_seen_ts == 6_000
        await storage.rotate_refresh_token("s1", "s3", FAR, now_ts=7_000)  # reused: not seen
        found = await storage.admin_user(user.id)
        assert found is not None and found.last_seen_ts == 6_000

    # --- rooms -------------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_admin_rooms_with_counts(self, storage: Storage) -> None:
        ann, bob = await make_users(storage, "ana", "ben")
        older = await storage.create_group_room(ann.id, "older", [bob.id], now_ts=1_000)
        newer, _ = await storage.create_direct_room(ann.id, bob.id, now_ts=2_000)
        await store(storage, draft(older, ann, "m1"), draft(older, bob, "m2"))
        listed = await storage.admin_rooms(limit=10, offset=0)
        assert [r.room.id for r in listed] == [newer.id, older.id]  # newest first
        assert (listed[1].members, listed[1].messages) == (2, 2)
        assert (listed[0].members, listed[0].messages) == (2, 0)
        assert [r.room.id for r in await storage.admin_rooms(limit=1, offset=1)] == [older.id]
        wire = listed[1].wire()
        assert wire["counts"] == {"members": 2, "messages": 2} and wire["name"] == "older"

    @pytest.mark.anyio
    async def test_shutdown_removes_every_member_and_keeps_messages(self, storage: Storage) -> None:
        ann, bob, cy = await make_users(storage, "amy", "bo", "cy")
        room = await storage.create_group_room(ann.id, "doomed", [bob.id, cy.id], now_ts=1)
        [sent] = await store(storage, draft(room, bob, "m1"))
        removed = await storage.shutdown_room(room.id)
        assert removed == list(room.member_ids) and set(removed) == {ann.id, bob.id, cy.id}
        after = await storage.get_room(room.id)
        assert after is not None and after.member_ids == () and after.owner_id is None
        assert await storage.list_rooms(bob.id) == []
        assert await storage.get_message(room.id, sent.id) == sent  # stored still
        assert await storage.shutdown_room(room.id) == []
        assert await storage.shutdown_room("no-such-room") is None

    @pytest.mark.anyio
    async def test_a_shut_direct_room_is_no_longer_the_pairs(self, storage: Storage) -> None:
        ann, bob = await make_users(storage, "al", "bea")
        room, _ = await storage.create_direct_room(ann.id, bob.id, now_ts=1)
        await storage.shutdown_room(room.id)
        again, created = await storage.create_direct_room(ann.id, bob.id, now_ts=2)
        assert created and again.id != room.id
        assert set(again.member_ids) == {ann.id, bob.id}

    # --- erasure -------------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_erase_keeping_messages(self, storage: Storage) -> None:
        eve, bob, cy = await make_users(storage, "eve", "bob", "cy")
        await storage.set_admin(eve.id, True)
        await storage.update_profile(eve.id, {"display_name": "Eve Smith"})
        await storage.put_settings(eve.id, {"theme": "dark"})
        live = await storage.create_login(eve.id, "e1", FAR, now_ts=1)
        invitation, _ = await storage.create_invitation(eve.id, bob.id, now_ts=1)
        await storage.answer_invitation(invitation.id, "accepted", now_ts=2)
        await storage.create_invitation(cy.id, eve.id, now_ts=3)
        await storage.block(eve.id, cy.id, now_ts=4)
        phone, _ = await storage.add_device(device(eve, "fcm", token="t" * 20), max_devices=5)
        await storage.enqueue_pushes([queued(phone, due_ts=1)])
        room = await storage.create_group_room(eve.id, "eve's", [bob.id], now_ts=5)
        direct, _ = await storage.create_direct_room(eve.id, bob.id, now_ts=5)
        [sent] = await store(storage, draft(room, eve, "m1"))

        erasure = await storage.erase_user(eve.id, remove_messages=False, now_ts=10_000)
        assert erasure is not None
        assert erasure.ended_logins == (live,)
        assert erasure.contact_ids == (bob.id,)
        assert erasure.removed_messages == ()
        left = {r.id: r for r in erasure.rooms}
        assert set(left) == {room.id, direct.id}
        assert left[room.id].member_ids == (bob.id,) and left[room.id].owner_id == bob.id

        assert await storage.get_user(eve.id) is None  # nobody, but as a tombstone
        tomb = await storage.get_tombstone(eve.id)
        assert tomb is not None and tomb.deleted and tomb.disabled and not tomb.is_admin
        assert tomb.display_name == DELETED_USER and tomb.avatar_media_id is None
        assert tomb.wire() == {
            "id": eve.id,
            "username": "",
            "display_name": DELETED_USER,
            "deleted": True,
        }
        assert "eve" not in tomb.username
        assert await storage.get_credentials("eve") is None
        assert await storage.get_user_by_username("eve") is None
        assert await storage.search_users("eve", 10) == []
        assert await storage.search_users("deleted", 10) == []
        assert await storage.admin_user(eve.id) is None
        assert await storage.get_tombstone(bob.id) is None  # not erased
        with pytest.raises(ChatError):  # no group takes a tombstone
            await storage.create_group_room(bob.id, "again", [eve.id], now_ts=6)
        assert await storage.get_settings(eve.id) == {}
        assert await storage.list_contacts(bob.id) == []
        assert await storage.pending_invitations(cy.id) == ([], [])
        assert await storage.block_state(eve.id, cy.id) == (False, False)
        assert await storage.list_devices(eve.id) == []
        assert await storage.claim_pushes(now_ts=100, lease_ms=1_000, limit=10) == []
        assert await storage.login_ended(live)
        assert await storage.list_rooms(eve.id) == []
        assert await storage.get_message(room.id, sent.id) == sent  # kept, sender a tombstone
        # The username is free again; erasing twice finds nobody.
        again = await make_user(storage, "eve")
        assert again.id != eve.id
        assert await storage.erase_user(eve.id, remove_messages=True, now_ts=11_000) is None
        assert await storage.erase_user("no-such-user", remove_messages=False, now_ts=1) is None

    @pytest.mark.anyio
    async def test_erase_removing_messages_keeps_seqs(self, storage: Storage) -> None:
        eve, bob = await make_users(storage, "eva", "bill")
        room = await storage.create_group_room(bob.id, "g", [eve.id], now_ts=1)
        first, theirs, second = await store(
            storage,
            draft(room, eve, "m1"),
            draft(room, bob, "m2"),
            draft(room, eve, "m3", kind="sticker", body="", sticker_id="s1"),
        )
        erasure = await storage.erase_user(eve.id, remove_messages=True, now_ts=20_000)
        assert erasure is not None
        removed = erasure.removed_messages
        assert [(m.id, m.seq, m.deleted, m.body, m.sticker_id) for m in removed] == [
            (first.id, 1, True, "", None),
            (second.id, 3, True, "", None),
        ]
        history = await storage.messages_after(room.id, 0, 10)
        assert [(m.seq, m.deleted) for m in history] == [(1, True), (2, False), (3, True)]
        assert history[1] == theirs
        updated = await storage.updated_since(room.id, 19_999, 10)
        assert [m.id for m in updated] == [first.id, second.id]

    # --- audit log -----------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_audit_log_newest_first_with_paging(self, storage: Storage) -> None:
        admin, user = await make_users(storage, "root", "someone")
        entries = [
            await storage.add_audit_entry(
                1_000 + i, admin.id, "user.disable", "user", user.id, None, {"n": i}
            )
            for i in range(5)
        ]
        by_console = await storage.add_audit_entry(
            2_000, None, "room.shutdown", "room", "room-1", "room-1", {"via": "console"}
        )
        assert by_console.actor_id is None and by_console.details == {"via": "console"}
        assert len({e.id for e in [*entries, by_console]}) == 6

        page = await storage.audit_entries(limit=3)
        assert page[0] == by_console
        assert [e.details for e in page[1:]] == [{"n": 4}, {"n": 3}]
        rest = await storage.audit_entries(limit=10, before=page[-1].id)
        assert [e.details for e in rest] == [{"n": 2}, {"n": 1}, {"n": 0}]
        assert rest[-1] == entries[0]
        assert await storage.audit_entries(limit=10, before=entries[0].id) == []
        about = await storage.audit_entries(limit=10, target_kind="user", target_id=user.id)
        assert len(about) == 5 and all(e.target_id == user.id for e in about)
        assert await storage.audit_entries(limit=10, target_kind="room", target_id="x") == []
        assert await storage.audit_entries(limit=10, before="not-an-id") == []
