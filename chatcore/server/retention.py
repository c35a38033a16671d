"""Retention: how long a room keeps its messages, and the job that deletes older ones
(docs/protocol.md, Retention).

A room keeps messages for its own number of days, else for the server's `[retention]
default_days` (0: forever). The job runs on every node every `interval_seconds`, but only the
node holding the cluster-wide lease (`RetentionStorage.claim_lease`) does the work: it deletes
each room's oldest messages in batches of `batch_size` (one short transaction each, so sends
are never held up), then the media nothing uses any more: their rows, and the bytes in the
media store once no row names that content. A pass that deleted something is one audit entry
(`retention.purge`, by nobody: a background job).

The job takes "now" from `chatcore.clock` unless a caller gives it (`chatcore retention run
--now-ms`, tests): deleting what is older than a cutoff needs no waiting to be tested.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chatcore.clock import now_ms
from chatcore.errors import ChatError, bad_request
from chatcore.server import audit, room_log
from chatcore.server.moderation import require_room_admin
from chatcore.server.rooms import member_room

if TYPE_CHECKING:
    from chatcore.interfaces import MediaStore
    from chatcore.server.app import App

__all__ = [
    "DAYS_MAX",
    "DAYS_MIN",
    "LEASE_NAME",
    "PassReport",
    "RetentionJob",
    "effective_days",
    "get_setting",
    "run_pass",
    "set_setting",
]

log = logging.getLogger(__name__)

DAYS_MIN, DAYS_MAX = 1, 36500
DAY_MS = 86_400_000
#: The lease's name in `job_leases`: one node of a cluster runs the pass at a time.
LEASE_NAME = "retention"
#: How long a claim holds the lease; the pass renews it after every batch, so a node that dies
#: mid-pass leaves the job to another one this long after its last batch.
LEASE_MS = 5 * 60_000
#: Rooms read per page while a pass walks them.
ROOM_PAGE = 500


def effective_days(own_days: int | None, default_days: int) -> int | None:
    """The days a room keeps its messages: its own setting, else the server's default
    (None: forever)."""
    if own_days is not None:
        return own_days
    return default_days or None


# --- the per-room setting ------------------------------------------------------------------------


async def get_setting(app: App, user_id: str, room_id: str) -> dict[str, Any]:
    """`GET /rooms/{room_id}/retention`: any member may read it (`not_found` otherwise)."""
    await member_room(app, user_id, room_id)
    return await _setting(app, room_id)


async def set_setting(app: App, user_id: str, room_id: str, days: object) -> dict[str, Any]:
    """`PUT /rooms/{room_id}/retention`: a group's owner or admins, either member of a direct
    room (**Decision**: the two are equals there, as with disappearing messages elsewhere).
    `days` None returns the room to the server's default."""
    if days is not None and (
        not isinstance(days, int) or isinstance(days, bool) or not DAYS_MIN <= days <= DAYS_MAX
    ):
        raise bad_request(f"days must be null or a whole number from {DAYS_MIN} to {DAYS_MAX}.")
    room = await member_room(app, user_id, room_id)
    if room.kind == "group":
        await require_room_admin(app, user_id, room_id)
    before = await app.storage.get_room_retention(room_id)
    if before != days:
        await app.storage.set_room_retention(room_id, days, now_ms())
        details = {"days": days, "before": before}
        await audit.record(
            app,
            actor_id=user_id,
            action="room.retention",
            target_kind="room",
            target_id=room_id,
            room_id=room_id,
            details=details,
        )
        # Members see the change live and in the room's history (who did what).
        await room_log.record(app, room, actor_id=user_id, action="room.retention", details=details)
    return await _setting(app, room_id)


async def _setting(app: App, room_id: str) -> dict[str, Any]:
    days = await app.storage.get_room_retention(room_id)
    return {
        "days": days,
        "effective_days": effective_days(days, app.settings.retention.default_days),
        "first_seq": await app.storage.first_seq(room_id),
    }


# --- the job -------------------------------------------------------------------------------------


@dataclass
class PassReport:
    """What one pass did. `ran` False: another node held the lease, nothing was done."""

    ran: bool
    rooms: int = 0
    messages: int = 0
    media: int = 0
    blobs: int = 0
    room_ids: list[str] = field(default_factory=list)

    @property
    def deleted_anything(self) -> bool:
        return bool(self.messages or self.media)

    def details(self) -> dict[str, int]:
        """The counts, as the audit entry keeps them."""
        return {
            "rooms": self.rooms,
            "messages": self.messages,
            "media": self.media,
            "blobs": self.blobs,
        }


def node_holder() -> str:
    """A holder name unique to this process (host, pid, a random part): what a lease names."""
    return f"{socket.gethostname()[:64]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


async def has_work(app: App) -> bool:
    """Whether any room keeps its messages for a limited time (a read, no lease taken)."""
    if app.settings.retention.default_days > 0:
        return True
    return bool(await app.storage.retention_rooms("", 1, every_room=False))


async def run_pass(app: App, *, now_ts: int | None = None, holder: str | None = None) -> PassReport:
    """One pass: take the lease, then delete what is past every room's retention and the media
    that freed. Returns at once (`ran` False) while another holder has the lease."""
    storage, settings = app.storage, app.settings.retention
    now = now_ms() if now_ts is None else now_ts
    holder = holder or node_holder()
    # The lease's clock is the real one, whatever `now_ts` says: nodes compare it.
    if not await storage.claim_lease(LEASE_NAME, holder, now_ms(), LEASE_MS):
        return PassReport(ran=False)
    report = PassReport(ran=True)
    try:
        freed: dict[str, int] = {}  # media of deleted messages -> the cutoff they were deleted by
        after = ""
        while True:
            page = await storage.retention_rooms(
                after, ROOM_PAGE, every_room=settings.default_days > 0
            )
            for room_id, own_days in page:
                days = effective_days(own_days, settings.default_days)
                if days is None:
                    continue
                cutoff = now - days * DAY_MS
                deleted = await _purge_room(app, holder, room_id, cutoff, freed)
                if deleted:
                    report.rooms += 1
                    report.messages += deleted
                    report.room_ids.append(room_id)
            if len(page) < ROOM_PAGE:
                break
            after = page[-1][0]
        # Media freed now were shared before their messages' cutoff; others nothing uses, once
        # older than the default retention (uploads never sent, media of deleted messages).
        by_cutoff: dict[int, list[str]] = {}
        for media_id, cutoff in freed.items():
            by_cutoff.setdefault(cutoff, []).append(media_id)
        unused: list[str] = []
        for cutoff, ids in by_cutoff.items():
            for start in range(0, len(ids), settings.batch_size):
                chunk = ids[start : start + settings.batch_size]
                purged = await storage.purge_media(cutoff, settings.batch_size, only=chunk)
                report.media += purged.count
                unused.extend(purged.unused_sha256)
        if settings.default_days > 0:
            while True:
                await _renew(app, holder)
                purged = await storage.purge_media(
                    now - settings.default_days * DAY_MS, settings.batch_size
                )
                report.media += purged.count
                unused.extend(purged.unused_sha256)
                if purged.count < settings.batch_size:
                    break
        report.blobs = await _delete_blobs(app, unused)
    finally:
        # Free at once: a console command or another node may run the next pass.
        await storage.release_lease(LEASE_NAME, holder)
        # Also after a failure or a lost lease: what was deleted is in the log.
        if report.deleted_anything:
            await audit.record(
                app,
                actor_id=None,
                action="retention.purge",
                target_kind="server",
                target_id="retention",
                details=report.details(),
            )
            log.info(
                "retention: deleted %d messages in %d rooms, %d media (%d stored files)",
                report.messages,
                report.rooms,
                report.media,
                report.blobs,
            )
    return report


async def _purge_room(
    app: App, holder: str, room_id: str, cutoff: int, freed: dict[str, int]
) -> int:
    """Delete the room's messages older than `cutoff`, a batch per transaction."""
    batch, deleted = app.settings.retention.batch_size, 0
    while True:
        purged = await app.storage.purge_messages(room_id, cutoff, batch)
        deleted += purged.count
        for media_id in purged.media_ids:
            freed[media_id] = min(cutoff, freed.get(media_id, cutoff))
        if purged.count < batch:
            return deleted
        await _renew(app, holder)


async def _renew(app: App, holder: str) -> None:
    """Keep the lease for the next batch; losing it (this node stalled past the lease, another
    took over) ends the pass here."""
    if not await app.storage.claim_lease(LEASE_NAME, holder, now_ms(), LEASE_MS):
        raise LeaseLost("another node took the retention lease over")


class LeaseLost(Exception):
    """The pass stopped: its lease went to another node."""


async def _delete_blobs(app: App, unused_sha256: Sequence[str]) -> int:
    """Remove from the media store the content no media row names, with its thumbnails."""
    store: MediaStore | None = app.media
    if store is None or not unused_sha256:
        return 0
    from chatcore.server.media import blob_key, thumbnail_key

    for sha in unused_sha256:
        await store.delete(blob_key(sha))
        for edge in store.policy.thumbnail_sizes:
            for extension in ("jpg", "png"):
                await store.delete(thumbnail_key(sha, edge, extension))
    return len(unused_sha256)


class RetentionJob:
    """The job on one node: a pass every `interval_seconds`, the lease deciding which node
    works. Nothing runs while the default and every room keep messages forever (a pass is
    then a cheap read of the rooms with a setting)."""

    def __init__(
        self, app: App, *, holder: str | None = None, clock: Callable[[], int] = now_ms
    ) -> None:
        self.app = app
        self.holder = holder or node_holder()
        #: "Now" of the cutoffs (tests move it ahead); the lease always uses the real clock.
        self.clock = clock
        self._runner: asyncio.Task[None] | None = None
        #: What the last pass did (None: none ran yet, or nothing to do), and an event set
        #: after each round, which a test may clear and wait on.
        self.last_report: PassReport | None = None
        self.passed = asyncio.Event()

    async def start(self) -> None:
        self._runner = asyncio.create_task(self._run(), name="chatcore retention job")

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        try:
            await self.app.storage.release_lease(LEASE_NAME, self.holder)
        except Exception:  # the storage is going too: the lease simply runs out
            log.debug("retention lease not released", exc_info=True)

    async def _run(self) -> None:
        interval = self.app.settings.retention.interval_seconds
        while True:
            try:
                if await has_work(self.app):
                    self.last_report = await run_pass(
                        self.app, now_ts=self.clock(), holder=self.holder
                    )
            except LeaseLost as exc:
                log.warning("retention pass stopped: %s", exc)
            except ChatError as exc:
                log.error("retention pass failed: %s", exc)
            except Exception:
                log.exception("retention pass failed")
            self.passed.set()
            await asyncio.sleep(interval)
