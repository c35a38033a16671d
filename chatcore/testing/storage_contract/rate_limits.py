"""The storage contract, token buckets shared by the nodes: `RateLimitStorage`."""

from __future__ import annotations

import pytest

from chatcore.interfaces import Storage
from chatcore.testing.storage_contract.base import ContractBase, gather


class RateLimitsContract(ContractBase):
    """Token buckets shared by the nodes: `RateLimitStorage`."""

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
