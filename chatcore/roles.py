"""Roles: what a process assembles (`server` or `client`), and which plugins serve which role.

A config's `role` picks the hooks the plugin host adds (the kernel's plus the role's) and the
plugins it loads. A plugin says which roles it serves with a module (or object) attribute:

    chatcore_role = "server"                 # or "client", or ("server", "client")

A plugin without it serves both, so third-party plugins written before roles keep loading.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Literal, get_args

Role = Literal["server", "client"]
ROLES: tuple[Role, ...] = get_args(Role)

#: The module holding each role's hook specifications, imported only for that role.
_SPECS: dict[Role, str] = {
    "server": "chatcore.server.hookspecs",
    "client": "chatcore.client.hookspecs",
}


class RoleError(ValueError):
    """A `chatcore_role` that names no role."""


def role_hookspecs(role: Role) -> ModuleType:
    """The module of `role`'s hook specifications."""
    return importlib.import_module(_SPECS[role])


def plugin_roles(plugin: object) -> frozenset[Role]:
    """The roles `plugin` serves: its `chatcore_role` attribute, every role without one."""
    declared = getattr(plugin, "chatcore_role", None)
    if declared is None:
        return frozenset(ROLES)
    names = (declared,) if isinstance(declared, str) else declared
    try:
        roles = frozenset(names)
    except TypeError:
        roles = frozenset()
    unknown = {r for r in roles if r not in ROLES}
    if not roles or unknown:
        raise RoleError(
            f"chatcore_role {declared!r} names no role; expected one of "
            f"{', '.join(map(repr, ROLES))}, or a tuple of them"
        )
    return frozenset(r for r in ROLES if r in roles)
