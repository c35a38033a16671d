"""`GET /api/v1/push/webpush`: the VAPID public key a browser subscribes with, from a real
`chatcore serve` process (docs/protocol.md, "Push devices"; docs/push.md, "Push: Web Push")."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from chatcore.testing.server import ServerProcess, start_server
from chatcore_webpush.vapid import (
    b64url_decode,
    generate_private_key,
    private_key_text,
    public_key_text,
)

pytestmark = pytest.mark.e2e

SUBJECT = "mailto:ops@chat.example"


@pytest.fixture(scope="module")
def vapid_key() -> ec.EllipticCurvePrivateKey:
    return generate_private_key()


@pytest.fixture(scope="module")
def with_key(
    tmp_path_factory: pytest.TempPathFactory, vapid_key: ec.EllipticCurvePrivateKey
) -> Iterator[ServerProcess]:
    webpush = {"vapid_private_key": private_key_text(vapid_key), "vapid_subject": SUBJECT}
    with start_server(tmp_path_factory.mktemp("webpush-on"), {"webpush": webpush}) as server:
        yield server


def test_key_is_the_public_point_of_the_configured_private_key(
    with_key: ServerProcess, vapid_key: ec.EllipticCurvePrivateKey
) -> None:
    response = httpx.get(with_key.api + "/push/webpush")  # no Authorization: no auth needed
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"application_server_key": public_key_text(vapid_key)}
    point = b64url_decode(response.json()["application_server_key"])
    # What PushManager.subscribe takes: an uncompressed P-256 point, unpadded base64url.
    assert len(point) == 65 and point[0] == 4
    assert "=" not in response.json()["application_server_key"]


def test_key_route_is_documented(with_key: ServerProcess) -> None:
    paths = httpx.get(with_key.api + "/openapi.json").json()["paths"]
    operation = paths["/api/v1/push/webpush"]["get"]
    assert "security" not in operation or operation["security"] in ([], [{}])
    assert "VAPID" in operation["summary"]


def test_only_get(with_key: ServerProcess) -> None:
    response = httpx.post(with_key.api + "/push/webpush", json={})
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "bad_request"


def test_pem_key_gives_the_same_public_key(
    tmp_path: Path, vapid_key: ec.EllipticCurvePrivateKey
) -> None:
    from cryptography.hazmat.primitives import serialization

    pem = vapid_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    # A PEM key spans lines, which the harness's TOML writer does not write: the environment.
    env = {"CHATCORE_WEBPUSH__VAPID_PRIVATE_KEY": pem}
    with start_server(tmp_path, {"webpush": {"vapid_subject": SUBJECT}}, env) as server:
        response = httpx.get(server.api + "/push/webpush")
    assert response.json() == {"application_server_key": public_key_text(vapid_key)}


def test_not_found_while_web_push_is_off(tmp_path: Path) -> None:
    with start_server(tmp_path) as server:
        response = httpx.get(server.api + "/push/webpush")
        devices = httpx.get(server.api + "/push/devices")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "not_found"
    assert "Web Push" in error["message"]
    assert devices.status_code == 401  # the device routes are untouched (and still need auth)
