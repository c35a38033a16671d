"""The `[webapp]` config section."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from chatcore.settings import Section

__all__ = ["WebAppSettings"]

_PATH = re.compile(r"/|(/[A-Za-z0-9_.~-]+)+/?")


class WebAppSettings(Section):
    """`[webapp]`: the browser chat app, served on the REST API's port."""

    enabled: bool = Field(
        True, description="Serve the browser app; false leaves the server API-only."
    )
    path: str = Field(
        "/",
        description='Where the app is mounted on the REST port, e.g. "/" or "/chat" '
        "(the API stays under /api/v1).",
    )

    @field_validator("path")
    @classmethod
    def _plain_path(cls, value: str) -> str:
        if not _PATH.fullmatch(value) or {".", ".."} & set(value.split("/")):
            raise ValueError(
                'a path such as "/" or "/chat": letters, digits and _ . ~ - between slashes'
            )
        mount = "/" + value.strip("/")
        if mount == "/api" or mount.startswith(("/api/", "/healthz", "/metrics")):
            raise ValueError(f"{value!r} is where the server's own routes are")
        return mount
