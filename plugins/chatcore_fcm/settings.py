"""The `[fcm]` config section and the payload size it allows."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator

from chatcore.server.push.ssrf import is_loopback_host
from chatcore.settings import ConfigError, Section

if TYPE_CHECKING:
    from chatcore_fcm.credentials import ServiceAccount

__all__ = ["MAX_PUSH_BYTES", "FcmSettings", "check_url"]

#: FCM refuses a message whose payload (data keys and values, notification title and body)
#: is over 4096 bytes; on Apple devices the same 4096 bytes must also hold the APNs wrapping.
FCM_PAYLOAD_BYTES = 4096
#: Left to the keys FCM adds to what it delivers on Apple devices (`gcm.message_id`,
#: `google.c.a.e`, `google.c.sender.id`, `google.c.fid`: some 150 bytes), rounded up.
FCM_ADDED_BYTES = 256
#: What the adapter lets its payload measure grow to: the JSON of the notification and data
#: as sent, `{"notification":{"title":..,"body":..},"data":{..}}`, an upper bound on both
#: FCM's count (keys and values) and the APNs JSON built from them.
MAX_MEASURED_BYTES = FCM_PAYLOAD_BYTES - FCM_ADDED_BYTES
#: Our envelope around the push's own bytes: `{"notification":` (16), `{"title":""` (11),
#: `,"body":""}` (11), `,"data":` (8) and the closing `}` (1) = 47, plus the quotes that make
#: the four non-string fields (seq, ts, direct, mention) data strings (8).
ENVELOPE_BYTES = 47 + 8
#: 1892, the largest push JSON sure to fit. The preview (and sender and room names) travel
#: twice, in the notification for the system to show and in `data` for the app, so the push
#: gets half of what is left: measured <= 2 * push + ENVELOPE_BYTES. (Title and body hold the
#: push's names and preview plus at most 11 bytes, ": " or "New message"; the push holds at
#: least 14 bytes besides those, `{"preview":""}`.)
MAX_PUSH_BYTES = (MAX_MEASURED_BYTES - ENVELOPE_BYTES) // 2


class FcmSettings(Section):
    """`[fcm]`: pushes to Android and Apple apps through Firebase Cloud Messaging (HTTP v1),
    plugin chatcore_fcm.

    Off (no adapter, FCM devices get no pushes) until a service account key is given, as a
    file (`service_account_file`) or as its JSON (`service_account_json`, e.g. from
    `CHATCORE_FCM__SERVICE_ACCOUNT_JSON`); not both.
    """

    service_account_file: Path | None = Field(
        None,
        description="Path of the service account key JSON Google gives (Firebase console, "
        "Project settings, Service accounts, Generate new private key); read at start.",
    )
    service_account_json: SecretStr | None = Field(
        None,
        description="The service account key JSON itself (for an environment variable), "
        "instead of service_account_file.",
    )
    api_url: str = Field(
        "https://fcm.googleapis.com",
        description="Base URL of the FCM HTTP v1 API; messages go to "
        "`<api_url>/v1/projects/<project_id>/messages:send`.",
    )
    token_url: str | None = Field(
        None,
        description="Where the signed service account JWT is traded for an access token; "
        "by default the key's `token_uri`.",
    )
    timeout_seconds: float = Field(
        5.0,
        gt=0,
        le=60,
        description="Longest wait for FCM's or the token endpoint's answer (connecting "
        "included); longer is a `retry`.",
    )
    ttl_seconds: int = Field(
        86400,
        ge=0,
        le=28 * 86400,
        description="How long FCM keeps a push for an offline Android device (`android.ttl`, "
        "at most 4 weeks).",
    )
    max_payload_bytes: int = Field(
        MAX_PUSH_BYTES,
        ge=64,
        le=MAX_PUSH_BYTES,
        description="Largest push JSON sent; a longer one fails. The preview is sent twice "
        f"(notification and data) within FCM's {FCM_PAYLOAD_BYTES} bytes, hence at most "
        f"{MAX_PUSH_BYTES}.",
    )

    # The account parsed from service_account_json when the config was checked (loading an
    # RSA key checks it, some 70 ms: once is enough).
    _account: Any = PrivateAttr(None)

    @field_validator("api_url", "token_url")
    @classmethod
    def _secure_url(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value, "the URL")

    # A model validator rather than a field validator: a field's error would echo the JSON,
    # private key included.
    @model_validator(mode="after")
    def _one_service_account(self) -> FcmSettings:
        if self.service_account_file is not None and self.service_account_json is not None:
            raise ValueError("give service_account_file or service_account_json, not both")
        if self.service_account_json is not None:
            # Imported here: cryptography comes with chatcore[fcm], needed only when FCM is on.
            from chatcore_fcm import EXTRA

            EXTRA.require()
            from chatcore_fcm.credentials import parse_service_account

            try:
                self._account = parse_service_account(self.service_account_json.get_secret_value())
            except ValueError as exc:
                raise ValueError(f"service_account_json {exc}") from None
        return self

    def load_service_account(self) -> ServiceAccount:
        """The configured service account: `service_account_json`'s, or `service_account_file`
        read and checked now (at the adapter's start). ConfigError saying what is wrong, never
        quoting the key."""
        from chatcore_fcm.credentials import parse_service_account

        if self._account is not None:
            account: ServiceAccount = self._account
            return account
        if self.service_account_file is None:
            raise ConfigError("[fcm]", ["no service account is configured"])
        source = f"service_account_file {self.service_account_file}"
        try:
            text = self.service_account_file.read_bytes()
        except OSError as exc:
            raise ConfigError("[fcm]", [f"{source} cannot be read: {exc.strerror}"]) from None
        try:
            return parse_service_account(text)
        except ValueError as exc:
            raise ConfigError("[fcm]", [f"{source} {exc}"]) from None

    @property
    def enabled(self) -> bool:
        """Whether a service account is configured (FCM pushes are on)."""
        return self.service_account_file is not None or self.service_account_json is not None


def check_url(url: str, name: str) -> str:
    """`url` when it is https, or http to a loopback host (a local stand-in for Google);
    ValueError naming `name` otherwise. Plain http elsewhere would put the signed assertion
    and the access token on the wire in clear."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError as exc:
        raise ValueError(f"{name} is not a URL: {exc}") from None
    if parts.scheme == "https" and host:
        return url
    if parts.scheme == "http" and is_loopback_host(host):
        return url
    raise ValueError(f"{name} must be an https URL (plain http only to a loopback host)")
