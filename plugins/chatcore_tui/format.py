"""Pure text helpers of the terminal client: labels, previews, marks, badges.

No Textual and no engine calls here: every function takes plain values (models, numbers,
dates) and returns a string, so the widgets stay thin and these are unit-tested alone
(tests/tui/test_tui_format.py). Times are epoch milliseconds, shown in the local time zone
unless a `tz` is given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta, tzinfo

from chatcore.client.errors import ApiError, ApiUnavailable, LoggedOut
from chatcore.client.models import Message, OutboxEntry, Room, User

#: The longest preview of a message in a room row or a toast (characters).
PREVIEW_CHARS = 60
#: Unread counts above this show as "99+".
BADGE_MAX = 99


def local_datetime(ts_ms: int, tz: tzinfo | None = None) -> datetime:
    """`ts_ms` (epoch milliseconds) as an aware datetime in `tz` (the local zone by default)."""
    return datetime.fromtimestamp(ts_ms / 1000, tz).astimezone(tz)


def day_of(ts_ms: int, tz: tzinfo | None = None) -> date:
    """The calendar day `ts_ms` falls on: messages of one day share a day separator."""
    return local_datetime(ts_ms, tz).date()


def day_label(day: date, today: date) -> str:
    """A day separator's label: "Today", "Yesterday", the weekday within a week, else the
    date (with the year when it is not this year's)."""
    if day == today:
        return "Today"
    if day == today - timedelta(days=1):
        return "Yesterday"
    if today - timedelta(days=6) <= day < today:
        return f"{day:%A} {day.day} {day:%B}"
    if day.year == today.year:
        return f"{day:%a} {day.day} {day:%B}"
    return f"{day:%a} {day.day} {day:%B} {day.year}"


def separator_line(label: str, width: int = 48) -> str:
    """`label` centred in a rule of `width` cells: "──── Today ────"."""
    inner = f" {label} "
    side = max(2, (width - len(inner)) // 2)
    return "─" * side + inner + "─" * side


def time_label(ts_ms: int, tz: tzinfo | None = None) -> str:
    """The time of day of a message: "09:05"."""
    return f"{local_datetime(ts_ms, tz):%H:%M}"


def when_label(ts_ms: int, now_ms: int, tz: tzinfo | None = None) -> str:
    """A room row's time: the time today, "Yesterday", else the short date."""
    day, today = day_of(ts_ms, tz), day_of(now_ms, tz)
    if day == today:
        return time_label(ts_ms, tz)
    if day == today - timedelta(days=1):
        return "Yesterday"
    if day.year == today.year:
        return f"{day.day} {day:%b}"
    return f"{day.day} {day:%b} {day.year}"


def first_line(text: str, limit: int = PREVIEW_CHARS) -> str:
    """The first non-blank line of `text`, cut to `limit` characters with "…"."""
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    if len(line) > limit:
        return line[: limit - 1].rstrip() + "…"
    return line


def message_preview(
    message: Message, *, sticker_emoji: str | None = None, limit: int = PREVIEW_CHARS
) -> str:
    """What a room row or a toast shows of a message: its first line, or what kind it is."""
    if message.deleted:
        return "message deleted"
    return _kind_preview(message.kind, message.body, sticker_emoji, limit)


def entry_preview(entry: OutboxEntry, *, limit: int = PREVIEW_CHARS) -> str:
    """A queued message's preview (a file not yet uploaded shows its name)."""
    if entry.kind == "media" and entry.file_path and not entry.body:
        return "📎 " + file_name(entry.file_path)
    return _kind_preview(entry.kind, entry.body, None, limit)


def _kind_preview(kind: str, body: str, sticker_emoji: str | None, limit: int) -> str:
    if kind == "media":
        caption = first_line(body, limit - 2)
        return "📎 " + (caption or "file")
    if kind == "sticker":
        return f"{sticker_emoji} sticker" if sticker_emoji else "sticker"
    return first_line(body, limit)


def file_name(path: str) -> str:
    """The last part of a path (either separator)."""
    return path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or path


def outbox_mark(entry: OutboxEntry) -> str:
    """The mark of a local echo: what state the send is in, and for a failure why."""
    if entry.state == "failed":
        reason = entry.error_message or entry.error_code or "refused"
        return f"✗ failed: {reason}"
    if entry.state == "sending" or (entry.state == "pending" and entry.transmitted):
        return "… sending"
    if entry.state == "sent":
        return "✓ sent"
    if entry.state == "cancelled":
        return "cancelled"
    return "⏳ pending"


def unread_badge(count: int) -> str:
    """A room's unread count as shown beside it: "" for none, "99+" above 99."""
    if count <= 0:
        return ""
    return f"{BADGE_MAX}+" if count > BADGE_MAX else str(count)


def display_name(user_id: str, users: Mapping[str, User], me: str | None = None) -> str:
    """A person's name: "you" for `me`, the display name when known, else the id."""
    if me is not None and user_id == me:
        return "you"
    user = users.get(user_id)
    if user is None:
        return user_id
    return user.display_name or user.username


def room_title(room: Room, me: str, users: Mapping[str, User]) -> str:
    """A room's name: a group's own name; a direct room's other member's display name."""
    if room.kind == "direct":
        others = [m for m in room.member_ids if m != me]
        if others:
            return display_name(others[0], users)
        return room.name or "just you"
    return room.name or "unnamed group"


def typing_line(names: Sequence[str]) -> str:
    """The typing indicator: "bob is typing…", "bob and ann are typing…", "3 people are…"."""
    if not names:
        return ""
    if len(names) == 1:
        return f"{names[0]} is typing…"
    if len(names) == 2:
        return f"{names[0]} and {names[1]} are typing…"
    return f"{len(names)} people are typing…"


def connection_line(state: str, detail: str = "", retry_in: float | None = None) -> str:
    """The connection banner's text; empty when all is well (*ready*: no banner)."""
    if state == "ready":
        return ""
    if state == "logged_out":
        text = "Logged out"
    elif state == "connecting":
        text = "Connecting…"
    elif state == "catching_up":
        text = "Connected, catching up…"
    else:
        text = "Offline"
    if detail and state in ("offline", "logged_out"):
        text += f": {detail}"
    if retry_in is not None and state == "offline":
        text += f" (retrying in {max(0, round(retry_in))} s)"
    if state in ("offline", "connecting"):
        text += ". Messages you send are kept and sent when the server answers."
    return text


def error_text(exc: BaseException) -> str:
    """An engine error as one sentence for a person (never a stack trace)."""
    if isinstance(exc, LoggedOut):
        return "You are logged out: log in again."
    if isinstance(exc, ApiUnavailable):
        detail = str(exc).strip()
        return "The server cannot be reached" + (f": {detail}" if detail else ".")
    if isinstance(exc, ApiError):
        return exc.message or exc.code
    return str(exc) or type(exc).__name__
