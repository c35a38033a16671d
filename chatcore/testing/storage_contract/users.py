"""The storage contract, users: creation, lookup, search, unique usernames (`UserStorage`)."""

from __future__ import annotations

import pytest

from chatcore.errors import ChatError, ErrorCode
from chatcore.interfaces import Storage
from chatcore.models import User
from chatcore.testing.storage_contract.base import HASH, ContractBase, gather, make_user, make_users


class UsersContract(ContractBase):
    """Users (creation, lookup, search) and the uniqueness of usernames: `UserStorage`."""

    # --- users -----------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_create_user_returns_the_stored_user(self, storage: Storage) -> None:
        user = await storage.create_user("alice", HASH, "Alice Liddell")
        assert isinstance(user.id, str) and user.id
        assert (user.username, user.display_name, user.avatar_media_id) == (
            "alice",
            "Alice Liddell",
            None,
        )
        assert await storage.get_user(user.id) == user

    @pytest.mark.anyio
    async def test_user_ids_are_distinct(self, storage: Storage) -> None:
        first, second = await make_user(storage, "first"), await make_user(storage, "second")
        assert first.id != second.id

    @pytest.mark.anyio
    async def test_get_user_of_unknown_id_is_none(self, storage: Storage) -> None:
        await make_user(storage, "someone")
        assert await storage.get_user("no-such-id") is None

    @pytest.mark.anyio
    async def test_username_keeps_its_case(self, storage: Storage) -> None:
        user = await make_user(storage, "MixedCase")
        assert user.username == "MixedCase"
        assert (await storage.get_user(user.id)) == user
        creds = await storage.get_credentials("mixedcase")
        assert creds is not None and creds.user.username == "MixedCase"

    @pytest.mark.anyio
    async def test_username_is_unique_case_insensitively(self, storage: Storage) -> None:
        original = await make_user(storage, "alice", "The first Alice")
        for taken in ("alice", "ALICE", "Alice"):
            with pytest.raises(ChatError) as caught:
                await storage.create_user(taken, "other-hash", "Another Alice")
            assert caught.value.code is ErrorCode.CONFLICT
            assert caught.value.status == 409
        # The refused attempts changed nothing.
        assert await storage.list_users(10) == [original]
        creds = await storage.get_credentials("alice")
        assert creds is not None and creds.password_hash == HASH

    @pytest.mark.anyio
    async def test_get_credentials(self, storage: Storage) -> None:
        user = await storage.create_user("Bob.Smith", "hash-of-bob", "Bob")
        for asked in ("Bob.Smith", "bob.smith", "BOB.SMITH"):
            creds = await storage.get_credentials(asked)
            assert creds is not None
            assert creds.user == user and creds.password_hash == "hash-of-bob"
        assert await storage.get_credentials("bob") is None
        assert await storage.get_credentials("nobody") is None

    @pytest.mark.anyio
    async def test_set_password_hash(self, storage: Storage) -> None:
        user = await make_user(storage, "carol")
        other = await make_user(storage, "dave")
        await storage.set_password_hash(user.id, "new-hash")
        creds = await storage.get_credentials("carol")
        assert creds is not None and creds.password_hash == "new-hash"
        dave = await storage.get_credentials("dave")
        assert dave is not None and dave.password_hash == HASH and dave.user == other

    @pytest.mark.anyio
    async def test_list_users_ordered_with_limit_and_offset(self, storage: Storage) -> None:
        for name in ("delta", "alpha", "charlie", "bravo"):
            await make_user(storage, name)
        names = [u.username for u in await storage.list_users(10)]
        assert names == ["alpha", "bravo", "charlie", "delta"]
        assert [u.username for u in await storage.list_users(2)] == ["alpha", "bravo"]
        assert [u.username for u in await storage.list_users(2, offset=2)] == ["charlie", "delta"]
        assert await storage.list_users(10, offset=4) == []

    # --- search ----------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_search_by_username_or_display_name_prefix(self, storage: Storage) -> None:
        await make_user(storage, "carol", "Alice Cooper")
        await make_user(storage, "alice", "Alice Liddell")
        await make_user(storage, "bob", "Bobby Tables")
        await make_user(storage, "malice", "Mal")

        async def names(prefix: str) -> list[str]:
            return [u.username for u in await storage.search_users(prefix, 10)]

        assert await names("ali") == ["alice", "carol"]  # ordered by username
        assert await names("bob") == ["bob"]
        assert await names("Bobby T") == ["bob"]
        assert await names("tables") == []  # a prefix, not a substring
        assert await names("lice") == []
        assert await names("zed") == []
        found = await storage.search_users("bob", 10)
        assert found == [await storage.get_user(found[0].id)]  # full User objects

    @pytest.mark.anyio
    async def test_search_ignores_case(self, storage: Storage) -> None:
        await make_user(storage, "Alice", "Émile Zola")
        for prefix in ("alice", "ALI", "aLiCe"):
            assert [u.username for u in await storage.search_users(prefix, 10)] == ["Alice"]
        for prefix in ("émile", "ÉMILE", "éMi"):
            assert [u.username for u in await storage.search_users(prefix, 10)] == ["Alice"]

    @pytest.mark.anyio
    async def test_search_limit(self, storage: Storage) -> None:
        for i in (3, 1, 4, 0, 2):
            await make_user(storage, f"user{i}")
        assert [u.username for u in await storage.search_users("user", 3)] == [
            "user0",
            "user1",
            "user2",
        ]
        assert len(await storage.search_users("user", 50)) == 5

    @pytest.mark.anyio
    async def test_search_wildcards_match_literally(self, storage: Storage) -> None:
        await make_user(storage, "a_b")
        await make_user(storage, "axb")
        await make_user(storage, "percent", "100% real")
        await make_user(storage, "thousand", "1000 real")
        await make_user(storage, "slash", "a/b c")
        await make_user(storage, "backslash", "a\\b d")

        async def names(prefix: str) -> list[str]:
            return [u.username for u in await storage.search_users(prefix, 10)]

        assert await names("a_") == ["a_b"]
        assert await names("100%") == ["percent"]
        assert await names("%") == []
        assert await names("_") == []
        assert await names("a/") == ["slash"]
        assert await names("a\\") == ["backslash"]
        assert await names("10") == ["percent", "thousand"]

    # --- concurrency -----------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_concurrent_create_user(self, storage: Storage) -> None:
        names = [f"racer{i:02d}" for i in range(25)]
        results = await gather(*(make_user(storage, name) for name in names))
        errors = [r for r in results if isinstance(r, BaseException)]
        assert errors == [], errors  # e.g. no "database is locked"
        assert [u.username for u in await storage.list_users(100)] == names

    @pytest.mark.anyio
    async def test_concurrent_create_of_one_username_one_wins(self, storage: Storage) -> None:
        variants = ["same", "SAME", "Same", "sAme", "saMe", "samE"]
        results = await gather(*(make_user(storage, name) for name in variants))
        created = [r for r in results if isinstance(r, User)]
        refused = [r for r in results if isinstance(r, ChatError)]
        assert len(created) == 1, results
        assert len(refused) == len(variants) - 1, results
        assert all(e.code is ErrorCode.CONFLICT for e in refused)
        assert await storage.list_users(10) == created

    # --- by username (to invite) -----------------------------------------------------------

    @pytest.mark.anyio
    async def test_user_by_username_is_case_insensitive(self, storage: Storage) -> None:
        (alice,) = await make_users(storage, "Alice")
        assert await storage.get_user_by_username("aLICE") == alice
        assert await storage.get_user_by_username("alic") is None
