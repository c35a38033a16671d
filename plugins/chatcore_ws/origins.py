"""Which browser origins may open a WebSocket session (docs/protocol.md item 13).

Origins are compared by (scheme, host, port), exactly: a browser leaves out a default port
(`https://chat.example.com`), so `https://chat.example.com:443` names the same origin, but
`http://` is not `https://` and `localhost` is not `127.0.0.1` unless both are listed.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from chatcore.server.push.ssrf import is_loopback_host

OriginKey = tuple[str, str, int | None]

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def normalize_origin(origin: str) -> OriginKey | None:
    """(scheme, host, port) of an origin, or None when it is not `scheme://host[:port]`."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    if (
        not parts.scheme
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username is not None
        or parts.password is not None
    ):
        return None
    scheme = parts.scheme.lower()
    return scheme, parts.hostname.lower(), port if port is not None else _DEFAULT_PORTS.get(scheme)


def default_origins(server_origin: str) -> list[OriginKey]:
    """The contract's default: the server's origin, plus its localhost and 127.0.0.1 forms
    when its host is a loopback address."""
    key = normalize_origin(server_origin)
    if key is None:
        return []
    scheme, host, port = key
    keys = [key]
    if is_loopback_host(host):
        for alias in ("localhost", "127.0.0.1"):
            if (scheme, alias, port) not in keys:
                keys.append((scheme, alias, port))
    return keys


class OriginPolicy:
    """Decides a handshake by its `Origin` headers."""

    def __init__(self, allowed: Iterable[OriginKey]) -> None:
        self.allowed = frozenset(allowed)

    @classmethod
    def build(cls, allowed_origins: list[str] | None, server_origin: str) -> OriginPolicy:
        if allowed_origins is None:
            return cls(default_origins(server_origin))
        keys = (normalize_origin(o) for o in allowed_origins)
        return cls(k for k in keys if k is not None)

    def allows(self, origins: list[str]) -> bool:
        """No Origin header (not a browser): allowed. One allowed origin: allowed. Anything
        else (an unknown origin, `null`, several Origin headers) is refused."""
        if not origins:
            return True
        if len(origins) > 1:
            return False
        return normalize_origin(origins[0]) in self.allowed
