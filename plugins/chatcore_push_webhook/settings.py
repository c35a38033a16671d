"""The `[push_webhook]` config section."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from chatcore.settings import Section

__all__ = ["WebhookSettings"]


class WebhookSettings(Section):
    """`[push_webhook]`: pushes POSTed as signed JSON to the URL a device registered.

    Webhook pushes are off until `secret` is set (or `CHATCORE_PUSH_WEBHOOK__SECRET`): every
    request carries an HMAC-SHA256 signature made with it (see docs/push.md).
    """

    secret: SecretStr | None = Field(
        None,
        description="Key of the `X-Chatcore-Signature` HMAC-SHA256 of every webhook push; "
        "webhook pushes are off while it is unset. Receivers verify with the same key.",
    )
    timeout_seconds: float = Field(
        5.0,
        gt=0,
        le=60,
        description="Longest wait for an endpoint's answer (connecting included); longer is "
        "a `retry`.",
    )
    allow_private_endpoints: bool = Field(
        False,
        description="Allow endpoints on private, loopback or link-local addresses (tests, a "
        "closed network); off, such endpoints are refused as SSRF.",
    )
    ca_file: str | None = Field(
        None,
        description="PEM file of the certificate authorities trusted for https endpoints "
        "instead of the system's (a private push service, tests); read at start.",
    )
    max_payload_bytes: int = Field(
        4096,
        ge=64,
        le=1024 * 1024,
        description="Largest JSON body sent; a larger push is `failed` without a request.",
    )

    @field_validator("secret")
    @classmethod
    def _secret_not_blank(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("must not be empty; leave it out to turn webhook pushes off")
        return value
