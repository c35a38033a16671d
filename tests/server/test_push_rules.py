"""A user's push preferences (`chatcore.push_rules`) and what a push says
(`chatcore.server.push.routing`: mentions, previews)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from chatcore.errors import ChatError
from chatcore.models import Message
from chatcore.server.push.routing import mentions, preview_of
from chatcore.server.push.rules import PushPreferences, check_preferences, decide, preferences_of

NOON = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)
PUSH = {
    "type": "message",
    "room_id": "room1",
    "message_id": "m1",
    "seq": 3,
    "ts": 1,
    "sender_id": "u1",
    "sender_name": "Ann",
    "preview": "hi",
    "direct": False,
    "mention": False,
}


def prefs(**values: Any) -> PushPreferences:
    return PushPreferences.model_validate(values)


def test_by_default_every_push_goes_as_it_is() -> None:
    assert decide(dict(PUSH), preferences_of({}), NOON) == PUSH


@pytest.mark.parametrize(
    ("values", "push", "goes"),
    [
        ({"enabled": False}, {}, False),
        ({"group": "none"}, {}, False),
        ({"group": "none"}, {"direct": True}, True),
        ({"direct": "none"}, {"direct": True}, False),
        ({"group": "mentions"}, {}, False),
        ({"group": "mentions"}, {"mention": True}, True),
        ({"rooms": {"room1": "none"}}, {}, False),
        ({"rooms": {"other": "none"}}, {}, True),
        # A room's own level wins over the kind's, both ways.
        ({"group": "none", "rooms": {"room1": "all"}}, {}, True),
        ({"rooms": {"room1": "mentions"}}, {"mention": True}, True),
    ],
)
def test_levels_choose_what_pushes(
    values: dict[str, Any], push: dict[str, Any], goes: bool
) -> None:
    decided = decide({**PUSH, **push}, prefs(**values), NOON)
    assert (decided is not False) is goes


def test_without_preview_only_the_ids_go() -> None:
    assert decide(dict(PUSH), prefs(preview=False), NOON) == {
        "type": "message",
        "room_id": "room1",
        "message_id": "m1",
        "seq": 3,
    }


@pytest.mark.parametrize(
    ("start", "end", "utc_time", "quiet"),
    [
        ("22:00", "07:00", "23:30", True),  # spans midnight
        ("22:00", "07:00", "06:59", True),
        ("22:00", "07:00", "07:00", False),  # the end is not quiet any more
        ("22:00", "07:00", "12:00", False),
        ("09:00", "17:00", "09:00", True),
        ("09:00", "17:00", "17:00", False),
    ],
)
def test_do_not_disturb_hours(start: str, end: str, utc_time: str, quiet: bool) -> None:
    hour, minute = map(int, utc_time.split(":"))
    now = NOON.replace(hour=hour, minute=minute)
    dnd = {"start": start, "end": end}
    assert (decide(dict(PUSH), prefs(dnd=dnd), now) is False) is quiet


def test_do_not_disturb_reads_the_clock_of_its_time_zone() -> None:
    # 12:00 UTC is 21:00 in Tokyo (no daylight saving): inside 20:00-08:00 there, not in UTC.
    tokyo = {"start": "20:00", "end": "08:00", "timezone": "Asia/Tokyo"}
    assert decide(dict(PUSH), prefs(dnd=tokyo), NOON) is False
    assert decide(dict(PUSH), prefs(dnd={**tokyo, "timezone": "UTC"}), NOON) == PUSH


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ({"group": "sometimes"}, "push.group"),
        ({"rooms": {"r": "loud"}}, "push.rooms.r"),
        ({"dnd": {"start": "25:00", "end": "07:00"}}, "push.dnd.start"),
        ({"dnd": {"start": "22:00", "end": "07:00", "timezone": "Mars/Olympus"}}, "push.dnd"),
        ({"volume": 11}, "push.volume"),
        ("loud", "push"),
    ],
)
def test_bad_preferences_are_refused_naming_the_key(value: Any, named: str) -> None:
    with pytest.raises(ChatError) as caught:
        check_preferences(value)
    assert caught.value.code == "bad_request"
    assert f"Settings {named}" in caught.value.message


def test_stored_preferences_that_no_longer_fit_count_as_the_defaults() -> None:
    assert preferences_of({"push": {"group": "sometimes"}}) == PushPreferences()
    assert preferences_of({"push": {"group": "none"}}).group == "none"


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ("hi @bob", True),
        ("@BOB: look", True),
        ("see @bob.", True),
        ("(@bob)", True),
        ("hi @bobby", False),
        ("mail bob@bob.example", False),
        ("hi @bob.smith", False),
        ("hi bob", False),
    ],
)
def test_mentions_name_the_user_exactly(body: str, named: bool) -> None:
    assert mentions(body, "bob") is named


def message(kind: str = "text", body: str = "") -> Message:
    return Message(id="m", room_id="r", sender_id="u", ref="x", kind=kind, body=body, seq=1, ts=1)  # type: ignore[arg-type]


def test_previews_are_one_line_and_bounded() -> None:
    assert preview_of(message(body="line one\n\n  line   two"), 100) == "line one line two"
    assert preview_of(message(body="abcdefghij"), 5) == "abcd…"
    assert preview_of(message(body="abcde"), 5) == "abcde"
    assert preview_of(message(kind="media", body=""), 100) == "Sent a file"
    assert preview_of(message(kind="sticker", body=""), 100) == "Sent a sticker"
