"""Make users on a running test server over its REST API (sync httpx, for tests)."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from typing import Any

import httpx

PASSWORD = "correct horse battery"
_counter = itertools.count()


def unique_username(prefix: str = "user") -> str:
    return f"{prefix}{os.getpid()}_{next(_counter)}"


@dataclass
class TestUser:
    __test__ = False  # not a test class, whatever its name
    username: str
    password: str
    user: dict[str, Any]
    access_token: str
    refresh_token: str

    @property
    def id(self) -> str:
        return str(self.user["id"])

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def new_user(api: str, username: str | None = None, password: str = PASSWORD) -> TestUser:
    """Register and log in a fresh user; `api` is the server's `/api/v1` URL."""
    with httpx.Client(base_url=api) as http:
        return register_and_login(http, username, password)


def register_and_login(
    http: httpx.Client, username: str | None = None, password: str = PASSWORD, prefix: str = "user"
) -> TestUser:
    """`new_user` over a client whose base URL is the API (reusing one client is faster)."""
    username = username or unique_username(prefix)
    credentials = {"username": username, "password": password}
    reply = http.post("/auth/register", json=credentials)
    assert reply.status_code == 201, reply.text
    tokens = http.post("/auth/login", json=credentials)
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    return TestUser(username, password, body["user"], body["access_token"], body["refresh_token"])
