"""The storage contract, contacts, invitations and blocks: `ContactStorage`."""

from __future__ import annotations

import pytest

from chatcore.errors import ChatError, ErrorCode
from chatcore.interfaces import Storage
from chatcore.models import BlockChange, Contact, Stored
from chatcore.server.contacts import NOT_ACCEPTED, YOU_BLOCKED
from chatcore.testing.storage_contract.base import (
    ContractBase,
    created,
    draft,
    gather,
    make_users,
    seqs,
    store,
)


class ContactsContract(ContractBase):
    """Contacts, invitations and blocks: `ContactStorage`."""

    # --- contacts, invitations and blocks ------------------------------------------------------

    @pytest.mark.anyio
    async def test_invitation_is_one_pending_per_pair_and_accepting_makes_contacts(
        self, storage: Storage
    ) -> None:
        alice, bob, carol = await make_users(storage, "alice", "bob", "carol")
        sent, was_created = await storage.create_invitation(alice.id, bob.id, now_ts=1_000)
        assert was_created is True
        assert (sent.from_user, sent.to_user, sent.status, sent.ts) == (
            alice,
            bob,
            "pending",
            1_000,
        )
        assert sent.hidden is False
        assert await storage.get_invitation(sent.id) == sent
        # Again, from either side: the pending one, unchanged.
        assert await storage.create_invitation(alice.id, bob.id, now_ts=2_000) == (sent, False)
        assert await storage.create_invitation(bob.id, alice.id, now_ts=2_000) == (sent, False)
        to_carol, _ = await storage.create_invitation(alice.id, carol.id, now_ts=3_000)
        assert await storage.pending_invitations(alice.id) == ([], [to_carol, sent])  # newest 1st
        assert await storage.pending_invitations(bob.id) == ([sent], [])

        accepted = await storage.answer_invitation(sent.id, "accepted", now_ts=4_000)
        assert accepted == sent.model_copy(update={"status": "accepted"})
        assert await storage.answer_invitation(sent.id, "declined", now_ts=5_000) is None
        assert await storage.get_invitation(sent.id) == accepted
        assert await storage.pending_invitations(bob.id) == ([], [])
        assert await storage.list_contacts(alice.id) == [Contact(user=bob, since_ts=4_000)]
        assert await storage.list_contacts(bob.id) == [Contact(user=alice, since_ts=4_000)]
        assert await storage.get_contact(bob.id, alice.id) == Contact(user=alice, since_ts=4_000)
        assert await storage.get_contact(alice.id, carol.id) is None
        assert await storage.contact_ids(alice.id) == [bob.id]
        # Answered, the pair may have a new pending invitation.
        again, was_created = await storage.create_invitation(bob.id, alice.id, now_ts=6_000)
        assert was_created is True and again.id != sent.id

    @pytest.mark.anyio
    async def test_declined_invitation_makes_no_contact(self, storage: Storage) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        sent, _ = await storage.create_invitation(alice.id, bob.id, now_ts=1_000)
        declined = await storage.answer_invitation(sent.id, "declined", now_ts=2_000)
        assert declined is not None and declined.status == "declined"
        assert await storage.answer_invitation(sent.id, "accepted", now_ts=3_000) is None
        assert await storage.list_contacts(alice.id) == []
        assert await storage.pending_invitations(alice.id) == ([], [])
        assert await storage.create_invitation(bob.id, alice.id, now_ts=4_000) != (sent, False)

    @pytest.mark.anyio
    async def test_invitation_needs_existing_users(self, storage: Storage) -> None:
        (alice,) = await make_users(storage, "alice")
        for from_id, to_id in ((alice.id, "no-such-user"), ("no-such-user", alice.id)):
            with pytest.raises(ChatError) as caught:
                await storage.create_invitation(from_id, to_id, now_ts=1)
            assert caught.value.code is ErrorCode.NOT_FOUND
        assert await storage.get_invitation("no-such-invitation") is None
        assert await storage.answer_invitation("no-such-invitation", "accepted", now_ts=1) is None
        assert await storage.pending_invitations(alice.id) == ([], [])

    @pytest.mark.anyio
    async def test_hidden_invitation_is_seen_by_its_sender_only(self, storage: Storage) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        sent, _ = await storage.create_invitation(alice.id, bob.id, now_ts=1, hidden=True)
        assert sent.hidden is True and sent.status == "pending"
        assert await storage.pending_invitations(alice.id) == ([], [sent])
        assert await storage.pending_invitations(bob.id) == ([], [])

    @pytest.mark.anyio
    async def test_concurrent_invitations_of_a_pair_make_one(
        self, storage: Storage, other_node: Storage
    ) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        calls = [
            node.create_invitation(*pair, now_ts=1_000)
            for node in (storage, other_node)
            for pair in ((alice.id, bob.id), (bob.id, alice.id))
            for _ in range(3)
        ]
        results = await gather(*calls)
        assert not [r for r in results if isinstance(r, BaseException)], results
        assert len({invitation.id for invitation, _ in results}) == 1, results
        assert sorted(created for _, created in results) == [False] * 11 + [True]

    @pytest.mark.anyio
    async def test_concurrent_answers_one_wins(self, storage: Storage, other_node: Storage) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        sent, _ = await storage.create_invitation(alice.id, bob.id, now_ts=1)
        results = await gather(
            *(
                node.answer_invitation(sent.id, status, now_ts=2)
                for node in (storage, other_node)
                for status in ("accepted", "declined", "accepted")
            )
        )
        assert not [r for r in results if isinstance(r, BaseException)], results
        [winner] = [r for r in results if r is not None]
        assert (await storage.get_invitation(sent.id)) == winner
        contacts = await storage.list_contacts(bob.id)
        assert contacts == (
            [Contact(user=alice, since_ts=2)] if winner.status == "accepted" else []
        )

    @pytest.mark.anyio
    async def test_contacts_are_listed_by_username_and_removed_on_both_sides(
        self, storage: Storage
    ) -> None:
        me, zed, amy = await make_users(storage, "me", "Zed", "amy")
        for other in (zed, amy):
            sent, _ = await storage.create_invitation(other.id, me.id, now_ts=1)
            await storage.answer_invitation(sent.id, "accepted", now_ts=2)
        assert [c.user for c in await storage.list_contacts(me.id)] == [amy, zed]
        assert await storage.remove_contact(zed.id, me.id) is True
        assert await storage.remove_contact(me.id, zed.id) is False
        assert [c.user for c in await storage.list_contacts(me.id)] == [amy]
        assert await storage.list_contacts(zed.id) == []
        assert await storage.contact_ids(zed.id) == []

    @pytest.mark.anyio
    async def test_block_ends_contact_and_pending_invitations(self, storage: Storage) -> None:
        me, friend, invited, inviter = await make_users(storage, "me", "friend", "inv", "inviter")
        sent, _ = await storage.create_invitation(me.id, friend.id, now_ts=1)
        await storage.answer_invitation(sent.id, "accepted", now_ts=1)
        mine, _ = await storage.create_invitation(me.id, invited.id, now_ts=2)
        theirs, _ = await storage.create_invitation(inviter.id, me.id, now_ts=3)

        assert await storage.block(me.id, friend.id, now_ts=10) == BlockChange(
            created=True, contact_removed=True
        )
        assert await storage.list_contacts(friend.id) == []
        assert await storage.block(me.id, friend.id, now_ts=11) == BlockChange(created=False)

        change = await storage.block(me.id, invited.id, now_ts=12)
        assert change.created and not change.contact_removed and change.hidden == ()
        [declined] = change.declined
        assert (declined.id, declined.status) == (mine.id, "declined")
        assert await storage.pending_invitations(invited.id) == ([], [])

        change = await storage.block(me.id, inviter.id, now_ts=13)
        assert change.declined == () and change.hidden == (
            theirs.model_copy(update={"hidden": True}),
        )
        # Gone for the blocker; still pending for its sender, and still the pair's one.
        assert await storage.pending_invitations(me.id) == ([], [])
        [still] = (await storage.pending_invitations(inviter.id))[1]
        assert (still.id, still.status, still.hidden) == (theirs.id, "pending", True)
        assert await storage.create_invitation(inviter.id, me.id, now_ts=14) == (still, False)

        assert await storage.block_state(me.id, inviter.id) == (True, False)
        assert await storage.block_state(inviter.id, me.id) == (False, True)
        assert await storage.block_state(friend.id, invited.id) == (False, False)
        assert await storage.blocked_users(me.id) == [friend, invited, inviter]
        assert sorted(await storage.blocks_involving(me.id)) == sorted(
            [friend.id, invited.id, inviter.id]
        )
        assert await storage.blocks_involving(friend.id) == [me.id]

        # Lifting the block declines what it hid; a second unblock changes nothing.
        [gone] = await storage.unblock(me.id, inviter.id, now_ts=20)
        assert (gone.id, gone.status) == (theirs.id, "declined")
        assert await storage.pending_invitations(inviter.id) == ([], [])
        assert await storage.unblock(me.id, inviter.id, now_ts=21) == []
        assert await storage.block_state(me.id, inviter.id) == (False, False)
        assert await storage.unblock(me.id, friend.id, now_ts=22) == []
        assert await storage.blocked_users(me.id) == [invited]

    @pytest.mark.anyio
    async def test_block_of_an_unknown_user_is_not_found(self, storage: Storage) -> None:
        (me,) = await make_users(storage, "me")
        with pytest.raises(ChatError) as caught:
            await storage.block(me.id, "no-such-user", now_ts=1)
        assert caught.value.code is ErrorCode.NOT_FOUND
        assert await storage.blocked_users(me.id) == []

    @pytest.mark.anyio
    async def test_a_block_refuses_messages_in_the_pairs_direct_room(
        self, storage: Storage
    ) -> None:
        """Both ways, worded for each side (the blocked user never reads of a block); a retry
        of a message stored before the block still gets the original; group rooms, other
        pairs and outsiders are judged as without the block."""
        alice, bob, carol = await make_users(storage, "alice", "bob", "carol")
        room, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=1)
        other, _ = await storage.create_direct_room(alice.id, carol.id, now_ts=1)
        group = await storage.create_group_room(alice.id, "g", [bob.id], now_ts=1)
        (before,) = await store(storage, draft(room, bob, "before", body="hi"))
        await storage.block(alice.id, bob.id, now_ts=2)
        results = await storage.store_messages(
            [
                draft(room, alice, "a1"),  # the blocker: told why
                draft(room, bob, "b1"),  # the blocked user: only "not accepted"
                draft(room, bob, "before", body="again"),  # a retry: the original
                draft(group, bob, "g1"),  # no block in a group room
                draft(other, alice, "c1"),  # another pair
                draft(room, carol, "x"),  # not a member: not found, as always
                draft(room, bob, "b1", reply_to="no-such-message"),  # the block comes first
            ]
        )
        forbidden = ErrorCode.FORBIDDEN
        codes = [r.code if isinstance(r, ChatError) else r.created for r in results]
        assert codes == [forbidden, forbidden, False, True, True, ErrorCode.NOT_FOUND, forbidden]
        said = [r.message for r in results if isinstance(r, ChatError) and r.code is forbidden]
        assert said == [YOU_BLOCKED, NOT_ACCEPTED, NOT_ACCEPTED]
        assert "block" not in NOT_ACCEPTED.lower()
        assert results[2] == Stored(message=before, created=False)
        assert [m.ref for m in created(results[3:5])] == ["g1", "c1"]
        assert [m.ref for m in await storage.messages_after(room.id, 0, 10)] == ["before"]
        assert await storage.find_message_by_ref(bob.id, room.id, "b1") is None
        # Blocked both ways: each is told of their own block.
        await storage.block(bob.id, alice.id, now_ts=3)
        both = await storage.store_messages([draft(room, alice, "a2"), draft(room, bob, "b2")])
        assert [(r.code, r.message) for r in both if isinstance(r, ChatError)] == [
            (forbidden, YOU_BLOCKED),
            (forbidden, YOU_BLOCKED),
        ]
        # Lifted: the refused refs were never used, and seqs go on without a gap.
        await storage.unblock(alice.id, bob.id, now_ts=4)
        await storage.unblock(bob.id, alice.id, now_ts=4)
        after = await store(storage, draft(room, alice, "a1"), draft(room, bob, "b1"))
        assert seqs(after) == [2, 3]
