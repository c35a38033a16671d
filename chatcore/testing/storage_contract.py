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

A backend whose data several instances can share (one database, several server nodes) also
overrides `other_node`: a second started storage on the same data as `storage`. The tests of
guarantees between nodes (gapless seqs, idempotency, one direct room per pair) then run across
the two; without it they are skipped.

The tests are async and run on anyio's pytest plugin (the `anyio_backend` fixture comes with
this class). Times passed to the storage are explicit, so no test depends on the clock.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import anyio
import orjson
import pytest

from chatcore.errors import ChatError, ErrorCode
from chatcore.interfaces import Storage
from chatcore.models import (
    BlockChange,
    Contact,
    Device,
    Draft,
    Message,
    QueuedPush,
    Room,
    Stored,
    User,
    WebPushKeys,
)
from chatcore.protocol.frames import message_event
from chatcore.server.contacts import NOT_ACCEPTED, YOU_BLOCKED

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


async def make_users(storage: Storage, *names: str) -> list[User]:
    return [await make_user(storage, name) for name in names]


def draft(room: Room | str, sender: User | str, ref: str, **fields: Any) -> Draft:
    """A text draft (`fields` override kind, body, media_id, sticker_id, reply_to, ts)."""
    return Draft(
        room_id=room if isinstance(room, str) else room.id,
        sender_id=sender if isinstance(sender, str) else sender.id,
        ref=ref,
        **{"body": f"body of {ref}", "ts": 5_000, **fields},
    )


def created(results: Sequence[Stored | ChatError]) -> list[Message]:
    """The messages of a store_messages answer, each of which must be newly created."""
    assert not isinstance(results, BaseException), results  # an answer, not a raised error
    assert all(isinstance(r, Stored) and r.created for r in results), results
    return [r.message for r in results if isinstance(r, Stored)]


async def store(storage: Storage, *drafts: Draft) -> list[Message]:
    """Store drafts in one batch; every one must be created."""
    return created(await storage.store_messages(drafts))


def seqs(found: Sequence[Message]) -> list[int]:
    return [m.seq for m in found]


#: Web Push keys of the right sizes (65 and 16 bytes, base64url).
KEYS = WebPushKeys(p256dh="B" + "A" * 86, auth="A" * 22)
_device_ids = itertools.count()


_push_ids = itertools.count()


def queued(target: Device | str, due_ts: int, **push: Any) -> QueuedPush:
    """A push for a device (or a device id), due at `due_ts`."""
    device_id = target if isinstance(target, str) else target.id
    body = {"type": "message", "room_id": "r", "message_id": "m", "seq": 1, **push}
    return QueuedPush(
        id=f"push{next(_push_ids):028d}",
        device_id=device_id,
        push=body,
        due_ts=due_ts,
        created_ts=1,
    )


def device(user: User | str, platform: Any, ts: int = 1_000, **fields: Any) -> Device:
    """A new Device of `user` (`fields`: token, endpoint, keys)."""
    return Device(
        id=f"device{next(_device_ids):026d}",
        user_id=user if isinstance(user, str) else user.id,
        platform=platform,
        created_ts=ts,
        **fields,
    )


class StorageContract:
    """The contract suite; subclasses provide the `storage` fixture (and `other_node`)."""

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    @pytest.fixture
    def other_node(self) -> Storage:
        """A second started storage on the same data as `storage` (another server node)."""
        pytest.skip("this backend provides no second node on the same data (other_node)")

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
            "greeting": 'Grüße, 世界! 👋 "quoted" \\ back\nslash',
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

    # --- storing messages ----------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_store_gives_gapless_seqs_in_draft_order(self, storage: Storage) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        room, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=1)
        first = await store(
            storage,
            draft(room, alice, "t", body="hello", ts=100),
            draft(room, bob, "m", kind="media", body="", media_id="media-1", ts=101),
            draft(room, alice, "s", kind="sticker", body="", sticker_id="st-1", ts=102),
        )
        assert seqs(first) == [1, 2, 3]
        assert len({m.id for m in first}) == 3
        text, media, sticker = first
        assert (text.room_id, text.sender_id, text.ref, text.kind, text.body, text.ts) == (
            room.id,
            alice.id,
            "t",
            "text",
            "hello",
            100,
        )
        assert (text.edited_ts, text.deleted, text.reply_to, text.media_id) == (
            None,
            False,
            None,
            None,
        )
        assert (media.kind, media.media_id, media.sender_id) == ("media", "media-1", bob.id)
        assert (sticker.kind, sticker.sticker_id) == ("sticker", "st-1")
        reply = await store(storage, draft(room, bob, "r", reply_to=text.id, ts=200))
        assert seqs(reply) == [4] and reply[0].reply_to == text.id
        assert await storage.messages_after(room.id, 0, 10) == [*first, *reply]
        for message in [*first, *reply]:
            assert await storage.get_message(room.id, message.id) == message
        after = await storage.get_room(room.id)
        assert after is not None and (after.last_seq, after.last_ts) == (4, 200)
        assert await storage.store_messages([]) == []

    @pytest.mark.anyio
    async def test_messages_returned_are_plain_models_on_the_wire(self, storage: Storage) -> None:
        """Every way a message comes back (stored, repeated, read, listed) gives a Message
        equal to its validated copy, whose `message` event is what the contract shows: the
        fields as JSON, those that are None left out."""
        alice, bob = await make_users(storage, "alice", "bob")
        room, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=1)
        (text,) = await store(storage, draft(room, alice, "t", body="héllo", ts=5))
        (media,) = await store(storage, draft(room, bob, "m", kind="media", media_id="md", ts=6))
        (reply,) = await store(storage, draft(room, bob, "r", reply_to=text.id, ts=7))
        deleted = await storage.delete_message(room.id, media.id, now_ts=8)
        edited = await storage.edit_message(room.id, text.id, "edited", now_ts=9)
        (again,) = await storage.store_messages([draft(room, bob, "r")])
        view = await storage.room_view(room.id, alice.id)
        assert view is not None and view.last_message is not None
        found = [
            text,
            media,
            reply,
            deleted,
            edited,
            again.message if isinstance(again, Stored) else None,
            view.last_message,
            *await storage.messages_after(room.id, 0, 10),
            *await storage.messages_before(room.id, None, 10),
            *await storage.updated_since(room.id, 0, 10),
            await storage.get_message(room.id, reply.id),
            await storage.find_message_by_ref(bob.id, room.id, "m"),
        ]
        for message in found:
            assert isinstance(message, Message)
            validated = Message.model_validate(message.model_dump())
            assert message == validated and message.model_fields_set == validated.model_fields_set
            shown = orjson.loads(message_event(message))["message"]
            assert shown == validated.model_dump(mode="json", exclude_none=True)
            assert list(shown) == list(validated.model_dump(exclude_none=True))  # same order
            assert shown["deleted"] is message.deleted and type(message.deleted) is bool
        assert deleted is not None and deleted.deleted and "media_id" not in deleted.wire()
        assert edited is not None and edited.wire()["edited_ts"] == 9

    @pytest.mark.anyio
    async def test_same_key_in_one_batch_stores_one_message(self, storage: Storage) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        room, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=1)
        results = await storage.store_messages(
            [
                draft(room, alice, "k", body="first"),
                draft(room, alice, "k", body="second"),  # same key: the first's message
                draft(room, bob, "k", body="bob's"),  # another sender: another key
                draft(room, alice, "k2", body="next"),
            ]
        )
        assert all(isinstance(r, Stored) for r in results), results
        first, again, bobs, nxt = (r for r in results if isinstance(r, Stored))
        assert first.created and not again.created and bobs.created and nxt.created
        assert again.message == first.message and again.message.body == "first"
        assert (first.message.seq, bobs.message.seq, nxt.message.seq) == (1, 2, 3)  # no gap
        assert seqs(await storage.messages_after(room.id, 0, 10)) == [1, 2, 3]

    @pytest.mark.anyio
    async def test_same_key_again_returns_the_stored_message(self, storage: Storage) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        room, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=1)
        other = await storage.create_group_room(alice.id, "other", [], now_ts=1)
        (original,) = await store(storage, draft(room, alice, "k", body="original", ts=10))
        repeat = await storage.store_messages(
            [draft(room, alice, "k", body="changed", kind="sticker", sticker_id="x", ts=20)]
        )
        assert repeat == [Stored(message=original, created=False)]  # unchanged, whatever sent
        assert await storage.find_message_by_ref(alice.id, room.id, "k") == original
        assert await storage.find_message_by_ref(bob.id, room.id, "k") is None
        assert await storage.find_message_by_ref(alice.id, other.id, "k") is None
        # The same ref in another room is another key.
        (elsewhere,) = await store(storage, draft(other, alice, "k"))
        assert elsewhere.id != original.id and elsewhere.seq == 1
        after = await storage.get_room(room.id)
        assert after is not None and (after.last_seq, after.last_ts) == (1, 10)

    @pytest.mark.anyio
    async def test_refused_drafts_write_nothing_and_use_no_seq(self, storage: Storage) -> None:
        alice, bob, mallory = await make_users(storage, "alice", "bob", "mallory")
        room, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=1)
        other, _ = await storage.create_direct_room(alice.id, mallory.id, now_ts=1)
        (foreign,) = await store(storage, draft(other, alice, "elsewhere"))
        results = await storage.store_messages(
            [
                draft(room, alice, "ok1"),
                draft(room, mallory, "intruder"),  # not a member
                draft(room, bob, "ok2"),
                draft("no-such-room", alice, "lost"),
                draft(room, bob, "bad-reply", reply_to=foreign.id),  # another room's message
                draft(room, bob, "no-reply", reply_to="no-such-message"),
                draft(room, alice, "ok3"),
            ]
        )
        codes = [r.code if isinstance(r, ChatError) else r.message.seq for r in results]
        assert codes == [
            1,
            ErrorCode.NOT_FOUND,
            2,
            ErrorCode.NOT_FOUND,
            ErrorCode.BAD_REQUEST,
            ErrorCode.BAD_REQUEST,
            3,
        ]
        assert all(isinstance(r, Stored) and r.created for r in results[::2][:2]), results
        assert [m.ref for m in await storage.messages_after(room.id, 0, 10)] == [
            "ok1",
            "ok2",
            "ok3",
        ]
        # A refused send does not use up its ref.
        assert await storage.find_message_by_ref(bob.id, room.id, "bad-reply") is None
        (fixed,) = await store(storage, draft(room, bob, "bad-reply"))
        assert fixed.seq == 4
        # Membership is checked when storing: someone who left can no longer send.
        group = await storage.create_group_room(alice.id, "g", [bob.id], now_ts=1)
        await storage.remove_member(group.id, bob.id)
        (refused,) = await storage.store_messages([draft(group, bob, "late")])
        assert isinstance(refused, ChatError) and refused.code is ErrorCode.NOT_FOUND

    @pytest.mark.anyio
    async def test_a_batch_across_rooms_judges_each_draft_as_if_alone(
        self, storage: Storage
    ) -> None:
        """Drafts for several rooms, interleaved, with retries, replies, blocks and refusals:
        each answered as a batch of its own would be, each room's seqs gapless in draft order;
        the same batch again answers every stored draft with its message."""
        alice, bob, carol = await make_users(storage, "alice", "bob", "carol")
        direct, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=1)
        blocked, _ = await storage.create_direct_room(alice.id, carol.id, now_ts=1)
        group = await storage.create_group_room(alice.id, "g", [bob.id, carol.id], now_ts=1)
        (earlier,) = await store(storage, draft(direct, alice, "earlier", ts=2))
        (in_group,) = await store(storage, draft(group, carol, "earlier", ts=3))
        await storage.block(carol.id, alice.id, now_ts=4)
        batch = [
            draft(direct, alice, "x", reply_to=earlier.id, ts=10),
            draft(group, bob, "x", kind="media", body="", media_id="md", ts=11),
            draft(blocked, alice, "x"),  # carol blocks alice: alice is only "not accepted"
            draft(group, carol, "y", reply_to=earlier.id),  # another room's message
            draft(direct, alice, "earlier", body="again"),  # a retry: the original
            draft(group, alice, "z", reply_to=in_group.id, ts=12),
            draft(direct, bob, "x", kind="sticker", body="", sticker_id="st", ts=13),
            draft(blocked, carol, "y"),  # the blocker: told why
            draft(direct, alice, "x", body="twice"),  # the first draft's key
            draft("no-such-room", alice, "x"),
            draft(group, alice, "r" * 129),  # too long a ref
        ]
        results = await storage.store_messages(batch)
        answers = [
            r.code if isinstance(r, ChatError) else (r.message.seq, r.created) for r in results
        ]
        assert answers == [
            (2, True),
            (2, True),
            ErrorCode.FORBIDDEN,
            ErrorCode.BAD_REQUEST,
            (1, False),
            (3, True),
            (3, True),
            ErrorCode.FORBIDDEN,
            (2, False),
            ErrorCode.NOT_FOUND,
            ErrorCode.BAD_REQUEST,
        ]
        said = [r.message for r in results if isinstance(r, ChatError)][:3:2]
        assert said == [NOT_ACCEPTED, YOU_BLOCKED]
        stored = [r.message for r in results if isinstance(r, Stored)]
        assert stored[2] == earlier and stored[5] == stored[0]
        d1, g1, g2, d2 = stored[0], stored[1], stored[3], stored[4]
        assert (d1.reply_to, d1.body, d1.ts, d2.sticker_id, d2.kind) == (
            earlier.id,
            "body of x",
            10,
            "st",
            "sticker",
        )
        assert (g1.media_id, g1.body, g1.sender_id, g2.reply_to) == ("md", "", bob.id, in_group.id)
        assert await storage.messages_after(direct.id, 0, 10) == [earlier, d1, d2]
        assert await storage.messages_after(group.id, 0, 10) == [in_group, g1, g2]
        assert await storage.messages_after(blocked.id, 0, 10) == []
        rooms = [await storage.get_room(room.id) for room in (direct, group, blocked)]
        assert [(r.last_seq, r.last_ts) for r in rooms if r is not None] == [
            (3, 13),
            (3, 12),
            (0, 1),
        ]
        again = await storage.store_messages(batch)
        assert [r.message for r in again if isinstance(r, Stored)] == [
            d1,
            g1,
            earlier,
            g2,
            d2,
            d1,
        ]
        assert not any(r.created for r in again if isinstance(r, Stored))
        assert [r.code for r in again if isinstance(r, ChatError)] == [
            ErrorCode.FORBIDDEN,
            ErrorCode.BAD_REQUEST,
            ErrorCode.FORBIDDEN,
            ErrorCode.NOT_FOUND,
            ErrorCode.BAD_REQUEST,
        ]

    @pytest.mark.anyio
    async def test_concurrent_batches_keep_seqs_gapless(self, storage: Storage) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        room = await storage.create_group_room(alice.id, "busy", [bob.id], now_ts=1)
        batches = [
            [draft(room, (alice, bob)[(b + i) % 2], f"{b}-{i}") for i in range(5)]
            for b in range(20)
        ]
        results = await gather(*(storage.store_messages(batch) for batch in batches))
        answers = [created(r) for r in results]  # raises on an exception or a refusal
        for answer in answers:  # one batch's messages in its draft order
            assert seqs(answer) == sorted(seqs(answer))
        assert sorted(s for answer in answers for s in seqs(answer)) == list(range(1, 101))
        history = await storage.messages_after(room.id, 0, 500)
        assert seqs(history) == list(range(1, 101))
        assert {m.id for m in history} == {m.id for answer in answers for m in answer}
        after = await storage.get_room(room.id)
        assert after is not None and after.last_seq == 100

    @pytest.mark.anyio
    async def test_two_nodes_writing_one_room_keep_seqs_gapless(
        self, storage: Storage, other_node: Storage
    ) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        room = await other_node.create_group_room(alice.id, "busy", [bob.id], now_ts=1)
        nodes = (storage, other_node)
        calls = [
            nodes[b % 2].store_messages(
                [draft(room, (alice, bob)[i % 2], f"{b}-{i}") for i in range(5)]
            )
            for b in range(16)
        ]
        answers = [created(r) for r in await gather(*calls)]
        assert sorted(s for answer in answers for s in seqs(answer)) == list(range(1, 81))
        for node in nodes:
            assert seqs(await node.messages_after(room.id, 0, 500)) == list(range(1, 81))
            assert (await node.room_seqs(alice.id))[room.id] == 80

    @pytest.mark.anyio
    async def test_one_key_sent_concurrently_is_stored_once(self, storage: Storage) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        room, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=1)
        keys = [f"k{i}" for i in range(6)]
        calls = [
            storage.store_messages([draft(room, alice, key, body=f"try {n}")])
            for key in keys
            for n in range(3)
        ]
        await self._check_stored_once(storage, room, keys, await gather(*calls))

    @pytest.mark.anyio
    async def test_one_key_sent_to_two_nodes_at_once_is_stored_once(
        self, storage: Storage, other_node: Storage
    ) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        room, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=1)
        keys = [f"k{i}" for i in range(6)]
        calls = [
            node.store_messages([draft(room, alice, key, body=f"via node {n}")])
            for key in keys
            for n, node in enumerate((storage, other_node, storage))
        ]
        await self._check_stored_once(other_node, room, keys, await gather(*calls))

    async def _check_stored_once(
        self, storage: Storage, room: Room, keys: list[str], results: list[Any]
    ) -> None:
        """`results` holds, key after key, the answers to sending each key several times."""
        per_key = len(results) // len(keys)
        for k, key in enumerate(keys):
            answers = results[k * per_key : (k + 1) * per_key]
            assert all(isinstance(a, list) and isinstance(a[0], Stored) for a in answers), answers
            outcomes = [a[0] for a in answers]
            assert sorted(o.created for o in outcomes) == [False] * (per_key - 1) + [True]
            assert len({(o.message.id, o.message.seq, o.message.body) for o in outcomes}) == 1
            assert outcomes[0].message.ref == key
        history = await storage.messages_after(room.id, 0, 100)
        assert seqs(history) == list(range(1, len(keys) + 1))  # no seq burnt by a repeat
        assert sorted(m.ref for m in history) == keys

    # --- reading, editing and deleting -----------------------------------------------------------

    @pytest.mark.anyio
    async def test_history_pages(self, storage: Storage) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        room, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=1)
        noise = await storage.create_group_room(alice.id, "noise", [], now_ts=1)
        await store(storage, *(draft(room, alice, f"m{i}") for i in range(10)))
        await store(storage, *(draft(noise, alice, f"n{i}") for i in range(3)))

        async def after(seq: int, limit: int) -> list[int]:
            return seqs(await storage.messages_after(room.id, seq, limit))

        async def before(seq: int | None, limit: int) -> list[int]:
            return seqs(await storage.messages_before(room.id, seq, limit))

        assert await after(0, 3) == [1, 2, 3]  # oldest first
        assert await after(3, 3) == [4, 5, 6]
        assert await after(8, 5) == [9, 10]
        assert await after(10, 5) == []
        assert await after(-5, 2) == [1, 2]
        assert await after(0, 0) == []
        assert await after(0, 100) == list(range(1, 11))
        assert await before(None, 3) == [10, 9, 8]  # newest first
        assert await before(8, 3) == [7, 6, 5]
        assert await before(3, 5) == [2, 1]
        assert await before(1, 5) == []
        assert await before(100, 2) == [10, 9]
        assert await before(None, 0) == []
        assert [m.room_id for m in await storage.messages_after(room.id, 0, 100)] == [room.id] * 10

    @pytest.mark.anyio
    async def test_get_message_belongs_to_its_room(self, storage: Storage) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        room, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=1)
        other = await storage.create_group_room(alice.id, "other", [], now_ts=1)
        (message,) = await store(storage, draft(room, alice, "m"))
        assert await storage.get_message(room.id, message.id) == message
        assert await storage.get_message(other.id, message.id) is None
        assert await storage.get_message(room.id, "no-such-message") is None

    @pytest.mark.anyio
    async def test_edit_message(self, storage: Storage) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        room, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=1)
        other = await storage.create_group_room(alice.id, "other", [], now_ts=1)
        (message, keep) = await store(storage, draft(room, alice, "m"), draft(room, bob, "k"))
        edited = await storage.edit_message(room.id, message.id, "fixed", now_ts=1_000)
        assert edited == message.model_copy(update={"body": "fixed", "edited_ts": 1_000})
        assert await storage.get_message(room.id, message.id) == edited
        again = await storage.edit_message(room.id, message.id, "fixed twice", now_ts=2_000)
        assert again is not None and (again.body, again.edited_ts) == ("fixed twice", 2_000)
        assert await storage.get_message(room.id, keep.id) == keep  # only that one changed
        assert await storage.edit_message(other.id, message.id, "x", now_ts=3_000) is None
        assert await storage.edit_message(room.id, "no-such-message", "x", now_ts=3_000) is None
        await storage.delete_message(room.id, message.id, now_ts=4_000)
        assert await storage.edit_message(room.id, message.id, "x", now_ts=5_000) is None
        found = await storage.get_message(room.id, message.id)
        assert found is not None and (found.body, found.deleted) == ("", True)

    @pytest.mark.anyio
    async def test_delete_message_keeps_its_seq_and_clears_its_content(
        self, storage: Storage
    ) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        room, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=1)
        (text, media, sticker) = await store(
            storage,
            draft(room, alice, "t", body="secret"),
            draft(room, alice, "m", kind="media", body="caption", media_id="media-1"),
            draft(room, alice, "s", kind="sticker", sticker_id="st-1"),
        )
        for message in (text, media, sticker):
            deleted = await storage.delete_message(room.id, message.id, now_ts=1_000)
            assert deleted == message.model_copy(
                update={"body": "", "media_id": None, "sticker_id": None, "deleted": True}
            )
            assert await storage.get_message(room.id, message.id) == deleted
            # Deleting twice answers the deleted message.
            assert await storage.delete_message(room.id, message.id, now_ts=2_000) == deleted
        assert seqs(await storage.messages_after(room.id, 0, 10)) == [1, 2, 3]
        assert await storage.delete_message(room.id, "no-such-message", now_ts=1) is None
        # Its key stays used: a repeat answers the deleted message.
        repeat = await storage.store_messages([draft(room, alice, "t", body="secret")])
        assert isinstance(repeat[0], Stored) and repeat[0].created is False
        assert repeat[0].message.deleted is True and repeat[0].message.body == ""
        view = await storage.room_view(room.id, alice.id)
        assert view is not None and view.last_message is not None
        assert (view.last_message.seq, view.last_message.deleted) == (3, True)

    @pytest.mark.anyio
    async def test_updated_since(self, storage: Storage) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        room, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=1)
        other = await storage.create_group_room(alice.id, "other", [], now_ts=1)
        sent = await store(storage, *(draft(room, alice, f"m{i}") for i in range(6)))
        (elsewhere,) = await store(storage, draft(other, alice, "o"))
        await storage.edit_message(room.id, sent[1].id, "edited", now_ts=1_000)  # seq 2
        await storage.delete_message(room.id, sent[3].id, now_ts=2_000)  # seq 4
        await storage.edit_message(room.id, sent[4].id, "edited", now_ts=3_000)  # seq 5
        await storage.edit_message(other.id, elsewhere.id, "edited", now_ts=3_000)

        async def updated(since_ts: int, max_seq: int) -> list[int]:
            return seqs(await storage.updated_since(room.id, since_ts, max_seq))

        assert await updated(0, 100) == [2, 4, 5]  # in seq order; untouched ones never
        assert await updated(999, 100) == [2, 4, 5]
        assert await updated(1_000, 100) == [4, 5]  # after since_ts, not at it
        assert await updated(0, 4) == [2, 4]  # at most max_seq
        assert await updated(3_000, 100) == []
        found = await storage.updated_since(room.id, 0, 100)
        assert [(m.body, m.deleted) for m in found] == [
            ("edited", False),
            ("", True),
            ("edited", False),
        ]
        # Deleting an edited message later shows it once, as deleted.
        await storage.delete_message(room.id, sent[1].id, now_ts=4_000)
        assert await updated(3_500, 100) == [2]

    # --- contacts, invitations and blocks ------------------------------------------------------

    @pytest.mark.anyio
    async def test_user_by_username_is_case_insensitive(self, storage: Storage) -> None:
        (alice,) = await make_users(storage, "Alice")
        assert await storage.get_user_by_username("aLICE") == alice
        assert await storage.get_user_by_username("alic") is None

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
        # By user id, then newest first.
        by_user = sorted([[hook, apns, phone], [bobs]], key=lambda found: found[0].user_id)
        expected = [*by_user[0], *by_user[1]]
        assert await storage.devices_of([bob.id, alice.id, "no-such-user", bob.id]) == expected
        # Only the owner deletes, once.
        assert await storage.delete_device(bob.id, apns.id) is False
        assert await storage.delete_device(alice.id, apns.id) is True
        assert await storage.delete_device(alice.id, apns.id) is False
        assert await storage.delete_device(alice.id, "no-such-device\x00") is False
        assert await storage.list_devices(alice.id) == [hook, phone]
        assert await storage.devices_of([]) == []

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

    # --- rate limits ------------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_a_bucket_gives_its_burst_then_one_token_per_interval(
        self, storage: Storage
    ) -> None:
        key, t = "a" * 64, 10**12
        assert [await storage.take_token(key, 3, 1_000, t) for _ in range(3)] == [0, 0, 0]
        # Empty: the next token is one interval away, and asking again takes nothing.
        assert await storage.take_token(key, 3, 1_000, t) == 1_000
        assert await storage.take_token(key, 3, 1_000, t + 400) == 600
        assert await storage.take_token(key, 3, 1_000, t + 1_000) == 0
        assert await storage.take_token(key, 3, 1_000, t + 1_000) == 1_000
        # Other keys have buckets of their own.
        assert await storage.take_token("b", 1, 1_000, t) == 0
        assert await storage.take_token("b", 1, 1_000, t) == 1_000
        # Left alone long enough, a bucket is full again (and no fuller).
        later = t + 60_000
        assert [await storage.take_token(key, 3, 1_000, later) for _ in range(4)] == [
            0,
            0,
            0,
            1_000,
        ]

    @pytest.mark.anyio
    async def test_a_returned_token_can_be_taken_again(self, storage: Storage) -> None:
        t = 10**12
        assert await storage.take_token("k", 2, 5_000, t) == 0
        await storage.return_token("k", 5_000, t)
        assert [await storage.take_token("k", 2, 5_000, t) for _ in range(3)] == [0, 0, 5_000]
        await storage.return_token("k", 5_000, t + 1)
        assert await storage.take_token("k", 2, 5_000, t + 1) == 0
        # Returning to a full bucket, or to one never used, does not make it fuller.
        await storage.return_token("full", 5_000, t)
        await storage.return_token("full", 5_000, t)
        assert [await storage.take_token("full", 2, 5_000, t) for _ in range(3)] == [0, 0, 5_000]

    @pytest.mark.anyio
    async def test_concurrent_takes_on_two_nodes_never_exceed_the_burst(
        self, storage: Storage, other_node: Storage
    ) -> None:
        t = 10**12
        answers = await gather(
            *(
                node.take_token("shared", 4, 60_000, t)
                for _ in range(6)
                for node in (storage, other_node)
            )
        )
        assert not [a for a in answers if isinstance(a, BaseException)], answers
        assert sorted(answers) == [0] * 4 + [60_000] * 8
        # What one node took, the other sees.
        assert await other_node.take_token("shared", 4, 60_000, t + 60_000) == 0
        assert await storage.take_token("shared", 4, 60_000, t + 60_000) == 60_000
