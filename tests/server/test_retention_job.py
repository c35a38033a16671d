"""The retention job (`chatcore.server.retention.RetentionJob`) as a serving node runs it, on
two nodes sharing one PostgreSQL database: a node whose lease is held elsewhere does nothing,
and takes over once the lease is free; "now" is moved two days ahead instead of waiting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

import chatcore_auth
import chatcore_memory
import chatcore_sql
from chatcore.clock import now_ms
from chatcore.models import Draft
from chatcore.server import retention
from chatcore.server.app import App
from chatcore.testing.server import FAST_AUTH
from chatcore.testing.services import postgres_fetch, postgres_url, require_url, unique_name

pytestmark = pytest.mark.anyio

DAY_MS = 86_400_000
WAIT = 20


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_app(storage: dict[str, Any]) -> App:
    """A node on `storage`, its job running every 50 ms, rooms keeping one day by default."""
    return App.from_config(
        None,
        overrides={
            "storage": storage,
            "broker": {"url": "memory://"},
            "auth": {"secret": "s" * 40, **FAST_AUTH},
            "retention": {"default_days": 1, "interval_seconds": 0.05},
        },
        entry_points=False,
        extra_plugins=[chatcore_sql, chatcore_auth, chatcore_memory],
    )


@pytest.fixture
async def two_nodes() -> AsyncIterator[tuple[App, App, dict[str, Any]]]:
    url = postgres_url()
    require_url("PostgreSQL", url)
    storage = {"url": url, "schema": unique_name("retention")}
    first, second = make_app(storage), make_app(storage)
    try:
        await first.start(listen=False)  # migrates the fresh schema
        await second.start(listen=False)
        yield first, second, storage
    finally:
        await second.stop()
        await first.stop()
        await postgres_fetch(url, f'DROP SCHEMA IF EXISTS "{storage["schema"]}" CASCADE')


async def next_pass(job: retention.RetentionJob) -> retention.PassReport | None:
    job.passed.clear()
    async with asyncio.timeout(WAIT):
        await job.passed.wait()
    return job.last_report


async def test_the_job_runs_on_the_node_holding_the_lease(
    two_nodes: tuple[App, App, dict[str, Any]],
) -> None:
    first, second, storage = two_nodes
    alice = await first.storage.create_user("alice", "hash", "Alice")
    bob = await first.storage.create_user("bob", "hash", "Bob")
    room = await first.storage.create_group_room(alice.id, "g", [bob.id], now_ms())
    drafts = [
        Draft(room_id=room.id, sender_id=alice.id, ref=f"r{n}", body=f"m{n}", ts=now_ms())
        for n in range(5)
    ]
    await first.storage.store_messages(drafts)

    def two_days_ahead() -> int:  # the job's "now"; its lease keeps the real clock
        return now_ms() + 2 * DAY_MS

    # Another node holds the lease: the job on `second` runs its rounds but does nothing.
    assert await first.storage.claim_lease(retention.LEASE_NAME, "first", now_ms(), 600_000)
    job = retention.RetentionJob(second, holder="second", clock=two_days_ahead)
    await job.start()
    try:
        report = await next_pass(job)
        assert report is not None and not report.ran
        assert len(await second.storage.messages_after(room.id, 0, 100)) == 5

        # The lease is free: the next round deletes.
        await first.storage.release_lease(retention.LEASE_NAME, "first")
        report = await next_pass(job)
        while report is not None and not report.ran:  # a round already under way saw it held
            report = await next_pass(job)
        assert report is not None and report.messages == 5 and report.room_ids == [room.id]
        assert await first.storage.messages_after(room.id, 0, 100) == []
    finally:
        await job.close()
    # A stopped job leaves no lease behind: another node may take over at once.
    leases = await postgres_fetch(storage["url"], f'SELECT * FROM "{storage["schema"]}".job_leases')
    assert leases == []
