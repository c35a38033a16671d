"""Account operations shared by every transport and the CLI: the contract's rules live here once."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import orjson

from chatcore.errors import ChatError, ErrorCode, bad_request
from chatcore.server.push.rules import check_preferences

if TYPE_CHECKING:
    from chatcore.models import User
    from chatcore.server.app import App

USERNAME = re.compile(r"[A-Za-z0-9_.-]{3,32}")
PASSWORD_MIN, PASSWORD_MAX = 8, 1024
DISPLAY_NAME_MAX = 64
SEARCH_LIMIT_MAX = 50
SETTINGS_MAX_BYTES = 64 * 1024


def check_username(username: object) -> str:
    if not isinstance(username, str) or not USERNAME.fullmatch(username):
        raise bad_request("A username is 3 to 32 characters: letters, digits, '_', '.' or '-'.")
    return username


def check_password(password: object) -> str:
    if not isinstance(password, str) or not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise bad_request(f"A password is {PASSWORD_MIN} to {PASSWORD_MAX} characters long.")
    return password


def check_display_name(display_name: object, default: str) -> str:
    if display_name is None:
        return default
    if not isinstance(display_name, str) or not display_name.strip():
        raise bad_request("display_name must be a non-empty string.")
    display_name = display_name.strip()
    if len(display_name) > DISPLAY_NAME_MAX:
        raise bad_request(f"display_name is at most {DISPLAY_NAME_MAX} characters.")
    return display_name


async def register(
    app: App, username: object, password: object, display_name: object = None
) -> User:
    """Check the contract's rules, create the user, tell the plugins."""
    username = check_username(username)
    password = check_password(password)
    name = check_display_name(display_name, username)
    user = await app.auth.register(username, password, name)
    await app.user_registered(user)
    return user


async def search_users(app: App, query: str, limit: int | None) -> list[User]:
    limit = SEARCH_LIMIT_MAX if limit is None else max(1, min(limit, SEARCH_LIMIT_MAX))
    query = query.strip()
    if not query:
        return []
    return await app.storage.search_users(query, limit)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch: objects merge recursively, null deletes, the rest replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


async def patch_settings(app: App, user_id: str, patch: Any) -> dict[str, Any]:
    """Apply a merge patch to a user's settings; the result must stay an object of bounded size."""
    if not isinstance(patch, dict):
        raise bad_request("The settings patch must be a JSON object (RFC 7396 merge patch).")
    current = await app.storage.get_settings(user_id)
    updated = merge_patch(current, patch)
    if "push" in updated:
        check_preferences(updated["push"])
    if len(orjson.dumps(updated)) > SETTINGS_MAX_BYTES:
        raise ChatError(
            ErrorCode.TOO_LARGE, f"Settings are limited to {SETTINGS_MAX_BYTES} bytes of JSON."
        )
    await app.storage.put_settings(user_id, updated)
    return updated
