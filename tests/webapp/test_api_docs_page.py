"""The API docs page at /api/v1/docs: Swagger UI served from the package (no CDN), on this
server's OpenAPI document. Over HTTP: the page and its files come from our origin, with their
types, ETags and gzip. In Chromium: the page renders the list of operations while every request
to another origin is refused, so it works offline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from chatcore.testing.server import ServerProcess

pytestmark = pytest.mark.e2e

DOCS = "/api/v1/docs"


def test_the_page_and_its_files_are_served_from_our_origin(webapp_server: ServerProcess) -> None:
    with httpx.Client(base_url=webapp_server.base_url, timeout=10) as http:
        page = http.get(DOCS)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "default-src 'none'" in page.headers["content-security-policy"]
        # Only relative URLs: nothing comes from a CDN.
        assert "http://" not in page.text and "https://" not in page.text
        assert 'src="docs/swagger-ui-bundle.js"' in page.text

        for name, kind in (
            ("swagger-ui-bundle.js", "text/javascript"),
            ("swagger-ui.css", "text/css"),
            ("docs.js", "text/javascript"),
            ("LICENSE", "text/plain"),
        ):
            reply = http.get(f"{DOCS}/{name}", headers={"Accept-Encoding": "gzip"})
            assert reply.status_code == 200, name
            assert reply.headers["content-type"].startswith(kind), name
            assert reply.content, name
            again = http.get(f"{DOCS}/{name}", headers={"If-None-Match": reply.headers["etag"]})
            assert again.status_code == 304, name
        bundle = http.get(f"{DOCS}/swagger-ui-bundle.js", headers={"Accept-Encoding": "gzip"})
        assert bundle.headers["content-encoding"] == "gzip"
        assert b"SwaggerUIBundle" in bundle.content  # httpx decompressed it
        assert "Apache License" in http.get(f"{DOCS}/LICENSE").text

        missing = http.get(f"{DOCS}/secrets.txt")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"
        assert http.get(f"{DOCS}/..%2Fsettings.py").status_code == 404

        # Not an API operation: the page and its files stay out of the OpenAPI document.
        paths = http.get("/api/v1/openapi.json").json()["paths"]
        assert not [path for path in paths if path.startswith(DOCS)]


def test_the_page_renders_the_operations_offline(
    new_page: Callable[..., Any], webapp_server: ServerProcess
) -> None:
    page = new_page()
    ours = urlsplit(webapp_server.base_url).netloc
    elsewhere: list[str] = []
    asked: list[str] = []

    def only_ours(route: Any) -> None:
        url = route.request.url
        if urlsplit(url).netloc == ours:
            asked.append(urlsplit(url).path)
            route.continue_()
        else:  # no network beyond this server: as offline as the page can be tested
            elsewhere.append(url)
            route.abort()

    complaints: list[str] = []  # a style or script the page's policy refused shows up here
    page.on("console", lambda m: complaints.append(m.text) if m.type == "error" else None)
    page.route("**/*", only_ours)
    page.goto(DOCS)
    operations = page.locator(".opblock")
    operations.first.wait_for()
    assert operations.count() >= 20
    login = page.locator(".opblock-summary-path", has_text="/api/v1/auth/login")
    assert login.count() == 1
    assert login.first.is_visible()
    assert "/api/v1/openapi.json" in asked
    assert elsewhere == []
    assert complaints == []
