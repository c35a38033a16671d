"""The storage contract, push devices: `DeviceStorage`."""

from __future__ import annotations

import pytest

from chatcore.errors import ChatError, ErrorCode
from chatcore.interfaces import Storage
from chatcore.models import WebPushKeys
from chatcore.testing.storage_contract.base import KEYS, ContractBase, device, gather, make_users


class DevicesContract(ContractBase):
    """Push devices: `DeviceStorage`."""

    # --- push devices ---------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_devices_are_added_once_listed_newest_first_and_deleted(
        self, storage: Storage
    ) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        phone = device(alice, "fcm", token="tok-1", ts=1_000)
        assert await storage.add_device(phone, max_devices=5) == (phone, True)
        # The same platform and token again: the first one, unchanged.
        again = device(alice, "fcm", token="tok-1", ts=2_000)
        assert await storage.add_device(again, max_devices=5) == (phone, False)
        # Another platform, or another user, with the same token is another device.
        apns = device(alice, "apns", token="tok-1", ts=3_000)
        hook = device(alice, "webhook", endpoint="https://example.com/hook", ts=4_000)
        bobs = device(bob, "fcm", token="tok-1", ts=5_000)
        for new in (apns, hook, bobs):
            assert await storage.add_device(new, max_devices=5) == (new, True)
        assert await storage.list_devices(alice.id) == [hook, apns, phone]
        assert await storage.list_devices(bob.id) == [bobs]
        # Only the owner deletes, once.
        assert await storage.delete_device(bob.id, apns.id) is False
        assert await storage.delete_device(alice.id, apns.id) is True
        assert await storage.delete_device(alice.id, apns.id) is False
        assert await storage.delete_device(alice.id, "no-such-device\x00") is False
        assert await storage.list_devices(alice.id) == [hook, phone]

    @pytest.mark.anyio
    async def test_webpush_keys_are_kept_and_renewed(self, storage: Storage) -> None:
        (alice,) = await make_users(storage, "alice")
        first = device(alice, "webpush", endpoint="https://push.example/abc", ts=1, keys=KEYS)
        assert await storage.add_device(first, max_devices=5) == (first, True)
        renewed_keys = WebPushKeys(p256dh=KEYS.p256dh, auth="B" * 22)
        renewed = device(alice, "webpush", endpoint=first.endpoint, ts=2, keys=renewed_keys)
        expected = first.model_copy(update={"keys": renewed_keys})
        assert await storage.add_device(renewed, max_devices=5) == (expected, False)
        assert await storage.list_devices(alice.id) == [expected]

    @pytest.mark.anyio
    async def test_long_addresses_are_distinct_devices(self, storage: Storage) -> None:
        (alice,) = await make_users(storage, "alice")
        base = "t" * 4095
        one, two = device(alice, "fcm", token=base + "1"), device(alice, "fcm", token=base + "2")
        for new in (one, two):
            assert await storage.add_device(new, max_devices=5) == (new, True)
        assert await storage.add_device(device(alice, "fcm", token=base + "1"), 5) == (one, False)

    @pytest.mark.anyio
    async def test_device_bound_per_user(self, storage: Storage, other_node: Storage) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        results = await gather(
            *(
                node.add_device(device(alice, "fcm", token=f"t{i}"), max_devices=3)
                for i in range(8)
                for node in (storage, other_node)
            )
        )
        # Each token goes to both nodes: three devices are made, each answered twice.
        refused = [r for r in results if isinstance(r, BaseException)]
        added = [r for r in results if not isinstance(r, BaseException)]
        assert all(isinstance(r, ChatError) and r.code is ErrorCode.CONFLICT for r in refused)
        assert len({found.id for found, _ in added}) == 3, results
        assert sum(created for _, created in added) == 3, results
        assert len(await storage.list_devices(alice.id)) == 3
        # A device the user has already is answered, at the bound too; other users are free.
        known = (await storage.list_devices(alice.id))[0]
        assert await storage.add_device(
            device(alice, "fcm", token=known.address), max_devices=3
        ) == (known, False)
        assert (await storage.add_device(device(bob, "fcm", token="t0"), max_devices=3))[1]

    @pytest.mark.anyio
    async def test_concurrent_adds_of_one_device_make_one(
        self, storage: Storage, other_node: Storage
    ) -> None:
        (alice,) = await make_users(storage, "alice")
        results = await gather(
            *(
                node.add_device(device(alice, "apns", token="same"), max_devices=50)
                for _ in range(4)
                for node in (storage, other_node)
            )
        )
        assert not [r for r in results if isinstance(r, BaseException)], results
        assert len({found.id for found, _ in results}) == 1
        assert sorted(created for _, created in results) == [False] * 7 + [True]

    @pytest.mark.anyio
    async def test_device_of_an_unknown_user_is_not_found(self, storage: Storage) -> None:
        with pytest.raises(ChatError) as caught:
            await storage.add_device(device("no-such-user", "fcm", token="t"), max_devices=5)
        assert caught.value.code is ErrorCode.NOT_FOUND
        assert await storage.list_devices("no-such-user") == []
