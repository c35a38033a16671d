"""Server-side message search: the caller's rooms only, newest first, a page at a time.

A query is words, never a query language: `words` reads the runs of letters and digits of the
caller's text, and the storage matches every one of them (the last also as a prefix), so no
text, however hostile, reaches a database's query syntax. A page ends with an opaque cursor
(`next`), the position of its last message, from which the next page starts.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from chatcore.errors import bad_request
from chatcore.server.rooms import member_room

if TYPE_CHECKING:
    from chatcore.models import Message
    from chatcore.server.app import App

QUERY_MAX = 500  # characters of `q`
WORDS_MAX = 16  # words of a query that count; more would only slow the search down
WORD_MAX = 64  # characters of a word that count (a longer "word" is not a word people type)
RESULTS_LIMIT_DEFAULT = 20
RESULTS_LIMIT_MAX = 100

# Letters and digits of any script; `_` and the rest separate words, as the databases'
# tokenizers (SQLite's unicode61, PostgreSQL's default parser) separate them.
_WORD = re.compile(r"[^\W_]+")
_CURSOR = re.compile(r"(-?[0-9]{1,19})-([!-~]{1,128})")  # ts, then the id (printable ASCII)


def words(query: str) -> list[str]:
    """The words a query searches for: its runs of letters and digits, in order, at most
    WORDS_MAX of them, each cut to WORD_MAX characters (a storage backend's only input)."""
    return [word[:WORD_MAX] for word in _WORD.findall(query)[:WORDS_MAX]]


def cursor_of(ts: int, item_id: str) -> str:
    """The opaque cursor of the position after an item of a page ordered newest first by
    (ts, id) (`next`, given back as `before`): messages here, reports in the admins' list."""
    return f"{ts}-{item_id}"


def parse_cursor(value: str) -> tuple[int, str]:
    """(ts, id) from a cursor `cursor_of` made; `bad_request` for anything else."""
    found = _CURSOR.fullmatch(value)
    if found is None:
        raise bad_request("before must be the `next` of a previous page.")
    return int(found[1]), found[2]


async def search_messages(
    app: App,
    user_id: str,
    query: object,
    room_id: str | None = None,
    before: str | None = None,
    limit: int | None = None,
) -> tuple[list[Message], str | None]:
    """Messages of the caller's rooms (or of `room_id`, which the caller must be a member of:
    `not_found` otherwise) whose text has every word of `query`, newest first, and the cursor
    of the next page (None: this is the last one)."""
    if not isinstance(query, str) or len(query) > QUERY_MAX:
        raise bad_request(f"q must be a text of at most {QUERY_MAX} characters.")
    if not words(query):
        raise bad_request("q needs at least one word (letters or digits) to search for.")
    position = parse_cursor(before) if before is not None else None
    size = RESULTS_LIMIT_DEFAULT if limit is None else max(1, min(limit, RESULTS_LIMIT_MAX))
    if room_id is not None:
        await member_room(app, user_id, room_id)
    found, has_more = await app.storage.search_messages(
        user_id, query, room_id=room_id, before=position, limit=size
    )
    return found, cursor_of(found[-1].ts, found[-1].id) if has_more and found else None
