"""The built-in endpoints of docs/protocol.md, one module per area.

Each area module exports `AREA` (`chatcore_rest.endpoints.base.Area`): its routes, the features
/api/v1/info reports while it is mounted, whether a node mounts it, and its body limits. The
application mounts `AREAS` in this order, in one loop.
"""

from __future__ import annotations

from chatcore_rest.endpoints import (
    accounts,
    admin,
    contacts,
    devices,
    docs,
    info,
    me,
    media,
    messages,
    reports,
    retention,
    room_admin,
    rooms,
    search,
    users,
)
from chatcore_rest.endpoints.base import Area

__all__ = ["AREAS", "Area"]

AREAS: tuple[Area, ...] = (
    info.AREA,  # discovery, health, metrics
    docs.AREA,  # the API docs page (Swagger UI, served from the package)
    accounts.AREA,  # register, login, refresh, logout
    me.AREA,  # the caller's profile and settings
    users.AREA,
    rooms.AREA,
    room_admin.AREA,  # a group's name, topic, avatar, roles, mutes, bans; the room log
    messages.AREA,
    retention.AREA,  # how long rooms keep their messages
    search.AREA,  # message search in the caller's rooms
    reports.AREA,  # reports of abuse; their admin routes
    admin.AREA,  # the admin API: users, logins, rooms, the audit log (server admins)
    contacts.AREA,  # contacts and blocks
    devices.AREA,  # push devices (registration; the push dispatcher sends to them)
    media.AREA,  # media and stickers, on a node with a media store
)
