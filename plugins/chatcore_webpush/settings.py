"""The `[webpush]` config section."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator

from chatcore.settings import Section

__all__ = ["MAX_PLAINTEXT_BYTES", "WebPushSettings"]

#: A push service must accept at least 4096 bytes of body (RFC 8030 §7.2) and need not take more.
MAX_BODY_BYTES = 4096
#: The aes128gcm header of RFC 8291 §4: salt (16) + record size (4) + key id length (1) + key id,
#: our ephemeral public key as an uncompressed P-256 point (65).
HEADER_BYTES = 16 + 4 + 1 + 65
#: One record: the plaintext, a padding delimiter (1, no further padding) and the GCM tag (16).
RECORD_OVERHEAD_BYTES = 1 + 16
#: 3993, the figure RFC 8291 §4 gives.
MAX_PLAINTEXT_BYTES = MAX_BODY_BYTES - HEADER_BYTES - RECORD_OVERHEAD_BYTES


class WebPushSettings(Section):
    """`[webpush]`: Web Push (RFC 8030/8291) with VAPID (RFC 8292), plugin chatcore_webpush.

    Without `vapid_private_key` the plugin offers no adapter and Web Push devices get no pushes.
    `chatcore push vapid-keys` makes a key pair and prints these lines.
    """

    vapid_private_key: SecretStr | None = Field(
        None,
        description="The server's VAPID P-256 private key: base64url of the raw 32-byte key "
        "(as `chatcore push vapid-keys` prints it) or of its DER, or PEM. Browsers subscribe "
        "with its public key; changing it orphans every Web Push subscription.",
    )
    vapid_subject: str | None = Field(
        None,
        pattern=r"^(mailto:\S+@\S+|https://\S+)$",
        description="How a push service reaches the operator (the JWT `sub`): a `mailto:` "
        "address or an `https:` URL. Required with `vapid_private_key`.",
    )
    ttl_seconds: int = Field(
        86400,
        ge=0,
        le=28 * 86400,
        description="How long a push service keeps a push for an offline browser (`TTL`).",
    )
    timeout_seconds: float = Field(
        5.0, gt=0, le=120, description="Longest a push request may take; then it is retried."
    )
    allow_private_endpoints: bool = Field(
        False,
        description="Allow subscription endpoints on loopback, private or link-local addresses, "
        "and plain `http:` ones (a local test push service). Never in production.",
    )
    ca_file: str | None = Field(
        None,
        description="PEM file of the certificate authorities trusted for https endpoints "
        "instead of the system's (a private push service, tests); read at start.",
    )
    max_payload_bytes: int = Field(
        MAX_PLAINTEXT_BYTES,
        ge=64,
        le=MAX_PLAINTEXT_BYTES,
        description="Largest push JSON sent; a longer one fails. Encryption adds 103 bytes and "
        f"push services need not take over {MAX_BODY_BYTES}, hence at most {MAX_PLAINTEXT_BYTES}.",
    )

    # A model validator rather than a field validator: a field's error would echo the key.
    @model_validator(mode="after")
    def _key_and_subject(self) -> WebPushSettings:
        if self.vapid_private_key is None:
            return self
        # Checked with cryptography, which only the `webpush` extra installs.
        from chatcore_webpush import EXTRA

        EXTRA.require()
        from chatcore_webpush.vapid import load_private_key

        try:
            load_private_key(self.vapid_private_key.get_secret_value())
        except ValueError as exc:
            raise ValueError(f"vapid_private_key: {exc}") from None
        if self.vapid_subject is None:
            raise ValueError("vapid_subject is required with vapid_private_key")
        return self
