"""Push devices over REST, end to end: a real `chatcore serve` process, spoken to over HTTP
(docs/protocol.md, "Push devices"; the decisions are those of `chatcore.server.devices`).

One server serves the module; every test makes its own users, so none depends on another.
"""

from __future__ import annotations

import base64
import itertools
from typing import Any

import httpx
import pytest

from chatcore.server.devices import MAX_DEVICES
from chatcore.testing.rest import assert_error, ok
from chatcore.testing.users import TestUser, register_and_login

pytestmark = pytest.mark.e2e

DEVICE_KEYS = {"id", "platform", "created_ts"}
P256DH = base64.urlsafe_b64encode(b"\x04" + bytes(range(64))).decode().rstrip("=")
AUTH = base64.urlsafe_b64encode(bytes(range(16))).decode()  # padded: accepted too
_tokens = itertools.count()


@pytest.fixture
def me(client: httpx.Client) -> TestUser:
    return register_and_login(client, prefix="pusher")


def register(http: httpx.Client, by: TestUser, body: Any) -> httpx.Response:
    return http.post("/push/devices", json=body, headers=by.headers)


def listed(http: httpx.Client, of: TestUser) -> list[dict[str, Any]]:
    found = ok(http.get("/push/devices", headers=of.headers))
    assert list(found) == ["devices"], found
    devices: list[dict[str, Any]] = found["devices"]
    return devices


def fcm() -> dict[str, str]:
    return {"platform": "fcm", "token": f"fcm-token:{next(_tokens)}_A-b"}


def webpush(endpoint: str = "https://push.example.com/send/abc") -> dict[str, Any]:
    return {"platform": "webpush", "endpoint": endpoint, "keys": {"p256dh": P256DH, "auth": AUTH}}


# --- discovery and documentation --------------------------------------------------------------


def test_info_reports_push(client: httpx.Client) -> None:
    assert "push" in ok(client.get("/info"))["features"]


def test_openapi_documents_every_device_endpoint(client: httpx.Client) -> None:
    openapi = ok(client.get("/openapi.json"))
    paths = openapi["paths"]
    wanted = {
        ("post", "/api/v1/push/devices"),
        ("get", "/api/v1/push/devices"),
        ("delete", "/api/v1/push/devices/{device_id}"),
    }
    assert wanted <= {(m, p) for p, item in paths.items() for m in item}
    for method, path in wanted:
        operation = paths[path][method]
        assert operation["security"] == [{"bearer": []}]
        assert {"401", "500"} <= set(operation["responses"])
    post = paths["/api/v1/push/devices"]["post"]
    assert {"200", "201", "400", "409"} <= set(post["responses"])
    body = post["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/DeviceRequest"}
    created = post["responses"]["201"]["content"]["application/json"]["schema"]
    assert created == {"$ref": "#/components/schemas/DeviceBody"}
    schemas = openapi["components"]["schemas"]
    assert schemas["DeviceRequest"]["required"] == ["platform"]
    assert schemas["DeviceRequest"]["properties"]["platform"]["enum"] == [
        "webpush",
        "fcm",
        "apns",
        "webhook",
    ]
    assert {"204", "404"} <= set(paths["/api/v1/push/devices/{device_id}"]["delete"]["responses"])


def test_every_endpoint_needs_a_token(client: httpx.Client) -> None:
    for method, path in [
        ("POST", "/push/devices"),
        ("GET", "/push/devices"),
        ("DELETE", "/push/devices/x"),
    ]:
        assert_error(client.request(method, path, json=fcm()), 401, "unauthorized")


# --- registering ------------------------------------------------------------------------------


def test_each_platform_registers_and_answers_its_fields(client: httpx.Client, me: TestUser) -> None:
    bodies = [
        webpush(),
        fcm(),
        {"platform": "apns", "token": "ab" * 32},
        {"platform": "webhook", "endpoint": "http://hooks.example.com:8080/chat?x=1"},
    ]
    made = []
    for body in bodies:
        device = ok(register(client, me, body), 201)
        assert set(device) == DEVICE_KEYS | (set(body) - {"platform"}), device
        assert {key: device[key] for key in body} == body
        assert isinstance(device["id"], str) and isinstance(device["created_ts"], int)
        made.append(device)
    # Newest first (ties in the same millisecond may come in either order).
    found = listed(client, me)
    assert sorted(d["id"] for d in found) == sorted(d["id"] for d in made)
    assert [d["created_ts"] for d in found] == sorted(
        (d["created_ts"] for d in found), reverse=True
    )
    assert {d["id"]: d for d in found} == {d["id"]: d for d in made}


def test_registering_again_answers_the_first_device(client: httpx.Client, me: TestUser) -> None:
    body = fcm()
    first = ok(register(client, me, body), 201)
    assert ok(register(client, me, body), 200) == first
    # The same token on another platform is another device.
    apns = ok(register(client, me, {**body, "platform": "apns"}), 201)
    assert apns["id"] != first["id"]
    # A renewed Web Push subscription: same endpoint, new keys; same device, keys replaced.
    push = ok(register(client, me, webpush()), 201)
    renewed_auth = base64.urlsafe_b64encode(b"\xff" * 16).decode().rstrip("=")
    renewed = webpush()
    renewed["keys"]["auth"] = renewed_auth
    again = ok(register(client, me, renewed), 200)
    assert again == {**push, "keys": {"p256dh": P256DH, "auth": renewed_auth}}
    assert len(listed(client, me)) == 3


def test_another_user_registering_the_same_token_gets_their_own(
    client: httpx.Client, me: TestUser
) -> None:
    other = register_and_login(client, prefix="pusher")
    body = fcm()
    mine = ok(register(client, me, body), 201)
    theirs = ok(register(client, other, body), 201)
    assert theirs["id"] != mine["id"]
    assert [d["id"] for d in listed(client, other)] == [theirs["id"]]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"platform": "sms", "token": "t"}, "platform must be one of"),
        ({"token": "t"}, "platform"),
        ({"platform": 3, "token": "t"}, "platform"),
        ({"platform": "fcm"}, "token must be a string"),
        ({"platform": "fcm", "token": ""}, "1 to 4096"),
        ({"platform": "fcm", "token": "x" * 4097}, "1 to 4096"),
        ({"platform": "apns", "token": "has space"}, "visible ASCII"),
        ({"platform": "apns", "token": "tab\there"}, "visible ASCII"),
        ({"platform": "fcm", "token": 12345}, "token"),
        ({"platform": "fcm", "token": "t", "endpoint": "https://a.example"}, "not endpoint"),
        ({"platform": "webhook"}, "http or https URL"),
        ({"platform": "webhook", "endpoint": "ftp://a.example/x"}, "http or https URL"),
        ({"platform": "webhook", "endpoint": "https:///no-host"}, "with a host"),
        ({"platform": "webhook", "endpoint": "https://a.example:99999/"}, "URL"),
        ({"platform": "webhook", "endpoint": "https://a.example/" + "x" * 2048}, "2048"),
        ({"platform": "webhook", "endpoint": "https://a.example", "token": "t"}, "not token"),
        ({**webpush("http://push.example.com/x")}, "https URL"),
        ({"platform": "webpush", "endpoint": "https://push.example.com/x"}, "needs keys"),
        ({**webpush(), "keys": "p256dh"}, "keys"),
        ({**webpush(), "keys": {"p256dh": P256DH}}, "auth"),
        ({**webpush(), "keys": {"p256dh": "not base64!", "auth": AUTH}}, "keys.p256dh"),
        ({**webpush(), "keys": {"p256dh": P256DH[:-4], "auth": AUTH}}, "65 bytes"),
        ({**webpush(), "keys": {"p256dh": P256DH, "auth": "A" * 5000}}, "keys.auth"),
        ({**webpush(), "keys": {"p256dh": P256DH, "auth": AUTH.rstrip("=") + "AAAA"}}, "16 bytes"),
        ([], "object"),
    ],
)
def test_bad_devices_are_refused_clearly(
    client: httpx.Client, me: TestUser, body: Any, says: str
) -> None:
    message = assert_error(register(client, me, body), 400, "bad_request")
    assert says.lower() in message.lower(), message
    assert listed(client, me) == []


def test_non_json_body_is_a_bad_request(client: httpx.Client, me: TestUser) -> None:
    headers = {**me.headers, "Content-Type": "application/json"}
    reply = client.post("/push/devices", content=b"{not json", headers=headers)
    assert_error(reply, 400, "bad_request")


def test_devices_per_user_are_bounded(client: httpx.Client, me: TestUser) -> None:
    made = [ok(register(client, me, fcm()), 201) for _ in range(MAX_DEVICES)]
    message = assert_error(register(client, me, fcm()), 409, "conflict")
    assert "remove one" in message
    # One already registered is still answered; removing one makes room.
    last = made[-1]
    assert ok(register(client, me, {"platform": "fcm", "token": last["token"]}), 200) == last
    ok(client.delete(f"/push/devices/{made[0]['id']}", headers=me.headers), 204)
    ok(register(client, me, fcm()), 201)
    assert len(listed(client, me)) == MAX_DEVICES


# --- visibility and removing ------------------------------------------------------------------


def test_devices_are_private_and_removed_by_their_owner_only(
    client: httpx.Client, me: TestUser
) -> None:
    other = register_and_login(client, prefix="pusher")
    mine = ok(register(client, me, fcm()), 201)
    assert listed(client, other) == []
    # Another user's device and an unknown id read the same: not found.
    for device_id in (mine["id"], "0" * 32, "no-such-device", "%00"):
        reply = client.delete(f"/push/devices/{device_id}", headers=other.headers)
        assert_error(reply, 404, "not_found")
    assert [d["id"] for d in listed(client, me)] == [mine["id"]]
    ok(client.delete(f"/push/devices/{mine['id']}", headers=me.headers), 204)
    assert listed(client, me) == []
    assert_error(client.delete(f"/push/devices/{mine['id']}", headers=me.headers), 404, "not_found")
