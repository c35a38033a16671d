"""Finding the real services tests run against: PostgreSQL, Redis, NATS.

Each URL comes from an environment variable with a local default. A test that needs a service
calls `require_service` (or `require_url`): when the service does not answer, the test is
skipped with the reason, or fails when `CHATCORE_REQUIRE_SERVICES=1` (CI, where a missing
service is a broken setup, not a reason to skip).
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"
NATS_URL = "nats://127.0.0.1:4222"
DEFAULT_PORTS = {"postgresql": 5432, "postgres": 5432, "redis": 6379, "rediss": 6379, "nats": 4222}


def postgres_url() -> str:
    """`CHATCORE_TEST_POSTGRES_URL`, default a local server's database `test`."""
    return os.environ.get("CHATCORE_TEST_POSTGRES_URL", POSTGRES_URL)


def redis_url() -> str:
    """`CHATCORE_TEST_REDIS_URL`, default a local server's database 0."""
    return os.environ.get("CHATCORE_TEST_REDIS_URL", REDIS_URL)


def nats_url() -> str:
    """`CHATCORE_TEST_NATS_URL`, default a local server."""
    return os.environ.get("CHATCORE_TEST_NATS_URL", NATS_URL)


def services_required() -> bool:
    """True when a missing service must fail tests (`CHATCORE_REQUIRE_SERVICES=1`)."""
    return os.environ.get("CHATCORE_REQUIRE_SERVICES", "").strip().lower() in ("1", "true", "yes")


def require_service(name: str, host: str, port: int) -> None:
    """Skip the calling test (or fail it, see `services_required`) unless host:port accepts
    a TCP connection within 1 second."""
    import pytest  # only tests call this; chatcore itself does not need pytest

    try:
        with socket.create_connection((host, port), timeout=1.0):
            return
    except OSError as exc:
        reason = f"{name} not reachable at {host}:{port} ({exc.strerror or exc})"
    if services_required():
        pytest.fail(f"{reason}; CHATCORE_REQUIRE_SERVICES=1 requires it")
    pytest.skip(f"{reason}; start it or set the URL's environment variable")


def require_url(name: str, url: str) -> None:
    """`require_service` for the host and port of `url` (scheme's default port if absent)."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0].lower()
    require_service(name, parts.hostname or "127.0.0.1", parts.port or DEFAULT_PORTS.get(scheme, 0))


def unique_name(prefix: str = "t") -> str:
    """A fresh lower-case identifier such as `t_3f9a0c1b2d4e`: per-test schemas, key prefixes,
    subjects. Valid as an SQL identifier when `prefix` is."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@contextmanager
def postgres_storage_section(prefix: str = "e2e") -> Iterator[dict[str, Any]]:
    """A `[storage]` section on the test PostgreSQL server, in a fresh schema (named
    `prefix_...`, not created: the storage or a test makes it) dropped at the end. Skips when
    PostgreSQL is absent (fails with CHATCORE_REQUIRE_SERVICES=1)."""
    url = postgres_url()
    require_url("PostgreSQL", url)
    schema = unique_name(prefix)
    try:
        yield {"url": url, "schema": schema}
    finally:
        asyncio.run(postgres_fetch(url, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


async def postgres_fetch(url: str, sql: str, *args: Any) -> list[Any]:
    """Run one statement on its own connection to `url`; its rows (for tests that look at
    the database from outside the storage)."""
    import asyncpg  # the `postgres` extra; only needed when PostgreSQL is there

    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()
