"""The client's address, believing `X-Forwarded-For` only from configured trusted proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

__all__ = ["Network", "client_address"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
IP = ipaddress.IPv4Address | ipaddress.IPv6Address


def _parse(value: str) -> IP | None:
    """An address from a header hop: `1.2.3.4`, `1.2.3.4:5678`, `::1` or `[::1]:5678`."""
    value = value.strip()
    if value.startswith("["):
        value = value[1:].split("]", 1)[0]
    elif value.count(":") == 1:  # IPv4 with a port
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _trusted(ip: IP, trusted: Sequence[Network]) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == net.version and ip in net for net in trusted)


def client_address(
    peer: str | None, forwarded_for: Iterable[str], trusted: Sequence[Network]
) -> str | None:
    """The address of the client that sent a request.

    Without trusted proxies, or when the peer is not one, it is the peer: a client cannot choose
    its address by sending a header. When the peer is a trusted proxy, the `X-Forwarded-For`
    hops are read from the right (the hop the proxy itself added) and the first one that is not
    a trusted proxy is the client. A hop that is not an address stops the walk at the last
    address known good.
    """
    if not trusted or peer is None:
        return peer
    peer_ip = _parse(peer)
    if peer_ip is None or not _trusted(peer_ip, trusted):
        return peer
    hops = [hop for value in forwarded_for for hop in value.split(",") if hop.strip()]
    current = str(peer_ip)
    for hop in reversed(hops):
        ip = _parse(hop)
        if ip is None:
            return current
        current = str(ip)
        if not _trusted(ip, trusted):
            return current
    return current
