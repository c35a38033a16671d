"""The audit log: every admin and moderator action, who did it, to what, and when.

`record` is what every action calls after it happened; entries are kept in storage
(`AdminStorage.add_audit_entry`) and read by admins (`GET /api/v1/admin/audit`, `chatcore
audit`). Action names are dotted, `<target kind>.<verb>`: `user.disable`, `room.ban`,
`message.delete`, `report.resolve`, `retention.purge`. `details` must never hold personal data
that an erasure removes (names, message bodies): ids, counts and choices only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from chatcore.clock import now_ms
from chatcore.errors import bad_request

if TYPE_CHECKING:
    from chatcore.models import AuditEntry
    from chatcore.server.app import App

log = logging.getLogger(__name__)

#: How many entries one page of the log holds by default, and at most.
PAGE_DEFAULT, PAGE_MAX = 50, 200


async def record(
    app: App,
    *,
    actor_id: str | None,
    action: str,
    target_kind: str,
    target_id: str,
    room_id: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Write one audit-log entry (`actor_id` None: the console or a background job).

    Called after the action succeeded. A storage failure here is raised: an action that
    cannot be audited is reported to its caller as failed (it happened, so the log line below
    keeps a trace of it).
    """
    try:
        await app.storage.add_audit_entry(
            now_ms(), actor_id, action, target_kind, target_id, room_id, details or {}
        )
    except Exception:
        log.error(
            "could not write the audit entry %s of %s %s by %s",
            action,
            target_kind,
            target_id,
            actor_id or "the console",
        )
        raise


async def page(
    app: App,
    limit: int | None,
    before: str | None = None,
    target_kind: str | None = None,
    target_id: str | None = None,
) -> tuple[list[AuditEntry], str | None]:
    """A page of the log, newest first (`limit`: default `PAGE_DEFAULT`, at most
    `PAGE_MAX`), and the `before` of the next page (None: this is the last)."""
    if before is not None and not (before.isascii() and before.isdigit()):
        raise bad_request("before must be the `next` of a previous page of the audit log.")
    size = PAGE_DEFAULT if limit is None else max(1, min(limit, PAGE_MAX))
    found = await app.storage.audit_entries(size + 1, before, target_kind, target_id)
    if len(found) > size:
        return found[:size], found[size - 1].id
    return found, None
