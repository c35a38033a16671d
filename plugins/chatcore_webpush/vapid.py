"""VAPID (RFC 8292): the server's P-256 key pair and the `Authorization: vapid` header.

Only `cryptography` and PyJWT here (no pywebpush), so the CLI and config checks stay light.
"""

from __future__ import annotations

import base64
import binascii
import time

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = [
    "VapidSigner",
    "b64url_decode",
    "b64url_encode",
    "generate_private_key",
    "load_private_key",
    "private_key_text",
    "public_key_text",
]

#: Lifetime of a signed token. RFC 8292 allows at most 24 h; half of it leaves room for clock
#: skew between us and the push service.
TOKEN_LIFETIME_SECONDS = 12 * 3600
#: A cached token is reused until this long before it expires.
TOKEN_RENEW_BEFORE_SECONDS = 3600
#: Audiences (push service origins) remembered; clients choose endpoints, so the cache is capped.
MAX_CACHED_AUDIENCES = 256


def b64url_encode(data: bytes) -> str:
    """Unpadded base64url, as Web Push uses for keys."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding; ValueError on anything else."""
    text = "".join(text.split())
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except binascii.Error as exc:
        raise ValueError(f"not base64url: {exc}") from None


def load_private_key(text: str) -> ec.EllipticCurvePrivateKey:
    """A VAPID private key from PEM, or base64url of the raw 32-byte scalar or of DER.

    ValueError when it is none of those or not on P-256.
    """
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            raw = b64url_decode(text)
            if len(raw) == 32:
                key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
            else:
                key = serialization.load_der_private_key(raw, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"not a usable private key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("not a P-256 (prime256v1) EC private key")
    return key


def generate_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def private_key_text(key: ec.EllipticCurvePrivateKey) -> str:
    """base64url of the raw 32-byte private scalar (the form `vapid_private_key` takes)."""
    return b64url_encode(key.private_numbers().private_value.to_bytes(32, "big"))


def public_key_text(key: ec.EllipticCurvePrivateKey) -> str:
    """base64url of the uncompressed public point: the browser's `applicationServerKey`."""
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return b64url_encode(point)


class VapidSigner:
    """Makes `Authorization: vapid t=<JWT>, k=<public key>` for a push service's origin.

    One ES256 signature per origin every few hours instead of one per push: tokens are cached
    per audience and renewed an hour before they expire.
    """

    def __init__(self, key: ec.EllipticCurvePrivateKey, subject: str) -> None:
        self._key = key
        self._subject = subject
        self.public_key = public_key_text(key)
        self._cache: dict[str, tuple[str, float]] = {}

    def authorization(self, audience: str, *, now: float | None = None) -> str:
        """The header value for `audience` (scheme://host[:port] of the endpoint)."""
        now = time.time() if now is None else now
        cached = self._cache.get(audience)
        if cached is not None and cached[1] - TOKEN_RENEW_BEFORE_SECONDS > now:
            return cached[0]
        expires = int(now) + TOKEN_LIFETIME_SECONDS
        # Claims in sorted order: some push services were reported to want them so.
        claims = {"aud": audience, "exp": expires, "sub": self._subject}
        token = jwt.encode(claims, self._key, algorithm="ES256", headers={"typ": "JWT"})
        header = f"vapid t={token}, k={self.public_key}"
        if len(self._cache) >= MAX_CACHED_AUDIENCES:
            self._cache.clear()
        self._cache[audience] = (header, expires)
        return header
