"""A backend out of reach is one line and a non-zero exit, for `chatcore serve` and for admin
commands alike: no traceback. Run as real processes; "out of reach" is a closed loopback port."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import chatcore_cli, node_config, one_error_line

from chatcore.testing.s3 import s3_options
from chatcore.testing.server import free_port

COMMANDS = [("serve",), ("user", "list")]


def migrated(tmp_path: Path, **extra: object) -> Path:
    """A node config whose SQLite database is at head, so admin commands get to the backend
    under test (they refuse a database that is not)."""
    config = node_config(tmp_path, **extra)
    upgraded = chatcore_cli("db", "upgrade", "--config", str(config))
    assert upgraded.returncode == 0, upgraded.stderr
    return config


@pytest.mark.parametrize("args", COMMANDS)
@pytest.mark.parametrize(
    ("scheme", "service", "where"),
    [("redis", "Redis", "127.0.0.1:{port}"), ("nats", "NATS", "nats://127.0.0.1:{port}")],
)
def test_an_unreachable_broker_is_one_line(tmp_path, args, scheme, service, where):
    port = free_port()
    config = migrated(tmp_path, broker={"url": f"{scheme}://127.0.0.1:{port}"})
    line = one_error_line(chatcore_cli(*args, "--config", str(config)))
    expected = f"error: cannot connect to {service} at {where.format(port=port)}"
    assert line == f"{expected}: Connection refused"


@pytest.mark.parametrize("args", [*COMMANDS, ("db", "upgrade")])
def test_an_unreachable_postgres_is_one_line(tmp_path, args):
    port = free_port()
    storage = {"url": f"postgresql+asyncpg://postgres@127.0.0.1:{port}/test"}
    config = node_config(tmp_path, storage=storage)
    line = one_error_line(chatcore_cli(*args, "--config", str(config)))
    where = f"PostgreSQL at 127.0.0.1:{port}/test"
    assert line == f"error: cannot connect to {where}: Connection refused"


@pytest.mark.parametrize("args", COMMANDS)
def test_an_unreachable_s3_endpoint_is_one_line(tmp_path, args):
    pytest.importorskip("s3fs", reason="s3fs is in the test extra")
    endpoint = f"http://127.0.0.1:{free_port()}"
    config = migrated(tmp_path, media={"url": "s3://chat-media/prefix"})
    env = {"CHATCORE_MEDIA__STORAGE_OPTIONS": json.dumps(s3_options(endpoint))}
    line = one_error_line(chatcore_cli(*args, "--config", str(config), env=env))
    assert line == (
        f"error: cannot connect to the media store at {endpoint} "
        "(media.url 's3://chat-media/prefix'): Connection refused"
    )


@pytest.mark.parametrize("args", COMMANDS)
def test_a_missing_bucket_that_cannot_be_made_is_one_line(tmp_path, moto_endpoint, args):
    # "ab" is too short a bucket name: S3 refuses to create it, as it refuses a bucket the
    # credentials may not create.
    config = migrated(tmp_path, media={"url": "s3://ab/prefix"})
    env = {"CHATCORE_MEDIA__STORAGE_OPTIONS": json.dumps(s3_options(moto_endpoint))}
    line = one_error_line(chatcore_cli(*args, "--config", str(config), env=env))
    assert line == (
        "error: media.url 's3://ab/prefix' cannot be used: The specified bucket is not valid."
    )


def test_a_rest_port_in_use_is_one_line(tmp_path, busy_port):
    config = node_config(tmp_path, server={"port": busy_port}, websocket={"port": free_port()})
    line = one_error_line(chatcore_cli("serve", "--config", str(config)))
    assert line == f"error: cannot listen on 127.0.0.1:{busy_port}: address in use"


def test_a_websocket_port_in_use_is_one_line(tmp_path, busy_port):
    config = node_config(tmp_path, server={"port": free_port()}, websocket={"port": busy_port})
    line = one_error_line(chatcore_cli("serve", "--config", str(config)))
    assert line == (
        f"error: the WebSocket server cannot listen on 127.0.0.1:{busy_port} "
        "([websocket] host/port): Address already in use"
    )
