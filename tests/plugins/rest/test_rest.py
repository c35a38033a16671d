"""The REST API end to end: a real `chatcore serve` process, spoken to over HTTP (docs/protocol.md).

One server serves the whole module; tests that need another config live in test_rest_config.py.
Each test makes its own users, so the tests do not depend on one another.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest

import chatcore
from chatcore.testing.rest import assert_error
from chatcore.testing.server import ServerProcess, start_server
from chatcore.testing.users import PASSWORD, new_user, unique_username

if TYPE_CHECKING:
    # Imported for annotations only: pytest would try to collect a `Test*` class at run time.
    from chatcore.testing.users import TestUser

pytestmark = pytest.mark.e2e

#: Every login of this module comes from 127.0.0.1; the default per-address budget (a burst of
#: 30) is for the internet, not for a test module that signs in a few dozen users.
LOGIN_BUDGET = {"login_attempts_per_address": 10_000}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with start_server(tmp_path_factory.mktemp("rest"), {"auth": LOGIN_BUDGET}) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        yield http


API = "/api/v1"


def auth(user: TestUser | str) -> dict[str, str]:
    token = user if isinstance(user, str) else user.access_token
    return {"Authorization": f"Bearer {token}"}


def register(client: httpx.Client, **body: Any) -> httpx.Response:
    return client.post(f"{API}/auth/register", json=body)


def login(client: httpx.Client, username: str, password: str = PASSWORD) -> httpx.Response:
    return client.post(f"{API}/auth/login", json={"username": username, "password": password})


# --- discovery, health, metrics -----------------------------------------------------------


def test_info_describes_the_server(client: httpx.Client, server: ServerProcess) -> None:
    reply = client.get(f"{API}/info")
    assert reply.status_code == 200
    info = reply.json()
    assert info["name"] == "chatcore"
    assert info["version"] == chatcore.__version__
    ws = server.config["websocket"]
    assert info["ws_url"] == f"ws://127.0.0.1:{ws['port']}" == server.ws_url
    assert info["limits"] == {
        "max_message_bytes": 16 * 1024,
        "max_frame_bytes": 32 * 1024,
        "max_upload_bytes": 25 * 1024 * 1024,
        "max_sync_messages": 1000,
        "ws_rate_per_second": 20,  # the [websocket] flood control, for clients to pace by
        "ws_rate_burst": 100,
    }
    assert {"auth", "settings", "users"} <= set(info["features"])
    assert all(isinstance(feature, str) for feature in info["features"])


def test_healthz(client: httpx.Client) -> None:
    reply = client.get("/healthz")
    assert reply.status_code == 200
    assert reply.json() == {"status": "ok"}


def test_metrics_count_requests_by_route_template(
    client: httpx.Client, server: ServerProcess
) -> None:
    user = new_user(server.api)
    assert client.get(f"{API}/users/{user.id}", headers=auth(user)).status_code == 200
    reply = client.get("/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    text = reply.text
    assert "# TYPE chatcore_http_requests_total counter" in text
    assert "# TYPE chatcore_http_request_duration_seconds histogram" in text
    assert "# TYPE chatcore_websocket_sessions gauge" in text
    assert "chatcore_websocket_sessions 0.0" in text
    # The route template, never the id, is the label.
    assert 'route="/api/v1/users/<user_id>",status="200"' in text
    assert user.id not in text


# --- register ---------------------------------------------------------------------------------


def test_register_answers_the_user(client: httpx.Client) -> None:
    username = unique_username("Reg")
    reply = register(client, username=username, password=PASSWORD, display_name="  Ann Example ")
    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert list(body) == ["user"]
    user = body["user"]
    assert set(user) == {"id", "username", "display_name"}  # no hash, no unset avatar
    assert user["username"] == username
    assert user["display_name"] == "Ann Example"
    assert isinstance(user["id"], str) and user["id"]
    assert "hash" not in reply.text and "argon" not in reply.text


def test_register_defaults_the_display_name_to_the_username(client: httpx.Client) -> None:
    username = unique_username()
    reply = register(client, username=username, password=PASSWORD)
    assert reply.status_code == 201
    assert reply.json()["user"]["display_name"] == username


def test_register_conflicts_case_insensitively(client: httpx.Client) -> None:
    username = unique_username("Case")
    assert register(client, username=username, password=PASSWORD).status_code == 201
    for taken in (username, username.lower(), username.upper()):
        assert_error(register(client, username=taken, password=PASSWORD), 409, "conflict")


@pytest.mark.parametrize(
    "username",
    [
        "ab",
        "x" * 33,
        "",
        "has space",
        "tab\tname",
        "ünïcode",
        "semi;colon",
        "slash/name",
        "at@sign",
        "dollar$",
        "quote'name",
        "emoji😀x",
        123456,
        None,
        ["list"],
        {"an": "object"},
    ],
)
def test_register_refuses_bad_usernames(client: httpx.Client, username: object) -> None:
    assert_error(register(client, username=username, password=PASSWORD), 400, "bad_request")


@pytest.mark.parametrize("length", [8, 1024])
def test_register_accepts_passwords_at_the_bounds(client: httpx.Client, length: int) -> None:
    username = unique_username()
    assert register(client, username=username, password="p" * length).status_code == 201
    assert login(client, username, "p" * length).status_code == 200


@pytest.mark.parametrize("password", ["p" * 7, "p" * 1025, "", 12345678, None])
def test_register_refuses_bad_passwords(client: httpx.Client, password: object) -> None:
    username = unique_username()
    message = assert_error(
        register(client, username=username, password=password), 400, "bad_request"
    )
    assert "password" in message.lower()
    # Nothing was created: the name is still free.
    assert register(client, username=username, password=PASSWORD).status_code == 201


def test_register_accepts_usernames_at_the_bounds(client: httpx.Client) -> None:
    for username in ("a.B", ("A.b-c_" + unique_username()).ljust(32, "z")):
        assert len(username) in (3, 32)
        assert register(client, username=username, password=PASSWORD).status_code == 201


@pytest.mark.parametrize(
    "body",
    [{}, {"username": "someone_new"}, {"password": PASSWORD}],
    ids=["empty", "no-password", "no-username"],
)
def test_register_requires_its_fields(client: httpx.Client, body: dict[str, str]) -> None:
    message = assert_error(client.post(f"{API}/auth/register", json=body), 400, "bad_request")
    assert "required" in message.lower()


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"username=a&password=b", "application/x-www-form-urlencoded"),
        (b'{"username": "x", "password": ', "application/json"),
        (b"", "application/json"),
        (b"\xff\xfe not utf-8", "application/json"),
        (b'[{"username": "abc", "password": "12345678"}]', "application/json"),
        (b'"just a string"', "application/json"),
        (b"null", "application/json"),
        (b'{"username": "abc", "password": "12345678"}', "text/plain"),
    ],
    ids=["form", "truncated", "empty", "binary", "array", "string", "null", "text-plain"],
)
def test_register_refuses_what_is_not_a_json_object(
    client: httpx.Client, content: bytes, content_type: str
) -> None:
    reply = client.post(
        f"{API}/auth/register", content=content, headers={"Content-Type": content_type}
    )
    assert_error(reply, 400, "bad_request")


def test_register_without_content_type_is_a_bad_request(client: httpx.Client) -> None:
    reply = client.post(f"{API}/auth/register", content=b'{"username": "abc"}')
    assert "Content-Type" in assert_error(reply, 400, "bad_request")


# --- login, refresh, logout -------------------------------------------------------------------


def test_login_answers_a_token_pair(client: httpx.Client) -> None:
    username = unique_username()
    user = register(client, username=username, password=PASSWORD).json()["user"]
    reply = login(client, username.upper())  # usernames match case-insensitively
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in", "user"}
    assert body["token_type"] == "bearer"
    assert isinstance(body["expires_in"], int) and body["expires_in"] > 0
    assert body["user"] == user
    assert body["access_token"] and body["refresh_token"]
    assert body["access_token"] != body["refresh_token"]
    assert reply.headers["Cache-Control"] == "no-store"  # tokens stay out of caches


def test_login_failures_look_alike(client: httpx.Client) -> None:
    username = unique_username()
    register(client, username=username, password=PASSWORD)
    wrong_password = assert_error(login(client, username, "not the password"), 401, "unauthorized")
    unknown_user = assert_error(login(client, unique_username("nobody")), 401, "unauthorized")
    assert wrong_password == unknown_user
    reply = login(client, username, "not the password")
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")


def test_login_requires_its_fields(client: httpx.Client) -> None:
    assert_error(client.post(f"{API}/auth/login", json={"username": "x"}), 400, "bad_request")
    assert_error(client.post(f"{API}/auth/login", json=["x", "y"]), 400, "bad_request")


def test_refresh_rotates_and_reuse_ends_the_login(
    client: httpx.Client, server: ServerProcess
) -> None:
    user = new_user(server.api)

    def refresh(token: str) -> httpx.Response:
        return client.post(f"{API}/auth/refresh", json={"refresh_token": token})

    first = refresh(user.refresh_token)
    assert first.status_code == 200, first.text
    pair = first.json()
    assert set(pair) == {"access_token", "refresh_token", "token_type", "expires_in", "user"}
    assert pair["user"]["id"] == user.id
    assert pair["refresh_token"] != user.refresh_token
    # The new access token works, and so does the one it replaced (until it expires).
    assert client.get(f"{API}/me", headers=auth(pair["access_token"])).status_code == 200
    assert client.get(f"{API}/me", headers=auth(user)).status_code == 200

    second = refresh(pair["refresh_token"])
    assert second.status_code == 200
    newest = second.json()
    assert client.get(f"{API}/me", headers=auth(newest["access_token"])).status_code == 200

    # The first refresh token was used: presenting it again is refused and ends the login.
    assert_error(refresh(user.refresh_token), 401, "unauthorized")
    assert_error(client.get(f"{API}/me", headers=auth(newest["access_token"])), 401, "unauthorized")
    assert_error(refresh(newest["refresh_token"]), 401, "unauthorized")


def test_refresh_refuses_garbage(client: httpx.Client) -> None:
    reply = client.post(f"{API}/auth/refresh", json={"refresh_token": "not-a-token"})
    assert_error(reply, 401, "unauthorized")
    assert_error(client.post(f"{API}/auth/refresh", json={}), 400, "bad_request")


def test_logout_ends_only_its_own_login(client: httpx.Client, server: ServerProcess) -> None:
    user = new_user(server.api)
    other_login = login(client, user.username).json()

    reply = client.post(f"{API}/auth/logout", headers=auth(user))
    assert reply.status_code == 204
    assert reply.content == b""

    assert_error(client.get(f"{API}/me", headers=auth(user)), 401, "unauthorized")
    refreshed = client.post(f"{API}/auth/refresh", json={"refresh_token": user.refresh_token})
    assert_error(refreshed, 401, "unauthorized")
    assert_error(client.post(f"{API}/auth/logout", headers=auth(user)), 401, "unauthorized")

    # The user's other login goes on.
    assert client.get(f"{API}/me", headers=auth(other_login["access_token"])).status_code == 200
    again = client.post(f"{API}/auth/refresh", json={"refresh_token": other_login["refresh_token"]})
    assert again.status_code == 200


def test_logout_requires_auth(client: httpx.Client) -> None:
    assert_error(client.post(f"{API}/auth/logout"), 401, "unauthorized")


# --- the caller ---------------------------------------------------------------------------------


def test_me(client: httpx.Client, server: ServerProcess) -> None:
    user = new_user(server.api)
    reply = client.get(f"{API}/me", headers=auth(user))
    assert reply.status_code == 200
    assert reply.json() == {**user.user, "is_admin": False}  # one's own flag (Administration)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Token abc"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer not.a.token"},
        {"Authorization": "Bearer " + "x" * 10_000},
    ],
    ids=["none", "empty", "scheme-only", "other-scheme", "basic", "garbage", "huge"],
)
def test_protected_endpoints_require_a_valid_token(
    client: httpx.Client, headers: dict[str, str]
) -> None:
    for method, path in [
        ("GET", "/me"),
        ("GET", "/me/settings"),
        ("PATCH", "/me/settings"),
        ("GET", "/users?q=a"),
        ("GET", "/users/someone"),
        ("POST", "/auth/logout"),
    ]:
        reply = client.request(method, API + path, headers=headers, json={})
        assert_error(reply, 401, "unauthorized")
        assert reply.headers["WWW-Authenticate"] == "Bearer"


def test_bearer_scheme_is_case_insensitive(client: httpx.Client, server: ServerProcess) -> None:
    user = new_user(server.api)
    reply = client.get(f"{API}/me", headers={"Authorization": f"bearer {user.access_token}"})
    assert reply.status_code == 200


# --- settings -----------------------------------------------------------------------------------


def test_settings_merge_patch(client: httpx.Client, server: ServerProcess) -> None:
    user = new_user(server.api)
    url = f"{API}/me/settings"
    assert client.get(url, headers=auth(user)).json() == {}

    first = {"theme": "dark", "notify": {"sound": True, "email": False}, "tags": ["a", "b"]}
    reply = client.patch(url, headers=auth(user), json=first)
    assert reply.status_code == 200
    assert reply.json() == first

    patch = {"notify": {"email": None, "push": True}, "tags": ["c"], "theme": None, "n": 1}
    reply = client.patch(
        url,
        headers={**auth(user), "Content-Type": "application/merge-patch+json"},
        content=json.dumps(patch).encode(),
    )
    assert reply.status_code == 200, reply.text
    expected = {"notify": {"sound": True, "push": True}, "tags": ["c"], "n": 1}
    assert reply.json() == expected
    assert client.get(url, headers=auth(user)).json() == expected

    # An object replaced by a scalar, a scalar by an object; deleting what is absent is harmless.
    reply = client.patch(
        url, headers=auth(user), json={"notify": "off", "n": {"x": 1}, "gone": None}
    )
    assert reply.json() == {"notify": "off", "tags": ["c"], "n": {"x": 1}}
    assert client.patch(url, headers=auth(user), json={}).json() == reply.json()


def test_settings_belong_to_their_user(client: httpx.Client, server: ServerProcess) -> None:
    alice, bob = new_user(server.api), new_user(server.api)
    client.patch(f"{API}/me/settings", headers=auth(alice), json={"mine": "alice"})
    assert client.get(f"{API}/me/settings", headers=auth(bob)).json() == {}


@pytest.mark.parametrize("patch", [[1, 2], "text", 5, None, True])
def test_settings_patch_must_be_an_object(
    client: httpx.Client, server: ServerProcess, patch: object
) -> None:
    user = new_user(server.api)
    client.patch(f"{API}/me/settings", headers=auth(user), json={"keep": 1})
    reply = client.patch(f"{API}/me/settings", headers=auth(user), json=patch)
    assert_error(reply, 400, "bad_request")
    assert client.get(f"{API}/me/settings", headers=auth(user)).json() == {"keep": 1}


def test_settings_patch_refuses_other_media_types(
    client: httpx.Client, server: ServerProcess
) -> None:
    user = new_user(server.api)
    reply = client.patch(
        f"{API}/me/settings",
        headers={**auth(user), "Content-Type": "text/plain"},
        content=b'{"a": 1}',
    )
    assert_error(reply, 400, "bad_request")


def test_settings_are_bounded(client: httpx.Client, server: ServerProcess) -> None:
    user = new_user(server.api)
    url = f"{API}/me/settings"
    client.patch(url, headers=auth(user), json={"keep": 1})
    # Over the settings limit (64 KiB), though well within the body limit.
    assert_error(
        client.patch(url, headers=auth(user), json={"big": "x" * 70_000}), 413, "too_large"
    )
    # Over the body limit of JSON endpoints.
    big = {"big": "x" * (2 * 1024 * 1024)}
    assert_error(client.patch(url, headers=auth(user), json=big), 413, "too_large")
    assert client.get(url, headers=auth(user)).json() == {"keep": 1}


# --- users --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def searcher(server: ServerProcess) -> TestUser:
    return new_user(server.api)


def _search(client: httpx.Client, user: TestUser, **params: Any) -> httpx.Response:
    return client.get(f"{API}/users", headers=auth(user), params=params)


def _names(reply: httpx.Response) -> list[str]:
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert list(body) == ["users"]
    for user in body["users"]:
        assert set(user) <= {"id", "username", "display_name", "avatar_media_id"}
    return [user["username"] for user in body["users"]]


def test_users_search_by_prefix(client: httpx.Client, searcher: TestUser) -> None:
    stem = unique_username("Srch")
    made = [f"{stem}Anna", f"{stem}andy", f"{stem}Bob", f"x{stem}anna"]
    for username in made:
        assert register(client, username=username, password=PASSWORD).status_code == 201

    assert sorted(_names(_search(client, searcher, q=f"{stem}an"))) == sorted(made[:2])
    assert sorted(_names(_search(client, searcher, q=f"{stem.upper()}AN"))) == sorted(made[:2])
    assert sorted(_names(_search(client, searcher, q=stem.lower()))) == sorted(made[:3])
    assert _names(_search(client, searcher, q=f"{stem}zzz")) == []
    assert _names(_search(client, searcher, q="   ")) == []


def test_users_search_by_display_name(client: httpx.Client, searcher: TestUser) -> None:
    stem = unique_username("Disp")
    username = unique_username("plain")
    register(client, username=username, password=PASSWORD, display_name=f"{stem} Person")
    assert _names(_search(client, searcher, q=stem.lower())) == [username]


def test_users_search_takes_wildcards_literally(client: httpx.Client, searcher: TestUser) -> None:
    stem = unique_username("Wild")
    register(client, username=f"{stem}a1", password=PASSWORD)
    register(client, username=f"{stem}_1", password=PASSWORD)
    assert _names(_search(client, searcher, q=f"{stem}%")) == []
    assert _names(_search(client, searcher, q=f"{stem}_")) == [f"{stem}_1"]
    assert _names(_search(client, searcher, q=f"{stem}\\")) == []


def test_users_search_limit(client: httpx.Client, searcher: TestUser) -> None:
    stem = unique_username("Lim")
    for i in range(52):
        reply = register(client, username=f"{stem}{i:02d}", password=PASSWORD)
        assert reply.status_code == 201
    assert len(_names(_search(client, searcher, q=stem))) == 50  # the default is the maximum
    assert len(_names(_search(client, searcher, q=stem, limit=1000))) == 50
    assert _names(_search(client, searcher, q=stem, limit=3)) == [
        f"{stem}00",
        f"{stem}01",
        f"{stem}02",
    ]
    assert len(_names(_search(client, searcher, q=stem, limit=0))) == 1
    assert len(_names(_search(client, searcher, q=stem, limit=-4))) == 1


def test_users_search_needs_a_query(client: httpx.Client, searcher: TestUser) -> None:
    assert "q" in assert_error(_search(client, searcher), 400, "bad_request")
    assert_error(_search(client, searcher, q="a", limit="many"), 400, "bad_request")


def test_user_by_id(client: httpx.Client, server: ServerProcess, searcher: TestUser) -> None:
    other = new_user(server.api)
    reply = client.get(f"{API}/users/{other.id}", headers=auth(searcher))
    assert reply.status_code == 200
    assert reply.json() == other.user
    assert_error(client.get(f"{API}/users/no-such-id", headers=auth(searcher)), 404, "not_found")


# --- errors in general ----------------------------------------------------------------------


@pytest.mark.parametrize("path", [f"{API}/nothing-here", "/nothing", f"{API}/me/", f"{API}"])
def test_unknown_paths(client: httpx.Client, path: str) -> None:
    assert_error(client.get(path), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/me", {"GET"}),
        ("POST", "/info", {"GET"}),
        ("GET", "/auth/login", {"POST"}),
        ("PUT", "/me/settings", {"GET", "PATCH"}),
    ],
)
def test_wrong_method(client: httpx.Client, method: str, path: str, allowed: set[str]) -> None:
    reply = client.request(method, API + path)
    assert_error(reply, 405, "bad_request")
    assert allowed <= {m.strip() for m in reply.headers["Allow"].split(",")}
    assert method not in reply.headers["Allow"]


def test_body_over_the_limit(client: httpx.Client) -> None:
    body = json.dumps({"username": "abc", "password": "x" * (2 * 1024 * 1024)}).encode()
    headers = {"Content-Type": "application/json"}
    reply = client.post(f"{API}/auth/register", content=body, headers=headers)
    assert_error(reply, 413, "too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds as the bytes arrive
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    reply = client.post(f"{API}/auth/login", content=chunks(), headers=headers)
    assert_error(reply, 413, "too_large")


def test_the_connection_survives_answers_given_before_the_body_arrived(
    server: ServerProcess,
) -> None:
    """A reply sent before the body was read (401, 413) leaves a keep-alive connection usable,
    and a client still sending its body gets the reply, not a reset."""
    user = new_user(server.api)
    big = {"big": "x" * (2 * 1024 * 1024)}
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        for _ in range(20):
            reply = http.patch(f"{API}/me/settings", headers=auth(user), json=big)
            assert_error(reply, 413, "too_large")
            reply = http.post(f"{API}/auth/logout", headers=auth("bad"), json={"x": "y" * 5000})
            assert_error(reply, 401, "unauthorized")
            assert http.get(f"{API}/info").status_code == 200


# --- the OpenAPI document -----------------------------------------------------------------------

ENDPOINTS = {
    ("get", "/healthz"),
    ("get", "/metrics"),
    ("get", "/api/v1/info"),
    ("post", "/api/v1/auth/register"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/refresh"),
    ("post", "/api/v1/auth/logout"),
    ("get", "/api/v1/me"),
    ("get", "/api/v1/me/settings"),
    ("patch", "/api/v1/me/settings"),
    ("get", "/api/v1/users"),
    ("get", "/api/v1/users/{user_id}"),
}
PROTECTED = {
    ("post", "/api/v1/auth/logout"),
    ("get", "/api/v1/me"),
    ("get", "/api/v1/me/settings"),
    ("patch", "/api/v1/me/settings"),
    ("get", "/api/v1/users"),
    ("get", "/api/v1/users/{user_id}"),
}


@pytest.fixture(scope="module")
def openapi(client: httpx.Client) -> dict[str, Any]:
    reply = client.get(f"{API}/openapi.json")  # no auth
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("application/json")
    return json.loads(reply.content)


def test_openapi_lists_every_endpoint(openapi: dict[str, Any]) -> None:
    assert openapi["openapi"].startswith("3.")
    assert openapi["info"]["version"] == chatcore.__version__
    listed = {(m, p) for p, item in openapi["paths"].items() for m in item}
    assert ENDPOINTS <= listed
    assert openapi["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
    }
    for method, path in ENDPOINTS:
        operation = openapi["paths"][path][method]
        assert operation["summary"]
        assert "500" in operation["responses"]
        secured = operation.get("security") == [{"bearer": []}]
        assert secured == ((method, path) in PROTECTED), (method, path)
        if secured:
            assert "401" in operation["responses"]
    ids = [op["operationId"] for item in openapi["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


def test_openapi_documents_bodies_and_errors(openapi: dict[str, Any]) -> None:
    paths = openapi["paths"]
    schemas = openapi["components"]["schemas"]
    register_op = paths["/api/v1/auth/register"]["post"]
    body = register_op["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/RegisterRequest"}
    assert set(schemas["RegisterRequest"]["required"]) == {"username", "password"}
    assert {"201", "400", "409"} <= set(register_op["responses"])
    created = register_op["responses"]["201"]["content"]["application/json"]["schema"]
    assert created == {"$ref": "#/components/schemas/Registered"}
    login_op = paths["/api/v1/auth/login"]["post"]
    assert "Retry-After" in login_op["responses"]["429"]["headers"]
    ok = login_op["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/TokenPair"}
    error = login_op["responses"]["401"]["content"]["application/json"]["schema"]
    assert error == {"$ref": "#/components/schemas/Error"}
    assert schemas["Error"]["required"] == ["error"]
    patch = paths["/api/v1/me/settings"]["patch"]["requestBody"]["content"]
    assert {"application/merge-patch+json", "application/json"} <= set(patch)
    assert set(paths["/api/v1/auth/logout"]["post"]["responses"]) >= {"204", "401"}
    assert "password_hash" not in json.dumps(openapi)


def test_openapi_is_a_valid_document(openapi: dict[str, Any]) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(openapi)
