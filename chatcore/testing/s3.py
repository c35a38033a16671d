"""A real S3 API for tests: moto's standalone server, on a free loopback port.

    with moto_server() as endpoint:
        storage_options = s3_options(endpoint)
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from chatcore.testing.server import free_port

__all__ = ["MOTO_START_SECONDS", "moto_server", "s3_options"]

MOTO_START_SECONDS = 20


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's S3 server in a process of its own while the block runs; yields its endpoint URL.
    Needs `moto[server]` (the test extra)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + MOTO_START_SECONDS
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto's S3 server did not start") from None
                time.sleep(0.05)  # a process we do not control; bounded by the deadline
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def s3_options(endpoint: str) -> dict[str, Any]:
    """`[media] storage_options` for the S3 API at `endpoint`."""
    # A region other than us-east-1: creating a bucket there takes a location constraint, as
    # on AWS itself.
    return {
        "endpoint_url": endpoint,
        "key": "test-key",
        "secret": "test-secret",
        "client_kwargs": {"region_name": "eu-central-1"},
    }
