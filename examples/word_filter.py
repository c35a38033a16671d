"""Moderation with `chatcore_check_message`: mask or reject words before a message is stored.

    plugins = ["word_filter"]          # with examples/ on PYTHONPATH

    [word_filter]
    words = ["darn", "heck"]
    mode = "mask"                      # or "reject"

The hook runs once per message (never per recipient), before storage: a masked message is
stored and delivered masked; a rejected one is answered `error forbidden` and stores nothing,
so the client may fix it and send again with the same ref.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from chatcore import ChatError, ErrorCode, hookimpl
from chatcore.models import User
from chatcore.server.app import App
from chatcore.settings import Section


class WordFilterSettings(Section):
    words: list[str] = []
    mode: Literal["mask", "reject"] = "mask"


@hookimpl
def chatcore_settings_models() -> dict[str, Any]:
    return {"word_filter": WordFilterSettings}


def _pattern(words: list[str]) -> re.Pattern[str] | None:
    if not words:
        return None
    return re.compile(r"\b(" + "|".join(re.escape(w) for w in words) + r")\b", re.IGNORECASE)


@hookimpl
def chatcore_check_message(app: App, sender: User, draft: dict[str, Any]) -> dict[str, Any] | None:
    settings = app.settings.section("word_filter", WordFilterSettings)
    pattern = _pattern(settings.words)
    body = draft.get("body") or ""
    if pattern is None or not pattern.search(body):
        return None
    if settings.mode == "reject":
        raise ChatError(ErrorCode.FORBIDDEN, "This message has a word this server does not allow.")
    return {**draft, "body": pattern.sub(lambda m: "*" * len(m.group()), body)}
