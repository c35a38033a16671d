"""The REST API with a configured server: plugin routes, trusted proxies, brute-force limits,
graceful stop and a port that cannot be bound. Real `chatcore serve` processes, over HTTP.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatcore.testing.rest import assert_error
from chatcore.testing.server import ServerProcess, start_server
from chatcore.testing.users import PASSWORD, new_user, unique_username

pytestmark = pytest.mark.e2e

API = "/api/v1"
PLUGIN = "rest_probe_plugin"

#: A plugin written to a temporary folder and named in the config's `plugins`: routes that
#: answer what a handler sees of its request, and every kind of answer a handler can give.
PLUGIN_SOURCE = '''
"""Routes for the REST tests."""

import asyncio
import os
from pathlib import Path

from chatcore.errors import ChatError
from chatcore.hookspecs import hookimpl
from chatcore.routes import Response, Route


async def echo(request):
    body = await request.json() if request.method == "POST" else None
    return {
        "method": request.method,
        "path_params": dict(request.path_params),
        "query": dict(request.query),
        "probe_header": request.headers.get("x-PROBE"),
        "has_probe_header": "X-Probe" in request.headers,
        "user_id": request.identity.user_id if request.identity else None,
        "address": request.remote_address,
        "body": body,
        "user_count": len(await request.app.storage.list_users(1000)),
    }


async def created(request):
    return Response({"made": True}, status=201, headers={"X-Made": "yes"})


async def nothing(request):
    return Response(None, status=204)


async def refuse(request):
    raise ChatError("forbidden", "Probes may not do this.")


async def limited(request):
    raise ChatError("rate_limited", "Slow down.", retry_after_ms=2500)


async def crash(request):
    raise RuntimeError("secret detail 8c1f")


async def slow(request):
    Path(os.environ["PROBE_MARKER"]).write_text("started")
    await asyncio.sleep(1.0)
    return {"slow": "done"}


@hookimpl
def chatcore_register_routes(app):
    return [
        Route("/probe/{thing}/{other}", echo, methods=("GET", "POST"), summary="Echo the request."),
        Route("//probe-root", echo, auth=False, summary="Echo at the server root."),
        Route("probe-open/{thing}", echo, auth=False),
        Route("/probe-created", created, methods=("POST",), auth=False),
        Route("/probe-nothing", nothing, methods=("DELETE",), auth=False),
        Route("/probe-refuse", refuse, auth=False),
        Route("/probe-limited", limited, auth=False),
        Route("/probe-crash", crash, auth=False),
        Route("/probe-slow", slow, auth=False),
    ]
'''

LIMITS = {"login_failures_per_username": 3, "login_attempts_per_address": 6}


def plugin_env(folder: Path) -> dict[str, str]:
    """Write the plugin into `folder` and return the environment that lets a server import it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{PLUGIN}.py").write_text(PLUGIN_SOURCE)
    path = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, "PROBE_MARKER": str(folder / "slow-started")}


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with the probe plugin, 127.0.0.1 as a trusted proxy, and low login limits."""
    folder = tmp_path_factory.mktemp("probe")
    overrides = {
        "plugins": [PLUGIN],
        "rest": {"trusted_proxies": ["127.0.0.1"]},
        "auth": LIMITS,
    }
    with start_server(folder / "node", overrides, plugin_env(folder / "plugin")) as running:
        yield running


@pytest.fixture(scope="module")
def client(probe: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=probe.base_url, timeout=10) as http:
        yield http


def login(
    client: httpx.Client, username: str, password: str = PASSWORD, address: str | None = None
) -> httpx.Response:
    headers = {"X-Forwarded-For": address} if address else {}
    body = {"username": username, "password": password}
    return client.post(f"{API}/auth/login", json=body, headers=headers)


# --- plugin routes -----------------------------------------------------------------------------


def test_plugin_route_sees_the_request(client: httpx.Client, probe: ServerProcess) -> None:
    user = new_user(probe.api)
    headers = {"Authorization": f"Bearer {user.access_token}", "X-Probe": "hello"}
    reply = client.get(
        f"{API}/probe/a%20b/2", params=[("x", "1"), ("x", "2"), ("y", "z")], headers=headers
    )
    assert reply.status_code == 200, reply.text
    seen = reply.json()
    assert seen["method"] == "GET"
    assert seen["path_params"] == {"thing": "a b", "other": "2"}
    assert seen["query"] == {"x": "1", "y": "z"}
    assert seen["probe_header"] == "hello" and seen["has_probe_header"] is True
    assert seen["user_id"] == user.id
    assert seen["address"] == "127.0.0.1"
    assert seen["user_count"] >= 1

    reply = client.post(f"{API}/probe/p/q", headers=headers, json={"nested": [1, {"a": None}]})
    assert reply.status_code == 200
    assert reply.json()["body"] == {"nested": [1, {"a": None}]}

    # Not declared as JSON, or not valid JSON: the handler's `json()` answers bad_request.
    bad = client.post(f"{API}/probe/p/q", headers=headers, content=b'{"a": 1}')
    assert_error(bad, 400, "bad_request")
    bad = client.post(
        f"{API}/probe/p/q", headers={**headers, "Content-Type": "application/json"}, content=b"{"
    )
    assert_error(bad, 400, "bad_request")


def test_plugin_route_requires_auth_unless_declared(client: httpx.Client) -> None:
    reply = client.get(f"{API}/probe/a/b")
    assert_error(reply, 401, "unauthorized")
    assert reply.headers["WWW-Authenticate"] == "Bearer"
    reply = client.get(f"{API}/probe/a/b", headers={"Authorization": "Bearer nonsense"})
    assert_error(reply, 401, "unauthorized")

    reply = client.get(f"{API}/probe-open/thing")
    assert reply.status_code == 200
    assert reply.json()["user_id"] is None
    assert reply.json()["path_params"] == {"thing": "thing"}


def test_plugin_route_at_the_server_root(client: httpx.Client) -> None:
    reply = client.get("/probe-root")
    assert reply.status_code == 200
    assert reply.json()["path_params"] == {}
    assert_error(client.get(f"{API}/probe-root"), 404, "not_found")


def test_plugin_route_answers(client: httpx.Client) -> None:
    reply = client.post(f"{API}/probe-created")
    assert reply.status_code == 201
    assert reply.json() == {"made": True}
    assert reply.headers["X-Made"] == "yes"

    reply = client.delete(f"{API}/probe-nothing")
    assert reply.status_code == 204
    assert reply.content == b""

    assert_error(client.get(f"{API}/probe-created"), 405, "bad_request")
    assert "POST" in client.get(f"{API}/probe-created").headers["Allow"]


def test_plugin_route_errors(client: httpx.Client, probe: ServerProcess) -> None:
    assert assert_error(client.get(f"{API}/probe-refuse"), 403, "forbidden") == (
        "Probes may not do this."
    )
    reply = client.get(f"{API}/probe-limited")
    assert_error(reply, 429, "rate_limited")
    assert reply.headers["Retry-After"] == "3"  # 2.5 s, rounded up

    reply = client.get(f"{API}/probe-crash")
    message = assert_error(reply, 500, "internal")
    assert "secret" not in reply.text and "RuntimeError" not in reply.text
    assert "try again" in message
    # The operator sees what happened.
    log = probe.output()
    assert "secret detail 8c1f" in log and "Traceback" in log


def test_plugin_routes_are_documented(client: httpx.Client) -> None:
    doc = client.get(f"{API}/openapi.json").json()
    paths = doc["paths"]
    probe = paths["/api/v1/probe/{thing}/{other}"]
    assert set(probe) == {"get", "post"}
    assert probe["get"]["summary"] == "Echo the request."
    assert probe["get"]["security"] == [{"bearer": []}]
    assert {p["name"] for p in probe["get"]["parameters"]} == {"thing", "other"}
    assert paths["/probe-root"]["get"]["summary"] == "Echo at the server root."
    assert "security" not in paths["/probe-root"]["get"]
    assert "/api/v1/probe-open/{thing}" in paths
    assert "delete" in paths["/api/v1/probe-nothing"]
    ids = [op["operationId"] for item in paths.values() for op in item.values()]
    assert len(ids) == len(set(ids))
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(doc)


# --- the client's address --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("forwarded", "address"),
    [
        (None, "127.0.0.1"),
        ("203.0.113.7", "203.0.113.7"),
        ("198.51.100.1, 203.0.113.7", "203.0.113.7"),  # the hop the proxy added counts
        ("198.51.100.1, 127.0.0.1", "198.51.100.1"),  # trusted hops are skipped
        ("2001:db8::1", "2001:db8::1"),
        ("not-an-address", "127.0.0.1"),
    ],
)
def test_trusted_proxy_forwards_the_client_address(
    client: httpx.Client, forwarded: str | None, address: str
) -> None:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    assert client.get("/probe-root", headers=headers).json()["address"] == address


# --- brute-force protection -------------------------------------------------------------------


def test_repeated_wrong_passwords_lock_the_username(client: httpx.Client) -> None:
    username = unique_username("victim")
    assert (
        client.post(
            f"{API}/auth/register", json={"username": username, "password": PASSWORD}
        ).status_code
        == 201
    )
    for _ in range(LIMITS["login_failures_per_username"]):
        assert_error(login(client, username, "wrong guess", "192.0.2.10"), 401, "unauthorized")
    reply = login(client, username, "wrong guess", "192.0.2.10")
    assert_error(reply, 429, "rate_limited")
    assert int(reply.headers["Retry-After"]) >= 1
    # Locked for everyone, the right password included, until the bucket refills.
    assert_error(login(client, username, PASSWORD, "192.0.2.11"), 429, "rate_limited")
    # Other users are not affected.
    other = unique_username()
    client.post(f"{API}/auth/register", json={"username": other, "password": PASSWORD})
    assert login(client, other, PASSWORD, "192.0.2.12").status_code == 200


def test_address_limit_uses_the_forwarded_address(client: httpx.Client) -> None:
    for _ in range(LIMITS["login_attempts_per_address"]):
        assert_error(
            login(client, unique_username("ghost"), address="192.0.2.20"), 401, "unauthorized"
        )
    reply = login(client, unique_username("ghost"), address="192.0.2.20")
    assert_error(reply, 429, "rate_limited")
    assert int(reply.headers["Retry-After"]) >= 1
    # Another client behind the same proxy still gets in.
    username = unique_username()
    client.post(f"{API}/auth/register", json={"username": username, "password": PASSWORD})
    assert login(client, username, address="192.0.2.21").status_code == 200


# --- lifecycle ---------------------------------------------------------------------------------


def test_stop_lets_requests_in_flight_finish(
    server_factory: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    env = plugin_env(tmp_path / "plugin")
    server = server_factory(env=env, plugins=[PLUGIN])
    marker = Path(env["PROBE_MARKER"])
    answer: dict[str, Any] = {}

    def slow_request() -> None:
        try:
            answer["reply"] = httpx.get(f"{server.api}/probe-slow", timeout=20)
        except httpx.HTTPError as exc:
            answer["error"] = exc

    thread = threading.Thread(target=slow_request)
    thread.start()
    deadline = time.monotonic() + 10
    while not marker.exists():  # the handler runs in the server process: poll for its sign
        assert time.monotonic() < deadline, "the slow request never reached its handler"
        time.sleep(0.02)
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    thread.join(20)
    assert "error" not in answer, answer.get("error")
    assert answer["reply"].status_code == 200
    assert answer["reply"].json() == {"slow": "done"}
    assert server.process.wait(15) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.base_url + "/healthz", timeout=2)


def test_a_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(RuntimeError) as failure:
            with start_server(tmp_path, {"server": {"port": port}}):
                pass
    output = str(failure.value)
    assert f"cannot listen on 127.0.0.1:{port}: address in use" in output
    assert "Traceback" not in output
