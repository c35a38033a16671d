"""chatcore_auth: the built-in auth backend.

Passwords are hashed with argon2id in worker threads; access tokens are short-lived HMAC-signed
JWTs; refresh tokens are random, work once, and are stored only as hashes. Logins end at once
on every node (broker channel `chatcore.server.realtime.hub.LOGINS_CHANNEL`). Configured by the
`[auth]`
section (`AuthSettings`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel

from chatcore.hookspecs import hookimpl
from chatcore.lazy import lazy_exports
from chatcore_auth.settings import AuthSettings

if TYPE_CHECKING:
    from chatcore.server.app import App
    from chatcore_auth.backend import TokenAuthBackend

chatcore_role = "server"  # the role it serves (chatcore.roles)

__all__ = ["AuthSettings", "TokenAuthBackend", "chatcore_auth_backend", "chatcore_settings_models"]

# The backend (argon2, JWTs, the engine) loads when an app starts: `chatcore --help` loads this
# package too.
__getattr__ = lazy_exports(__name__, {"TokenAuthBackend": "chatcore_auth.backend"})


@hookimpl
def chatcore_settings_models() -> dict[str, type[BaseModel]]:
    return {"auth": AuthSettings}


@hookimpl
def chatcore_auth_backend(app: App) -> TokenAuthBackend:
    from chatcore_auth.backend import TokenAuthBackend

    return TokenAuthBackend(app.settings.section("auth", AuthSettings), app.storage, app.broker)
