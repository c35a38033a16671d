"""The server serves the browser app: at its mount path, with a strict policy, cacheable and
compressed, or not at all when turned off. The app's own behaviour is in the other modules."""

from __future__ import annotations

import gzip
from pathlib import Path

import httpx
import pytest

from chatcore.testing.server import ServerProcess, start_server
from chatcore_webapp.assets import STATIC, load_assets, load_release
from chatcore_webapp.serving import content_security_policy

#: What the issue allows the page's own script and styles, gzip-compressed.
BUDGET_BYTES = 150 * 1024


def test_the_page_is_served_at_the_root_with_a_strict_policy(webapp_server: ServerProcess) -> None:
    page = httpx.get(webapp_server.base_url + "/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    # The page points at the release's copies of its style sheet and modules.
    release = load_release()
    assert f'<script type="module" src="{release.prefix}js/main.js">' in page.text
    assert f'<link rel="stylesheet" href="{release.prefix}css/app.css">' in page.text
    assert 'src="js/' not in page.text and 'href="css/' not in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "'unsafe-inline'" not in policy
    assert "style-src 'self';" in policy and "'unsafe-eval'" not in policy
    assert "frame-ancestors 'none'" in policy
    # The WebSocket is on another port: the policy names its origin, /info's ws_url.
    ws_url = httpx.get(webapp_server.api + "/info").json()["ws_url"]
    assert f"connect-src 'self' {ws_url}" in policy
    assert page.headers["x-content-type-options"] == "nosniff"


def test_every_file_has_its_type_an_etag_and_a_gzip_copy(webapp_server: ServerProcess) -> None:
    with httpx.Client(base_url=webapp_server.base_url) as http:
        script = http.get("/js/main.js", headers={"Accept-Encoding": "gzip"})
        assert script.status_code == 200
        assert script.headers["content-type"] == "text/javascript; charset=utf-8"
        assert script.headers["content-encoding"] == "gzip"
        assert script.content == (STATIC / "js" / "main.js").read_bytes()  # httpx unpacked it
        again = http.get("/js/main.js", headers={"If-None-Match": script.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        style = http.get("/css/app.css", headers={"Accept-Encoding": "identity"})
        assert style.headers["content-type"] == "text/css; charset=utf-8"
        assert "content-encoding" not in style.headers
        assert style.headers["cache-control"] == "no-cache"


def test_a_releases_files_are_cached_for_good_the_rest_revalidated(
    webapp_server: ServerProcess,
) -> None:
    prefix = load_release().prefix
    with httpx.Client(base_url=webapp_server.base_url) as http:
        versioned = http.get(f"/{prefix}js/engine/client.js")
        assert versioned.status_code == 200
        assert versioned.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert versioned.content == (STATIC / "js" / "engine" / "client.js").read_bytes()
        for path in ("/", "/index.html", "/sw.js", "/js/engine/client.js"):
            assert http.get(path).headers["cache-control"] == "no-cache", path
        # Only the current release, and never the page under it (it would point one level on).
        assert http.get(f"/{prefix}index.html").status_code == 404
        assert http.get("/v/0123456789abcdef/js/main.js").status_code == 404


def test_files_outside_the_app_are_not_served(webapp_server: ServerProcess) -> None:
    with httpx.Client(base_url=webapp_server.base_url) as http:
        for path in ("/js/../../__init__.py", "/__init__.py", "/settings.py", "/nothing.js"):
            answer = http.get(path)
            assert answer.status_code == 404, path
            assert answer.json()["error"]["code"] == "not_found"


def test_the_app_is_left_out_of_the_openapi_document(webapp_server: ServerProcess) -> None:
    paths = httpx.get(webapp_server.api + "/openapi.json").json()["paths"]
    assert "/api/v1/info" in paths
    served = ["/", *("/" + asset.path for asset in load_assets())]
    assert not [path for path in served if path in paths]


def test_the_app_mounts_elsewhere_or_not_at_all(tmp_path: Path) -> None:
    with start_server(tmp_path / "mounted", {"webapp": {"path": "/chat/"}}) as server:
        with httpx.Client(base_url=server.base_url) as http:
            assert http.get("/chat/").status_code == 200
            assert http.get("/chat/js/main.js").status_code == 200
            assert http.get("/").status_code == 404
    with start_server(tmp_path / "off", {"webapp": {"enabled": False}}) as server:
        assert httpx.get(server.base_url + "/").status_code == 404
        assert httpx.get(server.api + "/info").status_code == 200


@pytest.mark.parametrize("path", ["/api", "/api/v1/x", "chat", "/a b", "/../x"])
def test_a_mount_path_that_cannot_work_is_a_config_error(path: str) -> None:
    from pydantic import ValidationError

    from chatcore_webapp.settings import WebAppSettings

    with pytest.raises(ValidationError):
        WebAppSettings(path=path)


def test_the_policy_names_the_websockets_origin_not_its_path() -> None:
    policy = content_security_policy("wss://chat.example.com/ws")
    assert "connect-src 'self' wss://chat.example.com;" in policy


def test_the_pages_own_script_and_styles_fit_the_budget() -> None:
    packed = sum(
        len(gzip.compress(asset.body))
        for asset in load_assets()
        if asset.path.endswith((".js", ".css", ".html"))
    )
    assert packed < BUDGET_BYTES, f"{packed} bytes gzip-compressed"


def test_any_changed_file_makes_a_new_release(tmp_path: Path) -> None:
    (tmp_path / "js").mkdir()
    (tmp_path / "index.html").write_text('<script type="module" src="js/a.js"></script>')
    (tmp_path / "js" / "a.js").write_text("import './b.js';")
    (tmp_path / "js" / "b.js").write_text("export const x = 1;")
    first = load_release(tmp_path)
    (page,) = [asset for asset in first.assets if asset.path == "index.html"]
    assert page.body.decode() == f'<script type="module" src="v/{first.version}/js/a.js"></script>'
    assert load_release(tmp_path).version == first.version
    (tmp_path / "js" / "b.js").write_text("export const x = 2;")
    assert load_release(tmp_path).version != first.version
