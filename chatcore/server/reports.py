"""Reports of abuse: a member reports a message of their room; server admins list and resolve
reports (docs/protocol.md, Reports).

A report keeps the message as it was when reported, so the admin judges what the reporter saw,
even after an edit, a deletion or a retention purge. Reporting is for members only (an outsider
gets `not_found`, as for the room's history); the admins' side needs a server admin
(`chatcore.server.admin.require_admin`), and every resolution is audited (`report.resolve`,
and `message.delete` when it deletes the message).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from chatcore.clock import now_ms
from chatcore.errors import ChatError, ErrorCode, bad_request, not_found
from chatcore.models import Report, ReportStatus
from chatcore.server import audit
from chatcore.server.admin import require_admin
from chatcore.server.messages import updated_event
from chatcore.server.rooms import member_room
from chatcore.server.search import cursor_of, parse_cursor

if TYPE_CHECKING:
    from chatcore.server.app import App

REASON_MAX = 1000  # characters
NOTE_MAX = 1000  # characters
REPORTS_LIMIT_DEFAULT = 50
REPORTS_LIMIT_MAX = 200
STATUSES: tuple[ReportStatus, ...] = ("open", "resolved")


def _check_text(value: object, name: str, most: int, required: bool) -> str:
    if not isinstance(value, str):
        raise bad_request(f"{name} must be a string.")
    if "\x00" in value:
        raise bad_request(f"{name} cannot contain the NUL character.")
    if len(value) > most or (required and not value.strip()):
        if required:
            raise bad_request(f"{name} must be 1 to {most} characters, not only spaces.")
        raise bad_request(f"{name} must be at most {most} characters.")
    return value


async def report_message(
    app: App, reporter_id: str, room_id: str, message_id: str, reason: object
) -> tuple[Report, bool]:
    """Report a message of a room the reporter is a member of: the new report and True, or
    the reporter's open report of this message and False (a repeat changes nothing)."""
    reason = _check_text(reason, "reason", REASON_MAX, required=True)
    await member_room(app, reporter_id, room_id)
    message = await app.storage.get_message(room_id, message_id)
    if message is None:
        raise not_found("This message")
    if message.sender_id == reporter_id:
        raise bad_request("You cannot report your own message; edit or delete it instead.")
    if message.deleted:
        raise ChatError(ErrorCode.CONFLICT, "This message was deleted: nothing is left to report.")
    report = Report(
        id=uuid.uuid4().hex,
        room_id=room_id,
        message_id=message_id,
        reporter_id=reporter_id,
        reason=reason,
        ts=now_ms(),
        message=message,
    )
    return await app.storage.create_report(report)


async def list_reports(
    app: App,
    admin_id: str,
    status: str | None = None,
    before: str | None = None,
    limit: int | None = None,
) -> tuple[list[Report], str | None]:
    """A page of reports (of one status, or all), newest first, and the cursor of the next
    page (None: the last one). Server admins only."""
    await require_admin(app, admin_id)
    if status is not None and status not in STATUSES:
        raise bad_request(f"status must be one of: {', '.join(STATUSES)}.")
    position = parse_cursor(before) if before is not None else None
    size = REPORTS_LIMIT_DEFAULT if limit is None else max(1, min(limit, REPORTS_LIMIT_MAX))
    page, has_more = await app.storage.list_reports(
        status,  # type: ignore[arg-type]  # one of STATUSES, checked above
        before=position,
        limit=size,
    )
    return page, cursor_of(page[-1].ts, page[-1].id) if has_more and page else None


async def resolve(
    app: App, admin_id: str, report_id: str, note: object = None, delete_message: object = False
) -> Report:
    """Resolve an open report, with an optional note, deleting the reported message too when
    asked (members get `message_updated`). Server admins only; a report resolved already is a
    `conflict` and changes nothing."""
    await require_admin(app, admin_id)
    if note is not None:
        note = _check_text(note, "note", NOTE_MAX, required=False)
    if not isinstance(delete_message, bool):
        raise bad_request("delete_message must be true or false.")
    found = await app.storage.get_report(report_id)
    if found is None:
        raise not_found("This report")
    if found.status != "open":
        raise ChatError(ErrorCode.CONFLICT, "This report is resolved already.")
    now_ts = now_ms()
    message = await app.storage.get_message(found.room_id, found.message_id)
    # Gone (a retention purge) or deleted already: nothing to delete, nothing to announce.
    if delete_message and message is not None and not message.deleted:
        deleted = await app.storage.delete_message(found.room_id, found.message_id, now_ts)
        if deleted is not None:
            await app.hub.publish_room(found.room_id, updated_event(deleted))
            await audit.record(
                app,
                actor_id=admin_id,
                action="message.delete",
                target_kind="message",
                target_id=found.message_id,
                room_id=found.room_id,
                details={"report_id": report_id},
            )
    resolved = await app.storage.resolve_report(report_id, admin_id, note or None, now_ts)
    if resolved is None:
        raise not_found("This report")
    report, changed = resolved
    if not changed:
        raise ChatError(ErrorCode.CONFLICT, "This report is resolved already.")
    await audit.record(
        app,
        actor_id=admin_id,
        action="report.resolve",
        target_kind="report",
        target_id=report_id,
        room_id=report.room_id,
        details={"message_id": report.message_id, "delete_message": delete_message},
    )
    return report
