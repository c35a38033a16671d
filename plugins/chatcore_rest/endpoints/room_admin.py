"""The room administration endpoints of docs/protocol.md ("Room administration", "The room
log"): a group's name, topic and avatar, roles, ownership, mutes, bans and the room log.

The views stay thin: `chatcore.server.rooms` and `chatcore.server.moderation` check who may do
what in that room (a non-member gets `not_found`, a member without the power `forbidden`) and
every value; the views only read the request and shape the reply. The request and reply
models of this area live here, beside the views that use them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from quart import Response, request
from quart_schema import document_request, document_response, validate_querystring

from chatcore.models import Identity
from chatcore.server import moderation, room_log, rooms
from chatcore_rest.auth import requires_auth
from chatcore_rest.endpoints.base import Area, json_object, validated
from chatcore_rest.endpoints.rooms import ROOMS
from chatcore_rest.jsonio import empty_response, json_response
from chatcore_rest.openapi import Reply, api_doc
from chatcore_rest.schemas import RoomBody
from chatcore_rest.state import rest_state

__all__ = ["AREA"]

ROOM = ROOMS + "/<room_id>"


# --- requests and replies -----------------------------------------------------------------


class RoomPatch(BaseModel):
    """Fields of a group room to change; absent fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        None, json_schema_extra={"minLength": 1, "maxLength": rooms.ROOM_NAME_MAX}
    )
    topic: str | None = Field(
        None,
        json_schema_extra={"maxLength": rooms.ROOM_TOPIC_MAX},
        description="null (or only spaces) clears the topic.",
    )
    avatar_media_id: str | None = Field(
        None,
        description="An image the caller may read (the members may then read it); null "
        "removes the avatar.",
    )


class RoleRequest(BaseModel):
    """A member's new role."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["admin", "member"]


class OwnerRequest(BaseModel):
    """The member who becomes the room's owner."""

    model_config = ConfigDict(extra="forbid")

    user_id: str


class MuteRequest(BaseModel):
    """Until when a member cannot send: `until_ts` or `minutes`, exactly one."""

    model_config = ConfigDict(extra="forbid")

    until_ts: int | None = Field(
        None, strict=True, description="A time in ms since the epoch, at most 366 days ahead."
    )
    minutes: int | None = Field(
        None, strict=True, json_schema_extra={"minimum": 1, "maximum": moderation.MUTE_MINUTES_MAX}
    )


class Muted(BaseModel):
    """A member's mute."""

    user_id: str
    muted_until_ts: int


class BanRequest(BaseModel):
    """Why a user is banned (optional; seen by the room's owner and admins, and by the banned
    user in the room log entry of their ban)."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(None, json_schema_extra={"maxLength": moderation.BAN_REASON_MAX})


class BanBody(BaseModel):
    """A user kept out of a group room."""

    room_id: str
    user_id: str
    by: str | None = Field(None, description="Who banned them; absent: the server's console.")
    reason: str | None = None
    ts: int


class Bans(BaseModel):
    """A room's bans, newest first."""

    bans: list[BanBody]


class LogQuery(BaseModel):
    """Query of `GET /rooms/{room_id}/log`."""

    before: str | None = Field(
        None, description="Entries older than the entry with this id; without it, the newest."
    )
    limit: int | None = Field(
        None,
        json_schema_extra={"minimum": 1, "maximum": room_log.LOG_LIMIT_MAX},
        description=f"At most this many (default {room_log.LOG_LIMIT_DEFAULT}).",
    )


class RoomLogEntryBody(BaseModel):
    """One change to a room: who (`actor_id`, null: the server's console) did what
    (`action`) to what (`target_id`: a user or a message), with the action's details."""

    id: str = Field(description="Orders a room's log: a later entry has a greater id.")
    room_id: str
    ts: int
    actor_id: str | None
    action: str = Field(json_schema_extra={"enum": list(room_log.ACTIONS)})
    target_id: str | None = None
    details: dict[str, object]


class RoomLogPage(BaseModel):
    """A page of a room's log, newest first, and whether older entries exist."""

    entries: list[RoomLogEntryBody]
    has_more: bool


# --- views ----------------------------------------------------------------------------------


@requires_auth
@document_request(RoomPatch)
@document_response(RoomBody)
@api_doc(errors=(400, 401, 403, 404, 413))
async def update_room(identity: Identity, room_id: str) -> Response:
    """Change a group room's name, topic and/or avatar: its owner and admins may.

    Members receive the `room` event and a `room_log` entry (`room.update`).
    """
    patch = validated(RoomPatch, await json_object())
    view = await rooms.update(
        rest_state().app, identity.user_id, room_id, patch.model_dump(exclude_unset=True)
    )
    return json_response(view.wire())


@requires_auth
@document_request(RoleRequest)
@document_response(RoomBody)
@api_doc(errors=(400, 401, 403, 404, 413))
async def set_role(identity: Identity, room_id: str, user_id: str) -> Response:
    """Make a member an admin, or an admin a plain member: the owner only."""
    data = validated(RoleRequest, await json_object())
    view = await moderation.set_role(
        rest_state().app, identity.user_id, room_id, user_id, data.role
    )
    return json_response(view.wire())


@requires_auth
@document_request(OwnerRequest)
@document_response(RoomBody)
@api_doc(errors=(400, 401, 403, 404, 413))
async def transfer_ownership(identity: Identity, room_id: str) -> Response:
    """Hand the room to another member: the owner only; the owner before becomes an admin."""
    data = validated(OwnerRequest, await json_object())
    view = await moderation.transfer_ownership(
        rest_state().app, identity.user_id, room_id, data.user_id
    )
    return json_response(view.wire())


@requires_auth
@document_request(MuteRequest)
@document_response(Muted)
@api_doc(errors=(400, 401, 403, 404, 413))
async def mute(identity: Identity, room_id: str, user_id: str) -> Response:
    """Keep a member from sending until a time: the owner (anyone), an admin (plain members).

    Their sends are refused with `forbidden` until then; they receive the `room_log` entry.
    """
    data = validated(MuteRequest, await json_object())
    until = await moderation.mute(
        rest_state().app, identity.user_id, room_id, user_id, data.until_ts, data.minutes
    )
    return json_response({"user_id": user_id, "muted_until_ts": until})


@requires_auth
@api_doc(errors=(400, 401, 403, 404), replies={204: Reply("The member is not muted.")})
async def unmute(identity: Identity, room_id: str, user_id: str) -> Response:
    """Lift a member's mute (those who may mute them may)."""
    await moderation.unmute(rest_state().app, identity.user_id, room_id, user_id)
    return empty_response(204)


@requires_auth
@document_request(BanRequest)
@document_response(BanBody)
@api_doc(errors=(400, 401, 403, 404, 413))
async def ban(identity: Identity, room_id: str, user_id: str) -> Response:
    """Ban a user: removed from the room when a member, and kept out (only the owner or an
    admin may add them again, which lifts the ban). The owner bans anyone, an admin plain
    members and non-members. The body is optional."""
    data = validated(BanRequest, await _optional_object())
    banned = await moderation.ban(rest_state().app, identity.user_id, room_id, user_id, data.reason)
    return json_response(banned.wire())


@requires_auth
@api_doc(errors=(400, 401, 403, 404), replies={204: Reply("The ban is lifted.")})
async def unban(identity: Identity, room_id: str, user_id: str) -> Response:
    """Lift a ban: the room's owner and admins."""
    await moderation.unban(rest_state().app, identity.user_id, room_id, user_id)
    return empty_response(204)


@requires_auth
@document_response(Bans)
@api_doc(errors=(400, 401, 403, 404))
async def list_bans(identity: Identity, room_id: str) -> Response:
    """The room's bans, newest first: its owner and admins."""
    found = await moderation.bans(rest_state().app, identity.user_id, room_id)
    return json_response({"bans": [b.wire() for b in found]})


@requires_auth
@validate_querystring(LogQuery)
@document_response(RoomLogPage)
@api_doc(errors=(400, 401, 404))
async def get_log(identity: Identity, room_id: str, query_args: LogQuery) -> Response:
    """A page of the room's log (who changed what), newest first: any member."""
    page, has_more = await room_log.history(
        rest_state().app, identity.user_id, room_id, query_args.before, query_args.limit
    )
    return json_response({"entries": [e.wire() for e in page], "has_more": has_more})


async def _optional_object() -> dict[str, object]:
    """The request's JSON object, or {} for an empty body."""
    if not await request.get_data():
        return {}
    return await json_object()


AREA = Area(
    routes=[
        ("PATCH", ROOM, update_room),
        ("PUT", ROOM + "/members/<user_id>/role", set_role),
        ("POST", ROOM + "/owner", transfer_ownership),
        ("POST", ROOM + "/members/<user_id>/mute", mute),
        ("DELETE", ROOM + "/members/<user_id>/mute", unmute),
        ("GET", ROOM + "/bans", list_bans),
        ("PUT", ROOM + "/bans/<user_id>", ban),
        ("DELETE", ROOM + "/bans/<user_id>", unban),
        ("GET", ROOM + "/log", get_log),
    ],
    features=("room_admin",),
)
