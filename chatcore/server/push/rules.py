"""A user's push preferences (the `push` object of their settings) and the core's own
`chatcore_notify` implementation that applies them.

    PATCH /api/v1/me/settings
    {"push": {"enabled": true,
              "direct": "all", "group": "mentions",
              "rooms": {"<room id>": "none"},
              "preview": false,
              "dnd": {"start": "22:00", "end": "07:30", "timezone": "Europe/Berlin"}}}

Every key is optional. A level says which messages of a room push: "all", "mentions" (a text
that names the user as `@username`) or "none" (muted). `rooms` overrides the level of a room;
else `direct` applies to direct rooms and `group` to the others (both "all" by default).
`enabled: false` turns every push off; `preview: false` keeps only the ids in the push (the
app fetches the message itself). `dnd` holds pushes back between `start` and `end` (wall clock
in `timezone`, an IANA name, UTC by default; an end before the start spans midnight): a
message sent then is not pushed later, it waits in the room like any other.

`patch_settings` (chatcore.server.accounts) refuses a `push` object that does not fit, so a client
hears about a typo at once; a stored one that no longer fits counts as the defaults.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from chatcore.errors import bad_request
from chatcore.hookspecs import hookimpl

if TYPE_CHECKING:
    from chatcore.server.app import App

log = logging.getLogger(__name__)

Level = Literal["all", "mentions", "none"]

#: The fields of an id-only push (`[push] privacy = "id_only"`, or `preview: false`).
ID_ONLY_FIELDS = ("type", "room_id", "message_id", "seq")

_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class DoNotDisturb(BaseModel):
    """Hours without pushes, every day."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: str = Field(description="HH:MM, 24-hour clock")
    end: str = Field(description="HH:MM, 24-hour clock")
    timezone: str = "UTC"

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        if not _CLOCK.match(value):
            raise ValueError("must be a time of day as HH:MM (00:00 to 23:59)")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone name, such as Europe/Berlin") from None
        return value

    def covers(self, when: dt.datetime) -> bool:
        """True when `when` (aware) falls within the hours, in their time zone."""
        local = when.astimezone(ZoneInfo(self.timezone)).strftime("%H:%M")
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # spans midnight


class PushPreferences(BaseModel):
    """The `push` object of a user's settings (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    direct: Level = "all"
    group: Level = "all"
    rooms: dict[str, Level] = Field(default_factory=dict)
    preview: bool = True
    dnd: DoNotDisturb | None = None

    def level_for(self, room_id: str, direct: bool) -> Level:
        return self.rooms.get(room_id) or (self.direct if direct else self.group)


DEFAULTS = PushPreferences()


def check_preferences(value: Any) -> None:
    """Raise `bad_request` naming what does not fit in a `push` settings object."""
    try:
        PushPreferences.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in ("push", *first["loc"]))
        raise bad_request(f"Settings {where}: {first['msg']}.") from None


def preferences_of(settings: dict[str, Any]) -> PushPreferences:
    """The user's preferences; the defaults where they have none or they no longer fit."""
    value = settings.get("push")
    if value is None:
        return DEFAULTS
    try:
        return PushPreferences.model_validate(value)
    except ValidationError:
        log.debug("stored push settings do not fit; using the defaults", exc_info=True)
        return DEFAULTS


def id_only(push: dict[str, Any]) -> dict[str, Any]:
    """The push without what it says about the message: ids and seq only."""
    return {key: push[key] for key in ID_ONLY_FIELDS if key in push}


def decide(push: dict[str, Any], prefs: PushPreferences, now: dt.datetime) -> dict[str, Any] | bool:
    """The push as the preferences want it, or False when they hold it back."""
    if not prefs.enabled:
        return False
    level = prefs.level_for(push["room_id"], bool(push.get("direct")))
    if level == "none" or (level == "mentions" and not push.get("mention")):
        return False
    if prefs.dnd is not None and prefs.dnd.covers(now):
        return False
    return push if prefs.preview else id_only(push)


@hookimpl(trylast=True)
def chatcore_notify(
    app: App, push: dict[str, Any], settings: dict[str, Any]
) -> dict[str, Any] | bool:
    """The recipient's own preferences, applied after every other plugin has had its say."""
    return decide(push, preferences_of(settings), dt.datetime.now(dt.UTC))
