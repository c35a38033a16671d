"""The terminal client's text helpers (`chatcore_tui.format`): pure functions, no app."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from chatcore.client.errors import ApiError, ApiUnavailable, LoggedOut, OutboxError
from chatcore.client.models import Message, OutboxEntry, Room, User
from chatcore_tui.format import (
    connection_line,
    day_label,
    day_of,
    entry_preview,
    error_text,
    file_name,
    first_line,
    message_preview,
    outbox_mark,
    room_title,
    separator_line,
    time_label,
    typing_line,
    unread_badge,
    when_label,
)

TODAY = date(2024, 6, 12)  # a Wednesday


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def message(**fields: object) -> Message:
    values: dict[str, object] = {
        "id": "m1",
        "room_id": "r1",
        "seq": 1,
        "sender_id": "u1",
        "ref": "ref1",
        "body": "hello",
        "ts": 0,
    }
    return Message.model_validate({**values, **fields})


def entry(**fields: object) -> OutboxEntry:
    values: dict[str, object] = {"ref": "e1", "room_id": "r1", "position": 1, "created_ts": 0}
    return OutboxEntry.model_validate({**values, **fields})


@pytest.mark.parametrize(
    ("day", "label"),
    [
        (TODAY, "Today"),
        (TODAY - timedelta(days=1), "Yesterday"),
        (TODAY - timedelta(days=3), "Sunday 9 June"),
        (TODAY - timedelta(days=6), "Thursday 6 June"),
        (TODAY - timedelta(days=7), "Wed 5 June"),
        (date(2023, 12, 31), "Sun 31 December 2023"),
    ],
)
def test_day_labels_name_recent_days_and_date_older_ones(day: date, label: str) -> None:
    assert day_label(day, TODAY) == label


def test_days_and_times_are_read_in_the_given_time_zone() -> None:
    late = ms(datetime(2024, 6, 12, 23, 30, tzinfo=UTC))
    assert day_of(late, UTC) == date(2024, 6, 12)
    assert day_of(late, timezone(timedelta(hours=2))) == date(2024, 6, 13)
    assert time_label(late, UTC) == "23:30"
    assert time_label(ms(datetime(2024, 6, 12, 9, 5, tzinfo=UTC)), UTC) == "09:05"


def test_a_room_rows_time_is_the_hour_today_then_yesterday_then_the_date() -> None:
    now = ms(datetime(2024, 6, 12, 18, 0, tzinfo=UTC))
    assert when_label(ms(datetime(2024, 6, 12, 8, 15, tzinfo=UTC)), now, UTC) == "08:15"
    assert when_label(ms(datetime(2024, 6, 11, 8, 15, tzinfo=UTC)), now, UTC) == "Yesterday"
    assert when_label(ms(datetime(2024, 3, 2, 8, 15, tzinfo=UTC)), now, UTC) == "2 Mar"
    assert when_label(ms(datetime(2022, 3, 2, 8, 15, tzinfo=UTC)), now, UTC) == "2 Mar 2022"


def test_a_separator_centres_its_label_in_a_rule() -> None:
    line = separator_line("Today", 21)
    assert line == "─" * 7 + " Today " + "─" * 7
    assert separator_line("a very long label indeed", 10).count("─") == 4


def test_first_line_skips_blank_lines_and_cuts_long_ones() -> None:
    assert first_line("\n  \n  first  \nsecond") == "first"
    assert first_line("x" * 100, 10) == "x" * 9 + "…"
    assert first_line("") == ""


def test_message_previews_say_what_kind_a_message_is() -> None:
    assert message_preview(message(body="hi there\nmore")) == "hi there"
    assert message_preview(message(deleted=True, body="")) == "message deleted"
    assert message_preview(message(kind="media", media_id="x", body="")) == "📎 file"
    assert message_preview(message(kind="media", media_id="x", body="holiday")) == "📎 holiday"
    assert message_preview(message(kind="sticker", sticker_id="s", body="")) == "sticker"
    sticker = message(kind="sticker", sticker_id="s", body="")
    assert message_preview(sticker, sticker_emoji="🐱") == "🐱 sticker"


def test_a_queued_files_preview_is_its_name() -> None:
    assert entry_preview(entry(kind="media", file_path="/home/ann/cat.png")) == "📎 cat.png"
    assert entry_preview(entry(body="queued text")) == "queued text"
    assert file_name("C:\\docs\\report.pdf") == "report.pdf"


def test_outbox_marks_say_pending_sending_or_failed_with_the_reason() -> None:
    assert outbox_mark(entry()) == "⏳ pending"
    assert outbox_mark(entry(transmitted=True)) == "… sending"
    assert outbox_mark(entry(state="sending")) == "… sending"
    failed = entry(state="failed", error_code="too_large", error_message="Too big.")
    assert outbox_mark(failed) == "✗ failed: Too big."
    assert outbox_mark(entry(state="failed", error_code="forbidden")) == "✗ failed: forbidden"
    assert outbox_mark(entry(state="sent")) == "✓ sent"


@pytest.mark.parametrize(
    ("count", "badge"), [(0, ""), (-1, ""), (1, "1"), (99, "99"), (100, "99+")]
)
def test_unread_badges(count: int, badge: str) -> None:
    assert unread_badge(count) == badge


def test_a_direct_room_is_named_after_the_other_member() -> None:
    bob = User(id="bob", username="bob", display_name="Bob B.")
    direct = Room(id="r", kind="direct", member_ids=("ann", "bob"))
    assert room_title(direct, "ann", {"bob": bob}) == "Bob B."
    assert room_title(direct, "ann", {}) == "bob"  # unknown: the id
    group = Room(id="g", kind="group", name="Team", member_ids=("ann", "bob"))
    assert room_title(group, "ann", {"bob": bob}) == "Team"


def test_typing_lines() -> None:
    assert typing_line([]) == ""
    assert typing_line(["bob"]) == "bob is typing…"
    assert typing_line(["bob", "cy"]) == "bob and cy are typing…"
    assert typing_line(["bob", "cy", "di"]) == "3 people are typing…"


def test_the_connection_line_is_empty_when_ready_and_says_why_otherwise() -> None:
    assert connection_line("ready") == ""
    offline = connection_line("offline", "connection refused", 3.4)
    assert offline.startswith("Offline: connection refused (retrying in 3 s)")
    assert "sent when the server answers" in offline
    assert connection_line("connecting").startswith("Connecting…")
    assert connection_line("catching_up") == "Connected, catching up…"
    assert connection_line("logged_out", "Logged out.") == "Logged out: Logged out."


def test_errors_read_as_sentences() -> None:
    assert error_text(LoggedOut()) == "You are logged out: log in again."
    assert error_text(ApiUnavailable("connection refused")) == (
        "The server cannot be reached: connection refused"
    )
    assert error_text(ApiError(403, "forbidden", "Not yours.")) == "Not yours."
    assert error_text(OutboxError("There is no file at x.")) == "There is no file at x."
