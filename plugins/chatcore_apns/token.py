"""The APNs provider token: an ES256 JWT signed with the team's .p8 key (token-based auth).

Apple refuses a token older than an hour (403 ExpiredProviderToken) and renewals more often
than every 20 minutes (429 TooManyProviderTokenUpdates), so one token serves every push for 50
minutes. Signing is one P-256 signature, microseconds: done inline on the event loop.
"""

from __future__ import annotations

import time

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = ["RENEW_AFTER_SECONDS", "ProviderToken", "load_key"]

#: Age at which a token is replaced: inside Apple's hour, well past its 20-minute floor.
RENEW_AFTER_SECONDS = 50 * 60


def load_key(pem: str | bytes) -> ec.EllipticCurvePrivateKey:
    """The signing key from the PEM text of a .p8 file (PKCS#8, "BEGIN PRIVATE KEY").

    ValueError, never quoting the key, when it is not PEM or not a P-256 EC private key.
    """
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_private_key(data.strip(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        # cryptography's message does not quote the input; the type says what went wrong.
        raise ValueError(
            f"not a PEM private key such as Apple's .p8 file ({type(exc).__name__})"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("not a P-256 (ES256) EC private key, as Apple's .p8 keys are")
    return key


class ProviderToken:
    """Makes and keeps the `authorization: bearer <JWT>` token of one key.

    The JWT's header is {"alg": "ES256", "kid": key_id} and its claims {"iss": team_id,
    "iat": <unix seconds>}, as APNs wants them. `current` reuses a token until it is
    `RENEW_AFTER_SECONDS` old; `renew` replaces one APNs called expired.
    """

    def __init__(self, key: ec.EllipticCurvePrivateKey, key_id: str, team_id: str) -> None:
        self._key = key
        self._key_id = key_id
        self._team_id = team_id
        self._token = ""
        self._issued = 0.0

    def current(self, now: float | None = None) -> str:
        """The token to send now: the kept one, or a new one when it is due."""
        now = time.time() if now is None else now
        if not self._token or now - self._issued >= RENEW_AFTER_SECONDS or now < self._issued:
            self._make(now)
        return self._token

    def renew(self, stale: str, now: float | None = None) -> str:
        """A token to send instead of `stale`, which APNs answered ExpiredProviderToken.

        Only when `stale` is still the kept token is a new one made: pushes in flight together
        all get that answer, and each making its own would be refused as too many updates.
        """
        if stale == self._token:
            self._make(time.time() if now is None else now)
        return self._token

    def _make(self, now: float) -> None:
        claims = {"iss": self._team_id, "iat": int(now)}
        # typ None: PyJWT leaves out its default "typ", so the header is exactly Apple's.
        headers = {"kid": self._key_id, "typ": None}
        self._token = jwt.encode(claims, self._key, algorithm="ES256", headers=headers)
        self._issued = now
