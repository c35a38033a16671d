"""The search endpoint of docs/protocol.md ("Search"): messages of the caller's rooms.

The view stays thin: `chatcore.server.search` checks the query, the cursor and membership (a
named room the caller is not in answers `not_found`); the view reads the query string and
shapes the reply.
"""

from __future__ import annotations

from quart import Response
from quart_schema import document_response, validate_querystring

from chatcore.models import Identity
from chatcore.server import search
from chatcore_rest.auth import requires_auth
from chatcore_rest.endpoints.base import API_PREFIX, Area
from chatcore_rest.jsonio import json_response
from chatcore_rest.openapi import api_doc
from chatcore_rest.schemas import SearchPage, SearchQuery
from chatcore_rest.state import rest_state

__all__ = ["AREA", "SEARCH"]

SEARCH = API_PREFIX + "/search"


@requires_auth
@validate_querystring(SearchQuery)
@document_response(SearchPage)
@api_doc(errors=(400, 401, 404))
async def search_messages(identity: Identity, query_args: SearchQuery) -> Response:
    """Search the messages of the caller's rooms (or of one of them), newest first.

    Every word of `q` must be in a message, the last one also as a prefix; deleted messages
    never match. A page with `has_more` ends with `next`, the `before` of the next page.
    """
    found, next_page = await search.search_messages(
        rest_state().app,
        identity.user_id,
        query_args.q,
        room_id=query_args.room_id,
        before=query_args.before,
        limit=query_args.limit,
    )
    reply: dict[str, object] = {"messages": [m.wire() for m in found], "has_more": bool(next_page)}
    if next_page is not None:
        reply["next"] = next_page
    return json_response(reply)


AREA = Area(routes=[("GET", SEARCH + "/messages", search_messages)], features=("search",))
