"""The reports endpoints of docs/protocol.md ("Reports"): a member reports a message; server
admins list and resolve reports.

The views stay thin: `chatcore.server.reports` checks membership (an outsider gets
`not_found`), the admin role (`forbidden` for anyone else), every value, and audits each
resolution; the views only read the request and shape the reply.
"""

from __future__ import annotations

from typing import Any

from quart import Response
from quart_schema import document_response, validate_querystring, validate_request

from chatcore.models import Identity, Report
from chatcore.server import reports
from chatcore_rest.auth import requires_admin, requires_auth
from chatcore_rest.endpoints.base import API_PREFIX, Area
from chatcore_rest.endpoints.messages import MESSAGES
from chatcore_rest.jsonio import json_response
from chatcore_rest.openapi import api_doc
from chatcore_rest.schemas import (
    ReportList,
    ReportReply,
    ReportRequest,
    ReportsQuery,
    ResolveRequest,
)
from chatcore_rest.state import rest_state

__all__ = ["ADMIN_REPORTS", "AREA"]

ADMIN_REPORTS = API_PREFIX + "/admin/reports"


def _reply(report: Report) -> dict[str, Any]:
    return {"report": report.wire()}


@requires_auth
@validate_request(ReportRequest)
@document_response(ReportReply, 201)
@document_response(ReportReply, 200)
@api_doc(errors=(400, 401, 404, 409, 413))
async def report_message(
    identity: Identity, room_id: str, message_id: str, data: ReportRequest
) -> Response:
    """Report a message of one of your rooms to the server's admins: 201 with the new report,
    or 200 with your open report of this message (a repeat changes nothing)."""
    report, created = await reports.report_message(
        rest_state().app, identity.user_id, room_id, message_id, data.reason
    )
    return json_response(_reply(report), 201 if created else 200)


@requires_admin
@validate_querystring(ReportsQuery)
@document_response(ReportList)
@api_doc(errors=(400, 401, 403))
async def list_reports(identity: Identity, query_args: ReportsQuery) -> Response:
    """Reports, newest first, each with the message as it was when reported (server admins).

    A page with `has_more` ends with `next`, the `before` of the next page.
    """
    page, next_page = await reports.list_reports(
        rest_state().app,
        identity.user_id,
        status=query_args.status,
        before=query_args.before,
        limit=query_args.limit,
    )
    reply: dict[str, Any] = {"reports": [r.wire() for r in page], "has_more": bool(next_page)}
    if next_page is not None:
        reply["next"] = next_page
    return json_response(reply)


@requires_admin
@validate_request(ResolveRequest)
@document_response(ReportReply)
@api_doc(errors=(400, 401, 403, 404, 409, 413))
async def resolve_report(identity: Identity, report_id: str, data: ResolveRequest) -> Response:
    """Resolve an open report, with an optional note, and delete the message if asked (server
    admins; audited). A report resolved already is 409."""
    report = await reports.resolve(
        rest_state().app,
        identity.user_id,
        report_id,
        note=data.note,
        delete_message=data.delete_message,
    )
    return json_response(_reply(report))


AREA = Area(
    routes=[
        ("POST", MESSAGES + "/<message_id>/report", report_message),
        ("GET", ADMIN_REPORTS, list_reports),
        ("POST", ADMIN_REPORTS + "/<report_id>/resolve", resolve_report),
    ],
    features=("reports",),
)
