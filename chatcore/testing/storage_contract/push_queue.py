"""The storage contract, the push queue and the push audience: `PushQueueStorage`."""

from __future__ import annotations

import pytest

from chatcore.interfaces import Storage
from chatcore.models import Device
from chatcore.testing.storage_contract.base import ContractBase, device, gather, make_users, queued


class PushQueueContract(ContractBase):
    """The push queue and the push audience: `PushQueueStorage`."""

    # --- push queue -----------------------------------------------------------------------------

    async def _device_of(self, storage: Storage, name: str) -> Device:
        (user,) = await make_users(storage, name)
        phone = device(user, "fcm", token=f"token-of-{name}")
        await storage.add_device(phone, max_devices=5)
        return phone

    @pytest.mark.anyio
    async def test_pushes_are_claimed_when_due_earliest_first_and_leased(
        self, storage: Storage
    ) -> None:
        phone = await self._device_of(storage, "alice")
        late, early, future = (
            queued(phone, 100, seq=1, preview="héllo ✓"),
            queued(phone, 50, seq=2),
            queued(phone, 2_000, seq=3),
        )
        await storage.enqueue_pushes([late, early, future])
        await storage.enqueue_pushes([])
        claimed = await storage.claim_pushes(now_ts=150, lease_ms=1_000, limit=10)
        assert [(c.id, c.attempts) for c in claimed] == [(early.id, 1), (late.id, 1)]
        assert claimed[1].device == phone and claimed[1].push == late.push
        assert claimed[1].created_ts == late.created_ts
        # Leased: nobody gets them again until the lease runs out, the future one not yet due.
        assert await storage.claim_pushes(now_ts=1_149, lease_ms=1_000, limit=10) == []
        again = await storage.claim_pushes(now_ts=2_000, lease_ms=10_000, limit=2)
        assert sorted((c.id, c.attempts) for c in again) == sorted([(early.id, 2), (late.id, 2)])
        again = await storage.claim_pushes(now_ts=2_000, lease_ms=10_000, limit=10)
        assert [(c.id, c.attempts) for c in again] == [(future.id, 1)]
        # Finished pushes are gone; a retried one is due when it says.
        await storage.settle_pushes([early.id], {late.id: 5_000})
        # Settled twice, unknown ids, nothing at all: no error.
        await storage.settle_pushes([early.id, "no-such-push\x00"], {"no-such-push\x00": 1})
        await storage.settle_pushes([], {})
        assert await storage.claim_pushes(4_999, 1_000, 10) == []
        claimed = await storage.claim_pushes(5_000, 1_000, 10)
        assert [(c.id, c.attempts) for c in claimed] == [(late.id, 3)]
        # Both leases ran out: each is due again, earliest due first.
        claimed = await storage.claim_pushes(20_000, 1_000, 10)
        assert [(c.id, c.attempts) for c in claimed] == [(late.id, 4), (future.id, 2)]

    @pytest.mark.anyio
    async def test_a_push_queued_as_claimed_waits_for_its_lease_and_counts_its_try(
        self, storage: Storage
    ) -> None:
        # What a node that sends a push at once queues: leased until 1,000, one try counted.
        phone = await self._device_of(storage, "alice")
        sending = queued(phone, 1_000).model_copy(update={"attempts": 1})
        await storage.enqueue_pushes([sending])
        assert await storage.claim_pushes(now_ts=999, lease_ms=1_000, limit=10) == []
        # The node died while sending: another takes it over, as its second try.
        claimed = await storage.claim_pushes(now_ts=1_000, lease_ms=1_000, limit=10)
        assert [(c.id, c.attempts) for c in claimed] == [(sending.id, 2)]

    @pytest.mark.anyio
    async def test_removing_a_device_removes_its_pushes(self, storage: Storage) -> None:
        phone = await self._device_of(storage, "alice")
        other = await self._device_of(storage, "bob")
        kept = queued(other, 10)
        await storage.enqueue_pushes([queued(phone, 10), queued(phone, 20), kept])
        assert await storage.delete_device(phone.user_id, phone.id) is True
        # So is one queued for a device removed before (a race between nodes): never claimed.
        await storage.enqueue_pushes([queued(phone.id, 15), queued("no-such-device", 5)])
        assert [c.id for c in await storage.claim_pushes(100, 1_000, 10)] == [kept.id]
        # Later, when everything would be due again, still only the other device's push.
        later = await storage.claim_pushes(10_000, 1_000, 10)
        assert [(c.id, c.attempts) for c in later] == [(kept.id, 2)]

    @pytest.mark.anyio
    async def test_nodes_claiming_at_once_never_share_a_push(
        self, storage: Storage, other_node: Storage
    ) -> None:
        phone = await self._device_of(storage, "alice")
        pushes = [queued(phone, i) for i in range(60)]
        await storage.enqueue_pushes(pushes)
        rounds = await gather(
            *(
                node.claim_pushes(1_000, 60_000, 7)
                for _ in range(6)
                for node in (storage, other_node)
            )
        )
        assert not [r for r in rounds if isinstance(r, BaseException)], rounds
        ids = [claimed.id for found in rounds for claimed in found]
        assert len(ids) == len(set(ids)) == 60
        assert all(len(found) <= 7 for found in rounds)

    @pytest.mark.anyio
    async def test_the_push_audience_is_the_rooms_and_their_members_with_devices(
        self, storage: Storage
    ) -> None:
        alice, bob, carol, dave = await make_users(storage, "alice", "bob", "carol", "dave")
        group = await storage.create_group_room(alice.id, "team", [bob.id, carol.id], 1)
        direct, _ = await storage.create_direct_room(alice.id, bob.id, 2)
        old = device(alice, "fcm", token="old", ts=1)
        new = device(alice, "webhook", endpoint="https://example.com/h", ts=2)
        bobs = device(bob, "apns", token="abcd", ts=3)
        daves = device(dave, "fcm", token="dave", ts=4)  # in neither room
        for added in (old, new, bobs, daves):
            await storage.add_device(added, max_devices=5)
        await storage.put_settings(alice.id, {"push": {"group": "mentions"}})
        found = await storage.push_audience([group.id, direct.id, "no-such-room\x00"])
        assert found.rooms == {group.id: group, direct.id: direct}
        # Carol has no device; alice and bob are in both rooms and come once.
        assert set(found.targets) == {alice.id, bob.id}
        assert found.targets[alice.id].user == alice
        assert found.targets[alice.id].settings == {"push": {"group": "mentions"}}
        assert found.targets[alice.id].devices == [new, old]
        assert (found.targets[bob.id].settings, found.targets[bob.id].devices) == ({}, [bobs])
        only_direct = await storage.push_audience([direct.id])
        assert (set(only_direct.rooms), set(only_direct.targets)) == (
            {direct.id},
            {alice.id, bob.id},
        )
        empty = await storage.push_audience([])
        assert (empty.rooms, empty.targets) == ({}, {})
