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
from typing import TYPE_CHECKING, Any

import anyio
import orjson

from chatcore.errors import ChatError
from chatcore.models import PushResult
from chatcore.server.push import ssrf

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


class EndpointClient:
    """POSTs to URLs that clients registered (a webhook, a Web Push endpoint), safely.

    Each request: the endpoint is checked with `chatcore.server.push.ssrf` (refused: `failed`,
    nothing
    sent); the connection goes to the address that was checked, with the host name still in
    `Host` and as the TLS server name, so a name that resolves elsewhere a moment later (DNS
    rebinding) is not followed; no redirects, no proxy from the environment (either would
    send the request where the check did not look); one timeout bounds the whole exchange.
    Network errors and timeouts are `retry`; the status is read with `outcome_of`, and at
    most `DETAIL_BYTES` of a refusal's body kept as its detail.

    Connections are kept and reused (HTTP/2 where the server offers it), in one pool per
    destination: scheme, host name, port and checked address together. A connection made
    for one name therefore never carries another name's request (it would skip that name's
    certificate check), and a name that now resolves elsewhere gets new connections. At most
    `MAX_DESTINATIONS` pools are kept, the least recently used closed first: a Web Push
    server talks to a handful of push services, a webhook to what its users registered.

    Needs httpx (the `push` extra), imported when the client starts.
    """

    DETAIL_BYTES = 256
    MAX_DESTINATIONS = 64

    def __init__(
        self, timeout_seconds: float, *, allow_private: bool = False, ca_file: str | None = None
    ) -> None:
        self.timeout_seconds = timeout_seconds
        self.allow_private = allow_private
        self.ca_file = ca_file  # trusted instead of the system's authorities
        self._verify: ssl.SSLContext | None = None
        self._pools: OrderedDict[tuple[str, str, int | None, str], httpx.AsyncClient] = (
            OrderedDict()
        )
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
        import httpx

        # One TLS context for every pool: making one reads a CA file (tens of ms). httpx's
        # own (certifi's authorities) unless `ca_file` replaces them.
        if self.ca_file is None:
            make = functools.partial(httpx.create_ssl_context, trust_env=False)
        else:
            make = functools.partial(ssl.create_default_context, cafile=self.ca_file)
        self._verify = await anyio.to_thread.run_sync(make)
        self._started = True

    async def close(self) -> None:
        pools, self._pools = list(self._pools.values()), OrderedDict()
        for pool in pools:
            await pool.aclose()
        self._started = False

    def _pool(self, url: httpx.URL, address: str) -> httpx.AsyncClient:
        import httpx

        key = (url.scheme, url.host, url.port, address)
        pool = self._pools.get(key)
        if pool is not None:
            self._pools.move_to_end(key)
            return pool
        if len(self._pools) >= self.MAX_DESTINATIONS:
            _, oldest = self._pools.popitem(last=False)
            task = asyncio.create_task(oldest.aclose())
            _closing.add(task)
            task.add_done_callback(_closing.discard)
        pool = self._pools[key] = httpx.AsyncClient(
            verify=self._verify if self._verify is not None else True,
            http2=True,
            timeout=httpx.Timeout(self.timeout_seconds),
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
        )
        return pool

    async def post(
        self, endpoint: str, body: bytes, headers: Mapping[str, str], *, https_only: bool = False
    ) -> PushResult:
        """POST `body` to `endpoint` (see the class docstring); `https_only` refuses plain
        http unless private endpoints are allowed (a local test service)."""
        import httpx

        if not self._started:
            raise RuntimeError("EndpointClient.post before start()")
        try:
            addresses = await ssrf.resolve_endpoint(endpoint, allow_private=self.allow_private)
            url = httpx.URL(endpoint)
        except ChatError as exc:
            return PushResult(outcome="failed", detail=exc.message)
        except httpx.InvalidURL as exc:  # what the check took but httpx does not
            return PushResult(outcome="failed", detail=f"invalid endpoint URL: {exc}")
        if https_only and url.scheme != "https" and not self.allow_private:
            return PushResult(outcome="failed", detail="the endpoint is not an https URL")
        sent_headers = dict(headers)
        extensions: dict[str, Any] = {}
        address = str(addresses[0]) if addresses else url.host
        pool = self._pool(url, address)
        if addresses:  # pinned: connect to the checked address, name the host as before
            sent_headers["Host"] = url.netloc.decode("ascii")
            extensions["sni_hostname"] = url.host
            url = url.copy_with(host=address)
        request = pool.build_request(
            "POST", url, content=body, headers=sent_headers, extensions=extensions
        )
        try:
            # httpx's timeout bounds each read and write; this bounds the whole exchange.
            async with asyncio.timeout(self.timeout_seconds):
                response = await pool.send(request, stream=True)
                try:
                    detail = await start_of_body(response, self.DETAIL_BYTES)
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TimeoutException):
            return PushResult(outcome="retry", detail="the endpoint did not answer in time")
        except httpx.HTTPError as exc:
            return PushResult(outcome="retry", detail=f"{type(exc).__name__}: {exc}".strip())
        retry_after = response.headers.get("retry-after")
        return outcome_of(response.status_code, retry_after, time.time(), detail)


#: Pools being closed after eviction (kept referenced until done).
_closing: set[asyncio.Task[None]] = set()


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
