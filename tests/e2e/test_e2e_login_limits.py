"""Login limits of a cluster (docs/protocol.md, brute-force protection): two real nodes sharing
PostgreSQL and Redis count the same attempts, so failed logins on one node count against logins
on the other, and a guesser gains nothing by spreading guesses over the nodes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_support import HTTP_TIMEOUT, error_code

from chatcore.testing.cluster import start_cluster
from chatcore.testing.services import redis_url, require_url
from chatcore.testing.users import PASSWORD, unique_username

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

FAILURES = 3


def login(http: httpx.Client, api: str, username: str, password: str) -> httpx.Response:
    return http.post(f"{api}/auth/login", json={"username": username, "password": password})


def test_failed_logins_on_one_node_count_on_the_other(
    tmp_path: Path, postgres_storage: dict[str, Any]
) -> None:
    require_url("Redis", redis_url())
    limits = {"auth": {"login_failures_per_username": FAILURES}}
    with (
        start_cluster(tmp_path, "redis", postgres_storage, overrides=limits) as cluster,
        httpx.Client(timeout=HTTP_TIMEOUT) as http,
    ):
        one, two = (node.api for node in cluster.nodes)
        victim, bystander = unique_username("victim"), unique_username("bystander")
        for username in (victim, bystander):
            credentials = {"username": username, "password": PASSWORD}
            assert http.post(f"{one}/auth/register", json=credentials).status_code == 201

        # Spread over both nodes, the guesses use up one budget.
        for api in (one, two, one):
            reply = login(http, api, victim, "a wrong guess")
            assert (reply.status_code, error_code(reply)) == (401, "unauthorized")
        for api in (two, one):
            reply = login(http, api, victim, PASSWORD)  # even the right password, for a while
            assert (reply.status_code, error_code(reply)) == (429, "rate_limited"), reply.text
            assert 1 <= int(reply.headers["Retry-After"]) <= 60

        # Only that username is locked, on either node.
        assert login(http, two, bystander, PASSWORD).status_code == 200
        assert login(http, one, bystander, PASSWORD).status_code == 200
