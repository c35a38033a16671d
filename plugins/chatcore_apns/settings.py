"""The `[apns]` config section."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator

from chatcore.settings import Section
from chatcore_apns.payload import APS_RESERVE_BYTES, MAX_BODY_BYTES, MAX_PUSH_BYTES

__all__ = ["API_URLS", "ApnsSettings"]

#: The provider API of each APNs environment. A development build of an app gets sandbox
#: tokens, an App Store or TestFlight build production ones.
API_URLS = {
    "production": "https://api.push.apple.com",
    "sandbox": "https://api.sandbox.push.apple.com",
}

#: Apple's Key ID and Team ID: 10 characters, upper-case letters and digits.
APPLE_ID_PATTERN = r"^[A-Z0-9]{10}$"


class ApnsSettings(Section):
    """`[apns]`: Apple Push Notification service, token-based (a .p8 key), plugin chatcore_apns.

    Off until `key` (or `key_file`), `key_id`, `team_id` and `topic` are all set; some but not
    all of them is a config error naming what is missing.
    """

    key_file: str | None = Field(
        None,
        description="Path to the .p8 signing key from the Apple developer account (Keys, with "
        "Apple Push Notifications service enabled); read at start. Or give `key` instead.",
    )
    key: SecretStr | None = Field(
        None,
        description="The .p8 key itself, its PEM text (`-----BEGIN PRIVATE KEY-----`...); for "
        "the environment (CHATCORE_APNS__KEY) rather than a file. Not with `key_file`.",
    )
    key_id: str | None = Field(
        None, pattern=APPLE_ID_PATTERN, description="The key's 10-character Key ID (JWT `kid`)."
    )
    team_id: str | None = Field(
        None,
        pattern=APPLE_ID_PATTERN,
        description="The 10-character Team ID of the developer account (JWT `iss`).",
    )
    topic: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9.\-]*$",
        max_length=255,
        description="The app's bundle ID, e.g. `com.example.chat` (`apns-topic`).",
    )
    environment: Literal["production", "sandbox"] = Field(
        "production",
        description="APNs environment of the apps' tokens: `production` (App Store, TestFlight) "
        "or `sandbox` (builds run from Xcode). A token of the other one is BadDeviceToken, "
        "and its device is removed.",
    )
    api_url: str | None = Field(
        None,
        pattern=r"^https://[^/\s?#@]+/?$",
        description="APNs origin to send to instead of the environment's (a private proxy, "
        "tests); https only.",
    )
    ca_file: str | None = Field(
        None,
        description="PEM file of the only certificate authorities trusted for APNs' TLS "
        "certificate instead of the system's (a private APNs proxy, tests); read at start.",
    )
    timeout_seconds: float = Field(
        5.0, gt=0, le=60, description="Longest a push request may take; then it is retried."
    )
    expiration_seconds: int = Field(
        86400,
        ge=0,
        le=30 * 86400,
        description="How long APNs keeps a push for an offline device (`apns-expiration` is "
        "now plus this); 0: delivered at once or never.",
    )
    max_payload_bytes: int = Field(
        MAX_PUSH_BYTES,
        ge=128,
        le=MAX_PUSH_BYTES,
        description=f"Largest push JSON sent; a longer one fails. APNs takes {MAX_BODY_BYTES} "
        f"bytes of body, and the alert shown (`aps`) takes up to {APS_RESERVE_BYTES} of them, "
        f"hence at most {MAX_PUSH_BYTES}.",
    )

    @property
    def configured(self) -> bool:
        """Whether APNs is on: a key, its ID, the team and the topic are set."""
        has_key = self.key is not None or self.key_file is not None
        return has_key and None not in (self.key_id, self.team_id, self.topic)

    @property
    def url(self) -> str:
        """The origin pushes go to, without a trailing slash."""
        return (self.api_url or API_URLS[self.environment]).rstrip("/")

    # A model validator, not a field one: a field's error would echo the key it refuses.
    @model_validator(mode="after")
    def _complete_and_usable(self) -> ApnsSettings:
        if self.key is not None and self.key_file is not None:
            raise ValueError("set key or key_file, not both")
        if self.key_file is not None and not self.key_file.strip():
            raise ValueError("key_file must not be empty; leave it out to turn APNs off")
        given = {
            "key (or key_file)": self.key is not None or self.key_file is not None,
            "key_id": self.key_id is not None,
            "team_id": self.team_id is not None,
            "topic": self.topic is not None,
        }
        missing = [name for name, present in given.items() if not present]
        if missing and len(missing) < len(given):
            raise ValueError(
                f"APNs needs key (or key_file), key_id, team_id and topic; missing: "
                f"{', '.join(missing)} (or leave all of them out to turn APNs off)"
            )
        if self.key is not None:
            # Checked with cryptography, which only the `apns` extra installs.
            from chatcore_apns import EXTRA

            EXTRA.require()
            from chatcore_apns.token import load_key

            try:
                load_key(self.key.get_secret_value())
            except ValueError as exc:
                raise ValueError(f"key: {exc}") from None
        return self
