"""Push devices: registering, listing and removing where a user's notifications go.

Transports stay thin: they call these functions with the acting user and the request's values
(any JSON types) and shape the reply. Sending to these devices is not here:
`chatcore.server.push.routing`
queues the pushes and `chatcore.server.push.dispatch` sends them through the adapters
(docs/push.md).

Rules (docs/protocol.md "Push devices", plus the decisions written here):
- `platform` is "webpush", "fcm", "apns" or "webhook". "webpush" takes `endpoint` (an https
  URL) and `keys` `{"p256dh", "auth"}` (base64url: a P-256 public key of 65 bytes and an auth
  secret of 16 bytes, RFC 8291); "fcm" and "apns" take `token` (1..4096 visible ASCII
  characters); "webhook" takes `endpoint` (an http or https URL). A field the platform does
  not use is refused rather than ignored, so a client mixing them up hears about it.
- Registering the same (user, platform, token or endpoint) again answers the device registered
  first (same id and created_ts); for "webpush" its keys become the given ones (a renewed
  subscription keeps its endpoint but may change its keys).
- A user has at most `MAX_DEVICES` devices: one more is a `conflict` (409) until one is removed.
- A user sees and removes only their own devices; anyone else's, or an unknown id, is
  `not_found`.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from typing import TYPE_CHECKING, get_args
from urllib.parse import urlsplit

from chatcore.clock import now_ms
from chatcore.errors import bad_request, not_found
from chatcore.models import Device, DevicePlatform, WebPushKeys

if TYPE_CHECKING:
    from chatcore.server.app import App

PLATFORMS: tuple[str, ...] = get_args(DevicePlatform)
#: Devices per user. Phones, browsers and a few webhooks of one person stay far below it; a
#: client registering a new token at every start without removing the old one hits it.
MAX_DEVICES = 50
TOKEN_MAX = 4096
ENDPOINT_MAX = 2048
#: Decoded sizes of Web Push keys (RFC 8291: an uncompressed P-256 point, a 16-byte secret).
P256DH_BYTES = 65
AUTH_BYTES = 16

_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]+")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")

#: The fields each platform takes; the others must be absent (or null).
_FIELDS: dict[str, frozenset[str]] = {
    "webpush": frozenset({"endpoint", "keys"}),
    "fcm": frozenset({"token"}),
    "apns": frozenset({"token"}),
    "webhook": frozenset({"endpoint"}),
}


# --- validation -------------------------------------------------------------------------------


def _token(value: object) -> str:
    if not isinstance(value, str):
        raise bad_request("token must be a string.")
    if not 1 <= len(value) <= TOKEN_MAX:
        raise bad_request(f"token must be 1 to {TOKEN_MAX} characters long.")
    if not _VISIBLE_ASCII.fullmatch(value):
        raise bad_request("token must hold visible ASCII characters only (no spaces).")
    return value


def _endpoint(value: object, schemes: tuple[str, ...]) -> str:
    wanted = " or ".join(schemes)
    if not isinstance(value, str) or not value:
        raise bad_request(f"endpoint must be an {wanted} URL.")
    if len(value) > ENDPOINT_MAX:
        raise bad_request(f"endpoint must be at most {ENDPOINT_MAX} characters long.")
    if not _VISIBLE_ASCII.fullmatch(value):
        raise bad_request("endpoint must hold visible ASCII characters only (encode the rest).")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number in range
    except ValueError:
        raise bad_request(f"endpoint must be an {wanted} URL.") from None
    if parts.scheme.lower() not in schemes or not parts.hostname:
        raise bad_request(f"endpoint must be an {wanted} URL with a host.")
    # Whether the host may be reached (no loopback, private or link-local addresses: SSRF) is
    # checked by the push sender when it resolves the host, at every send: a name resolving to
    # a public address today may resolve to a private one tomorrow.
    return value


def _key(keys: dict[object, object], name: str, size: int) -> str:
    value = keys.get(name)
    if not isinstance(value, str) or not _BASE64URL.fullmatch(value) or len(value) > 4 * size:
        raise bad_request(f"keys.{name} must be a base64url string.")
    bare = value.rstrip("=")
    try:
        decoded = base64.urlsafe_b64decode(bare + "=" * (-len(bare) % 4))
    except (binascii.Error, ValueError):
        raise bad_request(f"keys.{name} must be a base64url string.") from None
    if len(decoded) != size:
        raise bad_request(f"keys.{name} must encode {size} bytes (it encodes {len(decoded)}).")
    return value


def _keys(value: object) -> WebPushKeys:
    if not isinstance(value, dict):
        raise bad_request('keys must be an object {"p256dh", "auth"}.')
    extra = sorted(str(name) for name in value if name not in ("p256dh", "auth"))
    if extra:
        raise bad_request(f'keys takes only "p256dh" and "auth", not {", ".join(extra)}.')
    return WebPushKeys(
        p256dh=_key(value, "p256dh", P256DH_BYTES), auth=_key(value, "auth", AUTH_BYTES)
    )


def validate(
    user_id: str, platform: object, token: object, endpoint: object, keys: object, now_ts: int
) -> Device:
    """A new Device from a request's values, or ChatError (bad_request) saying what is wrong."""
    if not isinstance(platform, str) or platform not in PLATFORMS:
        raise bad_request(f"platform must be one of {', '.join(PLATFORMS)}.")
    fields = (("token", token), ("endpoint", endpoint), ("keys", keys))
    given = {name for name, value in fields if value is not None}
    wrong = sorted(given - _FIELDS[platform])
    if wrong:
        takes = " and ".join(sorted(_FIELDS[platform]))
        raise bad_request(f"A {platform} device takes {takes}, not {', '.join(wrong)}.")
    device = Device(id=uuid.uuid4().hex, user_id=user_id, platform=platform, created_ts=now_ts)
    if platform in ("fcm", "apns"):
        return device.model_copy(update={"token": _token(token)})
    if platform == "webhook":
        return device.model_copy(update={"endpoint": _endpoint(endpoint, ("http", "https"))})
    if keys is None:
        raise bad_request('A webpush device needs keys {"p256dh", "auth"}.')
    return device.model_copy(
        update={"endpoint": _endpoint(endpoint, ("https",)), "keys": _keys(keys)}
    )


# --- the operations ---------------------------------------------------------------------------


async def register(
    app: App,
    user_id: str,
    *,
    platform: object,
    token: object = None,
    endpoint: object = None,
    keys: object = None,
) -> tuple[Device, bool]:
    """Register a push device of `user_id`; True when it is new, False when the same device
    (platform and token or endpoint) was registered before (that one is returned)."""
    device = validate(user_id, platform, token, endpoint, keys, now_ms())
    return await app.storage.add_device(device, MAX_DEVICES)


async def list_devices(app: App, user_id: str) -> list[Device]:
    """The user's devices, newest first."""
    return await app.storage.list_devices(user_id)


async def remove(app: App, user_id: str, device_id: str) -> None:
    """Remove one of the user's devices; `not_found` for any other id."""
    if not await app.storage.delete_device(user_id, device_id):
        raise not_found("This device")
