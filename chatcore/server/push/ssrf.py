"""Refuse URLs that would make the server connect to itself or its private network (SSRF).

A push endpoint (a webhook or Web Push URL) comes from a client; connecting to it blindly lets
anyone probe or call services only the server can reach (a database port, a cloud metadata
service at 169.254.169.254, an admin API on localhost). Before connecting, an adapter checks
the URL here:

- `check_url_shape(url)`: what needs no DNS. The scheme is http or https, there is a host, no
  user name or password, a valid port; a literal IP address must be public. Registration calls
  it to refuse an obviously bad URL at once.
- `check_endpoint(url)` / `resolve_endpoint(url)`: that, and every address the host resolves to
  (resolved with `loop.getaddrinfo`, in the loop's resolver thread, never blocking the loop) is
  public: not private, loopback, link-local, multicast, reserved, unspecified or otherwise not
  globally routable, also when hidden in an IPv6 form (IPv4-mapped `::ffff:a.b.c.d`, 6to4
  `2002::/16`, Teredo `2001::/32`).

`allow_private` (tests, a closed network) or a host listed in `allowed_hosts` skips the address
checks, not the shape checks.

Rebinding caveat: a check says what the host resolved to at that moment. A host whose DNS
answers with a public address to the check and a private one a moment later (DNS rebinding)
defeats a check followed by a fresh connection by name. So an adapter must connect to the
address it checked: `resolve_endpoint` returns the checked addresses, and the adapter connects
to one of them by IP while sending the original host name in the `Host` header and as the TLS
server name (SNI; the certificate is still verified against the host name). We pin rather than
re-check right before sending because a re-check only narrows the window, it does not close it.
An adapter also must not follow redirects (a redirect could point anywhere) nor use an HTTP
proxy from the environment (the proxy would resolve the name again).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Collection
from urllib.parse import SplitResult, urlsplit

from chatcore.errors import ChatError, ErrorCode

__all__ = ["IPAddress", "check_endpoint", "check_url_shape", "refused_reason", "resolve_endpoint"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}


def refused_reason(address: IPAddress) -> str | None:
    """Why `address` may not be connected to ("loopback", ...), or None when it is public.

    An IPv6 address that carries an IPv4 one (mapped, 6to4, Teredo) is judged by that too.
    """
    # The embedded IPv4 address first: it says more ("loopback") than the IPv6 form
    # ("reserved", for ::ffff:0:0/96).
    for candidate in reversed(_with_embedded(address)):
        for reason in ("unspecified", "loopback", "link_local", "multicast", "reserved"):
            if getattr(candidate, f"is_{reason}"):
                return reason.replace("_", "-")
        if candidate.is_private:
            return "private"
        # What is neither private nor global (100.64.0.0/10, shared address space of
        # carrier-grade NAT) is no more reachable from outside than a private network.
        if not candidate.is_global:
            return "not globally routable"
    return None


def is_loopback_host(host: str) -> bool:
    """True for "localhost" and loopback address literals (no lookup: a name is not trusted to
    stay local)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _with_embedded(address: IPAddress) -> list[IPAddress]:
    found: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            found.append(address.ipv4_mapped)
        if address.sixtofour is not None:
            found.append(address.sixtofour)
        if address.teredo is not None:
            found.extend(address.teredo)  # (server, client), the client de-obfuscated
    return found


def _bad(message: str) -> ChatError:
    return ChatError(ErrorCode.BAD_REQUEST, message)


def _split(url: str) -> tuple[SplitResult, str, int]:
    """The parts of `url`, its host (lower case, no brackets, no final dot) and its port."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _bad("The endpoint is not a valid URL.") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise _bad("The endpoint must be an http or https URL.")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise _bad("The endpoint URL has no host.")
    if parts.username is not None or parts.password is not None:
        raise _bad("The endpoint URL must not contain a user name or password.")
    return parts, host, port if port is not None else DEFAULT_PORTS[scheme]


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])  # an IPv6 zone (%eth0) is no help
    except ValueError:
        return None


def _refuse(host: str, address: IPAddress, reason: str) -> ChatError:
    shown = host if _literal(host) == address else f"{host} ({address})"
    return _bad(f"The endpoint {shown} is a {reason} address, which the server does not call.")


def check_url_shape(
    url: str, *, allow_private: bool = False, allowed_hosts: Collection[str] = ()
) -> None:
    """Raise ChatError(bad_request) when `url` is not an http(s) URL with a host and without
    credentials, or when its host is a literal IP address that is not public. No DNS."""
    _, host, _ = _split(url)
    address = _literal(host)
    if address is None or allow_private or _listed(host, allowed_hosts):
        return
    reason = refused_reason(address)
    if reason is not None:
        raise _refuse(host, address, reason)


def _listed(host: str, allowed_hosts: Collection[str]) -> bool:
    return host in {h.lower().rstrip(".").strip("[]") for h in allowed_hosts}


async def resolve_endpoint(
    url: str, *, allow_private: bool = False, allowed_hosts: Collection[str] = ()
) -> tuple[IPAddress, ...]:
    """Check `url` (see the module) and return the addresses its host resolved to, every one of
    them public; empty when the address checks were skipped (`allow_private`, `allowed_hosts`),
    in which case the caller connects by name.

    Raises ChatError(bad_request) with a sentence for the client on any refusal, also when the
    host does not resolve.
    """
    check_url_shape(url, allow_private=allow_private, allowed_hosts=allowed_hosts)
    _, host, port = _split(url)
    if allow_private or _listed(host, allowed_hosts):
        return ()
    literal = _literal(host)
    if literal is not None:
        return (literal,)  # check_url_shape judged it
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):  # socket.gaierror is an OSError; a bad IDNA label
        raise _bad(f"The endpoint host {host} could not be resolved.") from None
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise _bad(f"The endpoint host {host} could not be resolved.")
    # Any bad address refuses the host: which one a connection would use is not ours to pick.
    for address in addresses:
        reason = refused_reason(address)
        if reason is not None:
            raise _refuse(host, address, reason)
    return tuple(addresses)


async def check_endpoint(
    url: str, *, allow_private: bool = False, allowed_hosts: Collection[str] = ()
) -> None:
    """Raise ChatError(bad_request) when the server must not connect to `url`: not http(s), no
    host, credentials in it, or a host resolving to any non-public address (unless
    `allow_private`, or the host is in `allowed_hosts`). See the module for the rebinding
    caveat: connect to the addresses `resolve_endpoint` returns, not to the name again."""
    await resolve_endpoint(url, allow_private=allow_private, allowed_hosts=allowed_hosts)
