"""The `[media]` keys of the fsspec media store (besides the core's `url`)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from chatcore.models import MediaPolicy
from chatcore.server.media import DEFAULT_ALLOWED_TYPES, SNIFFED_TYPES
from chatcore.settings import MediaSettings

__all__ = ["FsspecMediaSettings"]


class FsspecMediaSettings(MediaSettings):
    """`[media]`: media bytes behind any fsspec filesystem, chosen by `url`."""

    allowed_types: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ALLOWED_TYPES),
        description="Content types an upload may have, judged from its bytes (known: "
        + ", ".join(SNIFFED_TYPES)
        + ").",
    )
    storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description="Options of the fsspec filesystem, e.g. for s3:// "
        '{endpoint_url = "http://127.0.0.1:9000", key = "...", secret = "..."}; '
        "secrets belong in CHATCORE_MEDIA__STORAGE_OPTIONS (JSON).",
    )
    url_ttl_seconds: int = Field(
        600,
        ge=30,
        le=7 * 24 * 3600,
        description="Life of a signed media URL (the `url` of a Media), in seconds.",
    )
    thumbnail_sizes: list[int] = Field(
        default_factory=lambda: [64, 128, 256, 512, 1024],
        min_length=1,
        max_length=16,
        description="Edge lengths thumbnails are made at; a request gets the largest one not "
        "above the size it asks for.",
    )
    max_image_pixels: int = Field(
        40_000_000,
        ge=1,
        le=1_000_000_000,
        description="Images with more pixels (width x height) are refused before decoding "
        "(decompression bombs); Pillow's own bound is set to it.",
    )

    @field_validator("allowed_types")
    @classmethod
    def _known_types(cls, value: list[str]) -> list[str]:
        unknown = [t for t in value if t not in SNIFFED_TYPES]
        if unknown:
            raise ValueError(
                f"unknown type(s) {', '.join(unknown)}; known: {', '.join(SNIFFED_TYPES)}"
            )
        return list(dict.fromkeys(value))

    @field_validator("thumbnail_sizes")
    @classmethod
    def _sane_sizes(cls, value: list[int]) -> list[int]:
        if any(not 16 <= size <= 4096 for size in value):
            raise ValueError("each size must be 16 to 4096")
        return sorted(set(value))

    def policy(self) -> MediaPolicy:
        return MediaPolicy(
            allowed_types=tuple(self.allowed_types),
            url_ttl_seconds=self.url_ttl_seconds,
            thumbnail_sizes=tuple(self.thumbnail_sizes),
            max_image_pixels=self.max_image_pixels,
        )
