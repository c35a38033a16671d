"""What push adapters share: reading a provider's HTTP answer as a `PushResult`, and a safe
client for the endpoints clients register (`EndpointClient`).

Web Push services (RFC 8030), FCM, APNs and webhooks all answer in HTTP terms: 2xx accepted;
404/410 the device is gone (a Web Push subscription expired, an app uninstalled); 429 and 5xx
passing (try again, not before Retry-After); any other status a refusal for good (a bad
request, a refused credential, a redirect, which adapters never follow: it could lead anywhere
the endpoint check did not look).
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import math
import ssl
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import anyio
import orjson

from chatcore.errors import ChatError
from chatcore.models import PushResult
from chatcore.server.push import ssrf
from chatcore.server.push.connections import ExchangeError, Pool, connect_link

if TYPE_CHECKING:
    import httpx


def outcome_of(status: int, retry_after: str | None, now: float, detail: str = "") -> PushResult:
    """The `PushResult` of an HTTP status (see the module docstring). `retry_after` is the
    Retry-After header when there is one, `now` the Unix time it is read against."""
    described = f"HTTP {status}" + (f": {detail}" if detail else "")
    if 200 <= status < 300:
        return PushResult(outcome="sent", detail=described)
    if status in (404, 410):
        return PushResult(outcome="gone", detail=described)
    if status == 429 or 500 <= status <= 599:
        wait = retry_after_seconds(retry_after, now)
        return PushResult(outcome="retry", retry_after_seconds=wait, detail=described)
    return PushResult(outcome="failed", detail=described)


def encode_push(push: Mapping[str, Any], limit: int) -> bytes | PushResult:
    """The push as JSON bytes; or, when it is not JSON or longer than `limit` bytes, the
    `failed` PushResult an adapter answers without sending anything."""
    try:
        body = orjson.dumps(dict(push))
    except TypeError as exc:
        return PushResult(outcome="failed", detail=f"push not JSON: {exc}")
    if len(body) > limit:
        return PushResult(
            outcome="failed", detail=f"push of {len(body)} bytes over the limit of {limit}"
        )
    return body


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Retry-After as seconds from `now`: delta-seconds or an HTTP date (RFC 9110 §10.2.3);
    None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - now
    return max(0.0, seconds) if math.isfinite(seconds) else None


@dataclass(frozen=True, slots=True)
class EndpointURL:
    """What a request to an endpoint URL needs of it: `scheme`, `host` (lower case, ASCII,
    without brackets), `port`, `authority` (the `Host` header: the host, and the port when it
    is not the scheme's default) and `target` (path and query, percent-encoded ASCII)."""

    scheme: str
    host: str
    port: int
    authority: str
    target: str

    @property
    def origin(self) -> str:
        """The origin as RFC 6454 serializes it (ASCII host, no default port)."""
        return f"{self.scheme}://{self.authority}"

    @classmethod
    def parse(cls, url: str) -> EndpointURL:
        """ValueError when `url` is not an http(s) URL with a host."""
        parts = urlsplit(url)
        scheme, host = parts.scheme.lower(), parts.hostname or ""
        if scheme not in ssrf.DEFAULT_PORTS or not host:
            raise ValueError("not an http(s) URL with a host")
        if not host.isascii():
            host = host.encode("idna").decode("ascii")  # UnicodeError is a ValueError
        port = parts.port if parts.port is not None else ssrf.DEFAULT_PORTS[scheme]
        authority = f"[{host}]" if ":" in host else host
        if port != ssrf.DEFAULT_PORTS[scheme]:
            authority += f":{port}"
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if not target.isascii():
            target = quote(target, safe=_TARGET_SAFE)
        return cls(scheme, host, port, authority, target)


#: What may stay as it is in a request target: every printable ASCII character but space.
_TARGET_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))


class EndpointClient:
    """POSTs to URLs that clients registered (a webhook, a Web Push endpoint), safely.

    Each request: the endpoint is checked with `chatcore.server.push.ssrf` (refused: `failed`,
    nothing sent); the connection goes to the address that was checked, with the host name
    still in `Host` and as the TLS server name, against which the certificate is verified, so
    a name that resolves elsewhere a moment later (DNS rebinding) is not followed; no
    redirects, no proxy from the environment (either would send the request where the check
    did not look); one timeout bounds the whole exchange, connecting included. Network errors
    and timeouts are `retry`; the status is read with `outcome_of`, and at most
    `DETAIL_BYTES` of a refusal's body kept as its detail (a longer body is not read on).

    Connections are kept and reused, in one pool per destination
    (`chatcore.server.push.connections.Pool`): scheme, host name, port and checked address
    together. A connection made for one name therefore never carries another name's request
    (it would skip that name's certificate check), and a name that now resolves elsewhere gets
    new connections. Over https, HTTP/2 when the service offers it by ALPN (every request a
    stream of one connection), else HTTP/1.1 keep-alive, at most `MAX_CONNECTIONS` per
    destination. At most `MAX_DESTINATIONS` pools are kept, the least recently used closed
    first: a Web Push server talks to a handful of push services, a webhook to what its users
    registered.
    """

    DETAIL_BYTES = 256
    MAX_DESTINATIONS = 64
    MAX_CONNECTIONS = 32

    def __init__(
        self, timeout_seconds: float, *, allow_private: bool = False, ca_file: str | None = None
    ) -> None:
        self.timeout_seconds = timeout_seconds
        self.allow_private = allow_private
        self.ca_file = ca_file  # trusted instead of the system's authorities
        self._tls: ssl.SSLContext | None = None
        self._pools: OrderedDict[tuple[str, str, int, str], Pool] = OrderedDict()
        self._started = False

    @classmethod
    def from_settings(cls, settings: Any) -> EndpointClient:
        """The client an adapter's config section asks for: its `timeout_seconds`,
        `allow_private_endpoints` and `ca_file`."""
        return cls(
            settings.timeout_seconds,
            allow_private=settings.allow_private_endpoints,
            ca_file=settings.ca_file,
        )

    async def start(self) -> None:
        # One TLS context for every pool: making one reads a CA file (tens of ms).
        self._tls = await anyio.to_thread.run_sync(tls_context, self.ca_file)
        self._started = True

    async def close(self) -> None:
        pools, self._pools = list(self._pools.values()), OrderedDict()
        for pool in pools:
            pool.close()
        self._started = False
        await asyncio.sleep(0)  # the transports' own callbacks close their sockets

    def _pool(self, url: EndpointURL, address: str) -> Pool:
        key = (url.scheme, url.host, url.port, address)
        pool = self._pools.get(key)
        if pool is not None:
            self._pools.move_to_end(key)
            return pool
        if len(self._pools) >= self.MAX_DESTINATIONS:
            _, oldest = self._pools.popitem(last=False)
            oldest.close()
        tls = self._tls if url.scheme == "https" else None
        connect = functools.partial(
            connect_link, address=address, port=url.port, tls=tls, server_name=url.host
        )
        pool = self._pools[key] = Pool(
            connect, max_connections=self.MAX_CONNECTIONS, body_limit=self.DETAIL_BYTES
        )
        return pool

    async def post(
        self, endpoint: str, body: bytes, headers: Mapping[str, str], *, https_only: bool = False
    ) -> PushResult:
        """POST `body` to `endpoint` (see the class docstring); `https_only` refuses plain
        http unless private endpoints are allowed (a local test service)."""
        if not self._started:
            raise RuntimeError("EndpointClient.post before start()")
        try:
            addresses = await ssrf.resolve_endpoint(endpoint, allow_private=self.allow_private)
            url = EndpointURL.parse(endpoint)
        except ChatError as exc:
            return PushResult(outcome="failed", detail=exc.message)
        except ValueError as exc:  # what the check took but a request cannot carry
            return PushResult(outcome="failed", detail=f"invalid endpoint URL: {exc}")
        if https_only and url.scheme != "https" and not self.allow_private:
            return PushResult(outcome="failed", detail="the endpoint is not an https URL")
        # Pinned: connect to the checked address, name the host as before. Unchecked (private
        # endpoints allowed): connect by name.
        address = str(addresses[0]) if addresses else url.host
        pool = self._pool(url, address)
        sent = [*headers.items(), ("User-Agent", USER_AGENT)]
        try:
            async with asyncio.timeout(self.timeout_seconds):
                answer = await pool.request(url.target, url.authority, url.scheme, sent, body)
        except TimeoutError:
            return PushResult(outcome="retry", detail="the endpoint did not answer in time")
        except ExchangeError as exc:
            return PushResult(outcome="retry", detail=str(exc))
        except ValueError as exc:  # a header or target the protocol cannot carry
            return PushResult(outcome="failed", detail=f"invalid request: {exc}")
        detail = ""
        if answer.status >= 300:
            detail = answer.body[: self.DETAIL_BYTES].decode("utf-8", "replace").strip()
        return outcome_of(answer.status, answer.headers.get("retry-after"), time.time(), detail)


#: Sent with every request: a receiver's logs say who called.
USER_AGENT = "chatcore-push"


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """Certificates verified against the host name, by `ca_file`'s authorities or else
    certifi's (as httpx's defaults), TLS 1.2 at least, HTTP/2 offered before HTTP/1.1."""
    if ca_file is None:
        try:
            import certifi

            ca_file = certifi.where()
        except ImportError:  # the system's authorities then
            pass
    context = ssl.create_default_context(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["h2", "http/1.1"])
    return context


async def start_of_body(response: httpx.Response, limit: int) -> str:
    """The first `limit` bytes of a refusal's body, for the log (nothing of a success); never
    the whole of a large one (an endpoint cannot make the server download anything). A body
    within the limit is read to its end, so that its connection can serve the next request."""
    kept = b""
    async for chunk in response.aiter_bytes():
        kept += chunk
        if len(kept) >= limit:
            break
    if response.status_code < 300:
        return ""
    return kept[:limit].decode("utf-8", "replace").strip()
