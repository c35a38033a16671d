"""Reports of abuse in SQL: functions on a connection the caller opened.

The caller (`SqlStorage`) chooses the transaction: `create` and `resolve` run in a write
transaction. The partial unique index on (message_id, reporter_id) of open reports makes "one
open report per reporter and message" hold between nodes: the loser of a race is refused,
and its transaction, run again, finds the winner's report.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from chatcore.models import Message, Report, ReportStatus
from chatcore_sql import rows
from chatcore_sql.tables import reports

_COLUMNS = (
    reports.c.id,
    reports.c.room_id,
    reports.c.message_id,
    reports.c.sender_id,
    reports.c.reporter_id,
    reports.c.reason,
    reports.c.ts,
    reports.c.message_json,
    reports.c.status,
    reports.c.resolved_by,
    reports.c.resolved_ts,
    reports.c.note,
)


def _report(row: Any) -> Report:
    values = dict(row._mapping)
    del values["sender_id"]  # the message's own (`Report.message.sender_id`)
    values["message"] = Message.model_validate_json(values.pop("message_json"))
    return Report(**values)


async def _open_one(conn: AsyncConnection, message_id: str, reporter_id: str) -> Report | None:
    stmt = select(*_COLUMNS).where(
        reports.c.message_id == message_id,
        reports.c.reporter_id == reporter_id,
        reports.c.resolved_ts.is_(None),
    )
    row = (await conn.execute(stmt)).first()
    return _report(row) if row is not None else None


async def create(conn: AsyncConnection, report: Report) -> tuple[Report, bool]:
    rows.check_text(report.reason)
    existing = await _open_one(conn, report.message_id, report.reporter_id)
    if existing is not None:
        return existing, False
    values = report.model_dump(exclude={"message"})
    values["message_json"] = report.message.model_dump_json()
    values["sender_id"] = report.message.sender_id
    values.update(status="open", resolved_by=None, resolved_ts=None, note=None)
    await conn.execute(insert(reports).values(**values))
    return Report(**{**report.model_dump(), "status": "open"}), True


async def get(conn: AsyncConnection, report_id: str) -> Report | None:
    row = (await conn.execute(select(*_COLUMNS).where(reports.c.id == report_id))).first()
    return _report(row) if row is not None else None


async def listed(
    conn: AsyncConnection,
    status: ReportStatus | None,
    before: tuple[int, str] | None,
    limit: int,
) -> tuple[list[Report], bool]:
    if limit <= 0:
        return [], False
    stmt = select(*_COLUMNS)
    if status is not None:
        stmt = stmt.where(reports.c.status == status)
    if before is not None:
        ts, report_id = rows.i64(before[0]), before[1]
        stmt = stmt.where(
            or_(reports.c.ts < ts, and_(reports.c.ts == ts, reports.c.id < report_id))
        )
    size = min(limit, rows.I64_MAX - 1)
    stmt = stmt.order_by(reports.c.ts.desc(), reports.c.id.desc()).limit(size + 1)
    page = [_report(row) for row in await conn.execute(stmt)]
    return page[:size], len(page) > size


async def resolve(
    conn: AsyncConnection, report_id: str, resolver_id: str, note: str | None, now_ts: int
) -> tuple[Report, bool] | None:
    rows.check_text(note)
    changed = await conn.execute(
        update(reports)
        .where(reports.c.id == report_id, reports.c.resolved_ts.is_(None))
        .values(status="resolved", resolved_by=resolver_id, resolved_ts=rows.i64(now_ts), note=note)
    )
    report = await get(conn, report_id)
    return (report, changed.rowcount == 1) if report is not None else None


async def erase(conn: AsyncConnection, user_id: str) -> int:
    """The reports' part of `AdminStorage.erase_user`: the copies of the user's messages lose
    their content, the reasons the user wrote become ""; the number of reports changed."""
    changed = 0
    found = await conn.execute(
        select(reports.c.id, reports.c.message_json).where(reports.c.sender_id == user_id)
    )
    for report_id, message_json in found.all():
        kept = Message.model_validate_json(message_json)
        emptied = kept.model_copy(
            update={"body": "", "media_id": None, "sticker_id": None, "deleted": True}
        )
        await conn.execute(
            update(reports)
            .where(reports.c.id == report_id)
            .values(message_json=emptied.model_dump_json())
        )
        changed += 1
    filed = await conn.execute(
        update(reports).where(reports.c.reporter_id == user_id).values(reason="")
    )
    return changed + filed.rowcount
