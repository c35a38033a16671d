"""The `[storage]` keys this plugin adds, and which URLs it serves."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from chatcore.settings import StorageSettings

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

#: URL schemes this plugin answers, mapped to the async driver it uses for them.
DRIVERS = {
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "sqlite": "sqlite+aiosqlite",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}


# The config key is `schema`, which shadows pydantic's deprecated `BaseModel.schema()`;
# pydantic warns about that when the class is made. The core reads config keys from field
# names (error hints, the docs check), so the field keeps the key's name and the warning is
# silenced here, for this class only.
with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore", 'Field name "schema" in "SqlStorageSettings" shadows', UserWarning
    )

    class SqlStorageSettings(StorageSettings):
        """`[storage]` for SQL: `url` is `sqlite+aiosqlite:///path` or `postgresql+asyncpg://...`."""

        pool_size: int = Field(default=10, ge=1, description="Connections kept open.")
        max_overflow: int = Field(
            default=10, ge=0, description="Extra connections allowed under load."
        )
        pool_timeout: float = Field(
            default=30, gt=0, description="Seconds to wait for a free connection."
        )
        echo: bool = Field(default=False, description="Log every SQL statement (debugging).")
        url_schemes: ClassVar[tuple[str, ...] | None] = tuple(DRIVERS)

        auto_migrate: bool = Field(
            default=True,
            description="Upgrade the schema to the newest revision when a server starts "
            "(`chatcore serve`, an embedded App; PostgreSQL: under an advisory lock, so nodes "
            "may start together). Admin commands (`chatcore user ...`) never change the "
            "schema: with it missing or older they stop and name `chatcore db upgrade`.",
        )
        schema: str | None = Field(  # type: ignore[assignment]
            default=None,
            pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$",
            description="PostgreSQL schema holding the tables (created if missing).",
        )
        sqlite_synchronous: Literal["NORMAL", "FULL"] = Field(
            default="NORMAL",
            description="NORMAL survives a process crash (WAL); FULL also survives power loss.",
        )
        busy_timeout_ms: int = Field(
            default=5000, ge=0, description="SQLite: how long a writer waits for another writer."
        )

        @field_validator("url")
        @classmethod
        def _parses(cls, value: str) -> str:
            """A URL of this plugin's schemes must parse as SQLAlchemy parses it at start."""
            if urlsplit(value).scheme.lower() not in DRIVERS:
                return value  # another plugin's URL, or one the core refuses
            from sqlalchemy.engine import make_url  # see async_url
            from sqlalchemy.exc import ArgumentError

            try:
                make_url(value)
            except (ArgumentError, ValueError):  # ValueError: a port that is not a number
                raise ValueError(
                    "expected sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER@HOST[:PORT]/DB"
                ) from None
            return value


def async_url(url: str) -> URL | None:
    """`url` with its async driver, or None when it is not a URL this plugin serves."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    driver = DRIVERS.get(scheme)
    if driver is None:
        return None
    # Imported here: SQLAlchemy takes a quarter of a second, which `chatcore --help` (it loads
    # this module with the plugin) would pay otherwise.
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    return parsed.set(drivername=driver)
