"""The built-in endpoints of docs/protocol.md, one module per area.

Each area module exports `AREA` (`chatcore_rest.endpoints.base.Area`): its routes, the features
/api/v1/info reports while it is mounted, whether a node mounts it, and its body limits. The
application mounts `AREAS` in this order, in one loop.
"""

from __future__ import annotations

from chatcore_rest.endpoints import (
    accounts,
    contacts,
    devices,
    info,
    me,
    media,
    messages,
    rooms,
    users,
)
from chatcore_rest.endpoints.base import Area

__all__ = ["AREAS", "Area"]

AREAS: tuple[Area, ...] = (
    info.AREA,  # discovery, health, metrics
    accounts.AREA,  # register, login, refresh, logout
    me.AREA,  # the caller's profile and settings
    users.AREA,
    rooms.AREA,
    messages.AREA,
    contacts.AREA,  # contacts and blocks
    devices.AREA,  # push devices (registration; the push dispatcher sends to them)
    media.AREA,  # media and stickers, on a node with a media store
)
