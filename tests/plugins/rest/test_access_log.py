"""The REST access log (`[rest] access_log`, docs/operations.md): off by default; when on, one
line per request, a JSON object when logs are JSON, that never holds a header, a body or a
secret query value.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatcore.logs import JsonFormatter
from chatcore.testing.server import ServerProcess, start_server
from chatcore.testing.users import PASSWORD, unique_username
from chatcore_rest.access_log import ACCESS_LOGGER, AccessLog, access_fields, redact_query

API = "/api/v1"


# --- units ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ""),
        ("limit=5&after_seq=3", "limit=5&after_seq=3"),
        ("exp=1700000000&sig=abcdef", "exp=1700000000&sig=REDACTED"),
        ("access_token=eyJ.x.y&q=hello", "access_token=REDACTED&q=hello"),
        (
            "Password=hunter2&API_KEY=k&code=1234",
            "Password=REDACTED&API_KEY=REDACTED&code=REDACTED",
        ),
        ("q=a%20b&q=c", "q=a+b&q=c"),
    ],
)
def test_secret_query_values_are_redacted(query: str, expected: str) -> None:
    assert redact_query(query) == expected
    assert redact_query(query.encode()) == expected


def test_a_line_as_text_and_as_json(caplog: pytest.LogCaptureFixture) -> None:
    fields = access_fields(
        method="GET",
        path="/api/v1/media/m1",
        query=b"sig=secret-signature&exp=9",
        status=200,
        seconds=0.01234,
        size=5120,
        remote="203.0.113.7",
        user_id="u1",
    )
    assert fields == {
        "method": "GET",
        "path": "/api/v1/media/m1?sig=REDACTED&exp=9",
        "status": 200,
        "duration_ms": 12.34,
        "bytes": 5120,
        "remote": "203.0.113.7",
        "user_id": "u1",
    }
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        AccessLog().write(fields)
    (record,) = caplog.records
    assert record.getMessage() == (
        "GET /api/v1/media/m1?sig=REDACTED&exp=9 200 12.3ms 5120B 203.0.113.7 user=u1"
    )
    entry = json.loads(JsonFormatter().format(record))
    assert entry["logger"] == ACCESS_LOGGER
    assert {key: entry[key] for key in fields} == fields
    assert "secret-signature" not in json.dumps(entry)


# --- a real server ----------------------------------------------------------------------------


def access_lines(server: ServerProcess) -> list[dict[str, Any]]:
    """The access-log entries of the server's JSON log (other lines left out)."""
    entries = []
    for line in server.output().splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("logger") == ACCESS_LOGGER:
                entries.append(entry)
    return entries


@pytest.fixture(scope="module")
def logged_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    overrides = {
        "rest": {"access_log": True},
        # The access log shows even when the rest of the log is quieter than INFO.
        "logging": {"format": "json", "level": "warning"},
    }
    with start_server(tmp_path_factory.mktemp("access"), overrides) as server:
        yield server


@pytest.mark.e2e
def test_every_request_is_one_json_line_without_secrets(logged_server: ServerProcess) -> None:
    username = unique_username()
    credentials = {"username": username, "password": PASSWORD}
    with httpx.Client(base_url=logged_server.base_url, timeout=10) as http:
        assert http.post(f"{API}/auth/register", json=credentials).status_code == 201
        tokens = http.post(f"{API}/auth/login", json=credentials).json()
        token, user_id = tokens["access_token"], tokens["user"]["id"]
        rooms = http.get(f"{API}/rooms?limit=5", headers={"Authorization": f"Bearer {token}"})
        assert rooms.status_code == 200
        info = http.get(f"{API}/info?token=leaked-token&x=1")
        assert info.status_code == 200
        refused = http.get(f"{API}/rooms", headers={"Authorization": "Bearer not-a-token"})
        assert refused.status_code == 401

    entries = access_lines(logged_server)
    by_path = {entry["path"]: entry for entry in entries}
    mine = by_path[f"{API}/rooms?limit=5"]
    assert mine["method"] == "GET"
    assert mine["status"] == 200
    assert mine["user_id"] == user_id
    assert mine["remote"] == "127.0.0.1"
    assert mine["bytes"] == len(rooms.content)
    assert isinstance(mine["duration_ms"], int | float) and mine["duration_ms"] >= 0
    assert by_path[f"{API}/info?token=REDACTED&x=1"]["user_id"] is None
    login = [e for e in entries if e["path"] == f"{API}/auth/login"]
    assert [e["status"] for e in login] == [200]
    assert any(e["path"] == f"{API}/rooms" and e["status"] == 401 for e in entries)

    log = logged_server.output()
    for secret in (token, tokens["refresh_token"], PASSWORD, "leaked-token", "not-a-token"):
        assert secret not in log
    assert "Authorization" not in log and "Bearer" not in log


@pytest.mark.e2e
def test_the_access_log_is_off_by_default(tmp_path: Path) -> None:
    with start_server(tmp_path, {"logging": {"format": "json"}}) as server:
        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            assert http.get(f"{API}/info").status_code == 200
        assert access_lines(server) == []
        assert "/api/v1/info" not in server.output()
