"""The REST plugin's own parts: the client address rule, route paths, and nodes built in
process on real loopback sockets (port 0, several apps in one process, start-up failures)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatcore import routes
from chatcore.hookspecs import hookimpl
from chatcore.routes import Route
from chatcore.server.app import App, StartupError
from chatcore.settings import ConfigError
from chatcore.testing.server import server_config
from chatcore_rest.addresses import client_address
from chatcore_rest.plugin_routes import RouteError, quart_rule
from chatcore_rest.settings import RestSettings
from chatcore_rest.transport import RestTransport

# --- the client's address ----------------------------------------------------------------------

TRUSTED = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "::1/128")]


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.5", ["198.51.100.1"], "203.0.113.5"),  # not a proxy: the header is ignored
        ("10.1.2.3", [], "10.1.2.3"),
        ("10.1.2.3", ["198.51.100.1"], "198.51.100.1"),
        ("10.1.2.3", ["198.51.100.1, 10.9.9.9"], "198.51.100.1"),
        ("10.1.2.3", ["192.0.2.66, 198.51.100.1"], "198.51.100.1"),  # a client cannot pick
        ("10.1.2.3", ["192.0.2.66", "198.51.100.1"], "198.51.100.1"),  # several headers
        ("10.1.2.3", ["10.4.4.4, 10.5.5.5"], "10.4.4.4"),  # all trusted: the farthest
        ("10.1.2.3", ["garbage, 198.51.100.1"], "198.51.100.1"),
        ("10.1.2.3", ["garbage"], "10.1.2.3"),
        ("10.1.2.3", ["198.51.100.1:4711"], "198.51.100.1"),
        ("10.1.2.3", ["[2001:db8::7]:4711"], "2001:db8::7"),
        ("::1", ["2001:db8::7"], "2001:db8::7"),
        ("::ffff:10.1.2.3", ["198.51.100.1"], "198.51.100.1"),
        (None, ["198.51.100.1"], None),
    ],
)
def test_client_address(peer: str | None, forwarded: list[str], expected: str | None) -> None:
    assert client_address(peer, forwarded, TRUSTED) == expected


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    assert client_address("127.0.0.1", ["198.51.100.1"], []) == "127.0.0.1"


# --- route paths -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "rule"),
    [
        ("/hello/{name}", "/api/v1/hello/<name>"),
        ("hello", "/api/v1/hello"),
        ("//hooks/{id}/x", "/hooks/<id>/x"),
        ("/a/{b}/{c_2}", "/api/v1/a/<b>/<c_2>"),
    ],
)
def test_route_paths(path: str, rule: str) -> None:
    assert quart_rule(path) == rule


@pytest.mark.parametrize("path", ["/a/{b", "/a/{1x}", "/a/<b>", "/a b", "/a/{b}}", "/{a}/{a}"])
def test_bad_route_paths(path: str) -> None:
    with pytest.raises(RouteError):
        quart_rule(path)


# --- nodes in process -------------------------------------------------------------------------


def node_config(folder: Path, **extra: Any) -> dict[str, Any]:
    """A node listening on port 0, without the WebSocket transport (not under test here)."""
    config = server_config(folder)
    del config["websocket"]
    config["server"]["port"] = 0
    config["disabled_plugins"] = ["chatcore_ws"]
    config.update(extra)
    return config


def rest_of(app: App) -> RestTransport:
    (transport,) = [t for t in app.transports if isinstance(t, RestTransport)]
    return transport


def test_two_nodes_in_one_process(tmp_path: Path) -> None:
    async def main() -> None:
        first = App.from_config(None, overrides=node_config(tmp_path / "a"))
        second = App.from_config(None, overrides=node_config(tmp_path / "b"))
        async with first, second:
            urls = [rest_of(first).url, rest_of(second).url]
            assert all(url.startswith("http://127.0.0.1:") for url in urls)
            assert not any(url.endswith(":0") for url in urls)
            assert urls[0] != urls[1]
            async with httpx.AsyncClient(timeout=5) as http:
                for url in urls:
                    assert (await http.get(f"{url}/healthz")).json() == {"status": "ok"}
                info = (await http.get(f"{urls[0]}/api/v1/info")).json()
                assert info["ws_url"] is None  # no WebSocket transport on this node
                for _ in range(3):
                    await http.get(f"{urls[0]}/api/v1/nowhere")
                # Each node counts in its own registry.
                text_a = (await http.get(f"{urls[0]}/metrics")).text
                text_b = (await http.get(f"{urls[1]}/metrics")).text
            line = 'chatcore_http_requests_total{method="GET",route="unmatched",status="404"}'
            assert f"{line} 3.0" in text_a
            assert line not in text_b
            ports = [rest_of(app).port for app in (first, second)]
        # Stopped: the ports are free again.
        for port in ports:
            with socket.socket() as probe:
                assert probe.connect_ex(("127.0.0.1", port)) != 0

    asyncio.run(main())


def test_a_node_can_start_again(tmp_path: Path) -> None:
    async def main() -> None:
        app = App.from_config(None, overrides=node_config(tmp_path))
        for _ in range(2):
            async with app:
                url = rest_of(app).url
                async with httpx.AsyncClient(timeout=5) as http:
                    assert (await http.get(f"{url}/healthz")).status_code == 200

    asyncio.run(main())


def test_public_url_is_the_transport_url(tmp_path: Path) -> None:
    async def main() -> None:
        config = node_config(tmp_path)
        config["server"]["public_url"] = "https://chat.example.com/"
        async with App.from_config(None, overrides=config) as app:
            assert rest_of(app).url == "https://chat.example.com"

    asyncio.run(main())


def test_app_rest_url_is_where_the_rest_api_answers_while_started(tmp_path: Path) -> None:
    async def main() -> None:
        app = App.from_config(None, overrides=node_config(tmp_path))
        assert app.rest_url is None  # nothing listens yet
        async with app:
            assert app.rest_url == rest_of(app).url
            async with httpx.AsyncClient(timeout=5) as http:
                info = await http.get(f"{app.rest_url}/api/v1/info")
            assert info.json()["name"] == "chatcore"
        assert app.rest_url is None

    asyncio.run(main())


class ClashingPlugin:
    @hookimpl
    def chatcore_register_routes(self, app: App) -> list[Route]:
        async def mine(request: Any) -> dict[str, str]:
            return {}

        return [Route("/users/{id}", mine)]


class BadPathPlugin:
    @hookimpl
    def chatcore_register_routes(self, app: App) -> list[Route]:
        async def mine(request: Any) -> dict[str, str]:
            return {}

        return [Route("/broken/{", mine)]


@pytest.mark.parametrize(
    ("plugin", "message"),
    [
        (ClashingPlugin(), "GET /api/v1/users/<id> is already served"),
        (BadPathPlugin(), "/broken/{"),
    ],
)
def test_a_bad_plugin_route_stops_start_up(tmp_path: Path, plugin: object, message: str) -> None:
    async def main() -> None:
        app = App.from_config(None, overrides=node_config(tmp_path), extra_plugins=[plugin])
        with pytest.raises(StartupError, match=message.replace("{", r"\{")):
            await app.start()

    asyncio.run(main())


class FilePlugin:
    """A route answering bytes of its own type, left out of the OpenAPI document."""

    @hookimpl
    def chatcore_register_routes(self, app: App) -> list[Route]:
        async def page(request: Any) -> routes.Response:
            return routes.Response(b"<p>hi</p>", headers={"Content-Type": "text/html"})

        async def blob(request: Any) -> routes.Response:
            return routes.Response(b"\x00\x01", status=201)

        return [
            Route("//page.html", page, auth=False, documented=False),
            Route("/blob", blob, methods=("POST",), auth=False),
        ]


def test_a_plugin_route_answers_bytes_and_may_stay_out_of_the_openapi(tmp_path: Path) -> None:
    async def main() -> None:
        app = App.from_config(None, overrides=node_config(tmp_path), extra_plugins=[FilePlugin()])
        async with app:
            async with httpx.AsyncClient(base_url=str(app.rest_url), timeout=5) as http:
                page = await http.get("/page.html")
                blob = await http.post("/api/v1/blob")
                paths = (await http.get("/api/v1/openapi.json")).json()["paths"]
        assert (page.status_code, page.headers["content-type"]) == (200, "text/html")
        assert page.content == b"<p>hi</p>"
        assert (blob.status_code, blob.content) == (201, b"\x00\x01")
        assert blob.headers["content-type"] == "application/octet-stream"
        assert "/page.html" not in paths
        assert "/api/v1/blob" in paths

    asyncio.run(main())


def test_a_port_in_use_fails_start_up_and_leaves_nothing_open(tmp_path: Path) -> None:
    async def main() -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            config = node_config(tmp_path)
            config["server"]["port"] = port
            app = App.from_config(None, overrides=config)
            with pytest.raises(
                StartupError, match=f"cannot listen on 127.0.0.1:{port}: address in use"
            ):
                await app.start()
            assert app.transports == []

    asyncio.run(main())


def test_healthz_is_unavailable_while_the_storage_is_down(tmp_path: Path) -> None:
    async def main() -> None:
        async with App.from_config(None, overrides=node_config(tmp_path)) as app:
            url = rest_of(app).url
            async with httpx.AsyncClient(timeout=10) as http:
                assert (await http.get(f"{url}/healthz")).status_code == 200
                await app.storage.close()  # the database connection is gone
                reply = await http.get(f"{url}/healthz")
            assert reply.status_code == 503
            assert reply.json()["error"]["code"] == "unavailable"
            assert sorted(reply.json()["error"]) == ["code", "message"]

    asyncio.run(main())


@pytest.mark.parametrize(
    ("key", "value"),
    [("trusted_proxies", ["not-an-address"]), ("graceful_timeout", 0), ("colour", "blue")],
)
def test_a_bad_rest_key_is_a_config_error_naming_it(key: str, value: object) -> None:
    with pytest.raises(ConfigError) as bad:
        App.from_config(None, overrides={"rest": {key: value}})
    assert any(p.startswith(f"rest.{key}") for p in bad.value.problems), bad.value.problems


def test_rest_settings_defaults() -> None:
    settings = App.from_config(None).settings.section("rest", RestSettings)
    assert settings.trusted_proxies == []
    assert settings.graceful_timeout == 5.0
