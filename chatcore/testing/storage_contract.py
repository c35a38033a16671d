"""The storage contract: what every `chatcore.interfaces.Storage` backend must do.

A backend runs this suite by subclassing `StorageContract` and providing a fixture `storage`
that yields a started, empty storage (and closes it afterwards)::

    import pytest
    from chatcore.testing.storage_contract import StorageContract

    class TestMyStorage(StorageContract):
        @pytest.fixture
        async def storage(self):
            storage = MyStorage(...)
            await storage.start()
            yield storage
            await storage.close()

The tests are async and run on anyio's pytest plugin (the `anyio_backend` fixture comes with
this class). Times passed to the storage are explicit, so no test depends on the clock.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from chatcore.errors import ChatError, ErrorCode
from chatcore.interfaces import Storage
from chatcore.models import User

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"  # the stored form of some password
FAR = 10**13  # an expiry far in the future (ms)


async def make_user(storage: Storage, username: str, display_name: str | None = None) -> User:
    return await storage.create_user(username, HASH, display_name or username)


async def gather(*calls: Any) -> list[Any]:
    """Run coroutines concurrently; return each one's result or the exception it raised."""
    results: list[Any] = [None] * len(calls)

    async def run(i: int, call: Any) -> None:
        try:
            results[i] = await call
        except Exception as exc:
            results[i] = exc

    async with anyio.create_task_group() as tg:
        for i, call in enumerate(calls):
            tg.start_soon(run, i, call)
    return results


class StorageContract:
    """The contract suite; subclasses provide the `storage` fixture."""

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    # --- basics ----------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_is_a_storage_and_answers_ping(self, storage: Storage) -> None:
        assert isinstance(storage, Storage)
        await storage.ping()

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

    # --- logins ----------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_login_lifecycle(self, storage: Storage) -> None:
        user = await make_user(storage, "erin")
        login_id = await storage.create_login(user.id, "hash-1", FAR, now_ts=1_000)
        other_id = await storage.create_login(user.id, "hash-2", FAR, now_ts=1_000)
        assert isinstance(login_id, str) and login_id and login_id != other_id
        assert await storage.login_ended(login_id) is False
        await storage.end_login(login_id, now_ts=2_000)
        assert await storage.login_ended(login_id) is True
        assert await storage.login_ended(other_id) is False  # other logins live on
        # Ending it again is harmless and keeps the first end time.
        await storage.end_login(login_id, now_ts=9_000)
        assert await storage.login_ended(login_id) is True
        assert await storage.ended_logins_since(2_000) == [login_id]
        assert await storage.ended_logins_since(2_001) == []

    @pytest.mark.anyio
    async def test_unknown_login_counts_as_ended(self, storage: Storage) -> None:
        assert await storage.login_ended("no-such-login") is True
        await storage.end_login("no-such-login", now_ts=1_000)  # harmless
        assert await storage.ended_logins_since(0) == []

    @pytest.mark.anyio
    async def test_ended_logins_since(self, storage: Storage) -> None:
        user = await make_user(storage, "frank")
        ids = [await storage.create_login(user.id, f"h{i}", FAR, now_ts=50) for i in range(4)]
        await storage.end_login(ids[0], now_ts=100)
        await storage.end_login(ids[1], now_ts=200)
        await storage.end_login(ids[2], now_ts=300)
        # ids[3] stays live
        assert set(await storage.ended_logins_since(200)) == {ids[1], ids[2]}  # at or after
        assert set(await storage.ended_logins_since(0)) == set(ids[:3])
        assert await storage.ended_logins_since(301) == []

    # --- refresh tokens ----------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_refresh_rotation_ok(self, storage: Storage) -> None:
        user = await make_user(storage, "grace")
        login_id = await storage.create_login(user.id, "r1", 10_000, now_ts=1_000)
        outcome = await storage.rotate_refresh_token("r1", "r2", 20_000, now_ts=2_000)
        assert (outcome.status, outcome.login_id, outcome.user_id) == ("ok", login_id, user.id)
        # The new token belongs to the same login and rotates in turn, even past r1's expiry.
        outcome = await storage.rotate_refresh_token("r2", "r3", 30_000, now_ts=15_000)
        assert (outcome.status, outcome.login_id, outcome.user_id) == ("ok", login_id, user.id)
        assert await storage.login_ended(login_id) is False

    @pytest.mark.anyio
    async def test_refresh_reuse_is_reported_and_writes_nothing(self, storage: Storage) -> None:
        user = await make_user(storage, "heidi")
        login_id = await storage.create_login(user.id, "r1", FAR, now_ts=1_000)
        assert (await storage.rotate_refresh_token("r1", "r2", FAR, now_ts=2_000)).status == "ok"
        reused = await storage.rotate_refresh_token("r1", "stolen", FAR, now_ts=3_000)
        assert (reused.status, reused.login_id, reused.user_id) == ("reused", login_id, user.id)
        # "stolen" was not stored, and the storage leaves ending the login to the auth backend.
        assert (await storage.rotate_refresh_token("stolen", "x", FAR, now_ts=4_000)).status == (
            "unknown"
        )
        assert (await storage.rotate_refresh_token("r2", "r3", FAR, now_ts=5_000)).status == "ok"

    @pytest.mark.anyio
    async def test_refresh_unknown_token(self, storage: Storage) -> None:
        user = await make_user(storage, "ivan")
        await storage.create_login(user.id, "r1", FAR, now_ts=1_000)
        outcome = await storage.rotate_refresh_token("never-issued", "r2", FAR, now_ts=2_000)
        assert (outcome.status, outcome.login_id, outcome.user_id) == ("unknown", None, None)
        assert (await storage.rotate_refresh_token("r2", "r3", FAR, now_ts=2_000)).status == (
            "unknown"
        )

    @pytest.mark.anyio
    async def test_refresh_expired_token(self, storage: Storage) -> None:
        user = await make_user(storage, "judy")
        login_id = await storage.create_login(user.id, "r1", 5_000, now_ts=1_000)
        outcome = await storage.rotate_refresh_token("r1", "r2", FAR, now_ts=5_001)
        assert (outcome.status, outcome.login_id, outcome.user_id) == ("expired", login_id, user.id)
        assert (await storage.rotate_refresh_token("r2", "r3", FAR, now_ts=5_002)).status == (
            "unknown"
        )
        # Nothing was written: r1 is still unused (it rotates at a time it is valid).
        assert (await storage.rotate_refresh_token("r1", "r4", FAR, now_ts=4_000)).status == "ok"

    @pytest.mark.anyio
    async def test_refresh_token_of_ended_login(self, storage: Storage) -> None:
        user = await make_user(storage, "ken")
        login_id = await storage.create_login(user.id, "r1", FAR, now_ts=1_000)
        await storage.end_login(login_id, now_ts=2_000)
        outcome = await storage.rotate_refresh_token("r1", "r2", FAR, now_ts=3_000)
        assert (outcome.status, outcome.login_id, outcome.user_id) == ("ended", login_id, user.id)
        assert (await storage.rotate_refresh_token("r2", "r3", FAR, now_ts=4_000)).status == (
            "unknown"
        )

    @pytest.mark.anyio
    async def test_concurrent_rotations_of_one_token_one_wins(self, storage: Storage) -> None:
        user = await make_user(storage, "leo")
        login_id = await storage.create_login(user.id, "r1", FAR, now_ts=1_000)
        news = [f"new-{i}" for i in range(6)]
        outcomes = await gather(
            *(storage.rotate_refresh_token("r1", new, FAR, now_ts=2_000) for new in news)
        )
        statuses = sorted(o.status for o in outcomes)
        assert statuses == ["ok"] + ["reused"] * (len(news) - 1), outcomes
        assert all(o.login_id == login_id and o.user_id == user.id for o in outcomes)
        # Only the winner's new token was stored.
        winner = news[[o.status for o in outcomes].index("ok")]
        for new in news:
            status = (await storage.rotate_refresh_token(new, new + "+", FAR, now_ts=3_000)).status
            assert status == ("ok" if new == winner else "unknown")

    # --- settings --------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_settings_default_to_empty(self, storage: Storage) -> None:
        user = await make_user(storage, "mallory")
        assert await storage.get_settings(user.id) == {}

    @pytest.mark.anyio
    async def test_settings_round_trip(self, storage: Storage) -> None:
        user = await make_user(storage, "nina")
        other = await make_user(storage, "oscar")
        settings: dict[str, Any] = {
            "theme": {"name": "dark", "accent": "#ff8800", "sizes": [12, 14.5, 16]},
            "notifications": {"sound": True, "muted_rooms": [], "dnd": None},
            "greeting": "Grüße, 世界! 👋 \"quoted\" \\ back\nslash",
            "big": 2**53 + 1,
            "negative": -7,
            "deep": {"a": {"b": {"c": {"d": ["e", {"f": False}]}}}},
            "ключ": "значение",
        }
        await storage.put_settings(user.id, settings)
        assert await storage.get_settings(user.id) == settings
        assert await storage.get_settings(other.id) == {}
        # A put replaces the whole object (merging is the caller's job).
        await storage.put_settings(user.id, {"theme": "light"})
        assert await storage.get_settings(user.id) == {"theme": "light"}
        await storage.put_settings(user.id, {})
        assert await storage.get_settings(user.id) == {}

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
