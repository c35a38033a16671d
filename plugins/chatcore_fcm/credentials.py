"""The Google service account FCM is sent with, and the OAuth assertion signed with its key.

A service account key is the JSON file Google gives (Firebase console, Project settings,
Service accounts, Generate new private key). Of it we need `client_email` (the JWT issuer),
`private_key` (PEM RSA, signs the JWT), `project_id` (in the send URL) and `token_uri` (where
the JWT is traded for an access token); `private_key_id` names the key in the JWT header.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt
import orjson
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chatcore_fcm.settings import check_url

__all__ = ["SCOPE", "ServiceAccount", "check_url", "parse_service_account"]

#: The OAuth scope of the FCM HTTP v1 API.
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
#: Lifetime of the signed assertion; Google takes at most an hour.
ASSERTION_LIFETIME_SECONDS = 3600
#: The keys a service account JSON must have, in the order a missing one is named.
REQUIRED_KEYS = ("client_email", "private_key", "project_id", "token_uri")


@dataclass(frozen=True)
class ServiceAccount:
    """What the adapter uses of a service account key (see the module docstring)."""

    client_email: str
    private_key: rsa.RSAPrivateKey
    private_key_id: str | None
    project_id: str
    token_uri: str

    def assertion(self, audience: str, *, now: float | None = None) -> str:
        """The RS256 JWT traded for an access token at `audience` (the token URL): issued by
        the service account for the FCM scope, valid for an hour from `now`."""
        issued = int(time.time() if now is None else now)
        claims = {
            "iss": self.client_email,
            "scope": SCOPE,
            "aud": audience,
            "iat": issued,
            "exp": issued + ASSERTION_LIFETIME_SECONDS,
        }
        # `kid` lets Google pick the public key of this private key without trying each one.
        headers = {"kid": self.private_key_id} if self.private_key_id else None
        # One RSA-2048 signature, about a millisecond, once an hour: fine on the event loop.
        return jwt.encode(claims, self.private_key, algorithm="RS256", headers=headers)


def parse_service_account(text: str | bytes) -> ServiceAccount:
    """A `ServiceAccount` from the JSON of a service account key. ValueError, naming what is
    wrong (never quoting the key), when it is not JSON, lacks a required key, is another kind
    of credential, or its `private_key` is not a PEM RSA private key."""
    try:
        data: Any = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ValueError("is not JSON (expected a service account key file's content)") from None
    if not isinstance(data, dict):
        raise ValueError("is not a JSON object (expected a service account key)")
    kind = data.get("type")
    if kind is not None and kind != "service_account":
        raise ValueError(f"is a credential of type {kind!r}, not a service account key")
    missing = [key for key in REQUIRED_KEYS if not isinstance(data.get(key), str) or not data[key]]
    if missing:
        raise ValueError(
            f"lacks {', '.join(missing)} (expected a service account key: Firebase console, "
            "Project settings, Service accounts, Generate new private key)"
        )
    try:
        key = serialization.load_pem_private_key(data["private_key"].encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # cryptography's message can quote the PEM's first bytes; keep it out of the error.
        raise ValueError("private_key is not a PEM private key without a password") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("private_key is not an RSA key (Google service account keys are)")
    check_url(data["token_uri"], "token_uri")
    key_id = data.get("private_key_id")
    return ServiceAccount(
        client_email=data["client_email"],
        private_key=key,
        private_key_id=key_id if isinstance(key_id, str) and key_id else None,
        project_id=data["project_id"],
        token_uri=data["token_uri"],
    )
