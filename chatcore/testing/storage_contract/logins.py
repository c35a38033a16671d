"""The storage contract, logins and the rotation of their refresh tokens: `UserStorage`."""

from __future__ import annotations

import pytest

from chatcore.interfaces import Storage
from chatcore.testing.storage_contract.base import FAR, ContractBase, gather, make_user


class LoginsContract(ContractBase):
    """Logins and the rotation of their refresh tokens: `UserStorage`."""

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
