"""The APNs request body of a chatcore push, and how much of APNs' 4096 bytes it leaves the push.

The body is `{"aps": {...}, "chatcore": <the push>}`: the `aps` dictionary is what iOS shows
(alert title and body, sound, thread) and the push itself rides along for the app. The alert
repeats text the push holds (the preview, names), so its title, body and thread id are cut to
fixed budgets: what the `aps` part can take is then bounded (`APS_RESERVE_BYTES`), and a push
of at most `MAX_PUSH_BYTES` always fits the 4096 bytes APNs accepts for an alert, whatever its
text (escapes are counted) and however long its room id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

__all__ = [
    "APS_RESERVE_BYTES",
    "BODY_BYTES",
    "MAX_BODY_BYTES",
    "MAX_PUSH_BYTES",
    "NEW_MESSAGE",
    "THREAD_ID_BYTES",
    "TITLE_BYTES",
    "alert_of",
    "body_of",
    "clip",
]

#: APNs refuses a notification body over 4096 bytes (413 PayloadTooLarge); VoIP's 5120 is not ours.
MAX_BODY_BYTES = 4096
#: Budgets of the alert's strings, as JSON (escapes count, quotes do not). A banner shows one
#: line of title and a few of body; the app's Notification Service Extension can show more.
TITLE_BYTES = 128
BODY_BYTES = 512
#: The thread id is the room id, short in chatcore (32 hex digits); longer ones are cut.
THREAD_ID_BYTES = 64
#: The title of a push without names or preview (id-only, for privacy): the extension
#: replaces it once it has fetched the message.
NEW_MESSAGE = "New message"
#: Marks a cut string: 3 bytes of UTF-8, counted within the budget.
ELLIPSIS = "…"


def _aps(alert: Mapping[str, str], thread_id: str) -> dict[str, Any]:
    return {"alert": dict(alert), "sound": "default", "thread-id": thread_id, "mutable-content": 1}


def _reserve() -> int:
    # The body around the push when every budget is used to the full: everything but the push.
    widest = _aps({"title": "x" * TITLE_BYTES, "body": "x" * BODY_BYTES}, "x" * THREAD_ID_BYTES)
    return len(orjson.dumps({"aps": widest, "chatcore": None})) - len(b"null")


#: Bytes of the body that are not the push, at most.
APS_RESERVE_BYTES = _reserve()
#: The largest push (its JSON) whose body stays within `MAX_BODY_BYTES`.
MAX_PUSH_BYTES = MAX_BODY_BYTES - APS_RESERVE_BYTES


def _json_size(text: str) -> int:
    return len(orjson.dumps(text)) - 2


def clip(text: str, limit: int) -> str:
    """`text`, cut so that as a JSON string (without its quotes) it takes at most `limit`
    bytes; a cut text ends in "…". Escapes count at their encoded size, so a budget holds
    whatever the text is (quotes, control characters, emoji)."""
    if _json_size(text) <= limit:
        return text
    budget, used, end = limit - _json_size(ELLIPSIS), 0, 0
    for index, char in enumerate(text):
        used += _json_size(char)
        if used > budget:
            break
        end = index + 1
    return text[:end] + ELLIPSIS


def _text(push: Mapping[str, Any], key: str) -> str:
    value = push.get(key)
    return value if isinstance(value, str) else ""


def alert_of(push: Mapping[str, Any]) -> dict[str, str]:
    """The `aps.alert` of a push: in a group, the room's name as title and "<sender>: <preview>"
    as body; in a direct chat (or a group without a name), the sender as title and the preview
    as body. Without a preview there is no body; without names the title is "New message"
    (an id-only push: the app's Notification Service Extension fetches the message)."""
    sender, room = _text(push, "sender_name"), _text(push, "room_name")
    preview = _text(push, "preview")
    if push.get("direct") is not True and room:
        title, body = room, (f"{sender}: {preview}" if sender else preview)
    else:
        title, body = sender or room or NEW_MESSAGE, preview
    alert = {"title": clip(title, TITLE_BYTES)}
    if preview:
        alert["body"] = clip(body, BODY_BYTES)
    return alert


def body_of(push: Mapping[str, Any]) -> bytes:
    """The JSON body of the APNs request for `push` (TypeError when the push is not JSON)."""
    aps = _aps(alert_of(push), clip(str(push.get("room_id", "")), THREAD_ID_BYTES))
    return orjson.dumps({"aps": aps, "chatcore": dict(push)})
