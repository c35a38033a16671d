"""The built-in auth backend (`chatcore_auth`) on real SQL storage (a SQLite file).

Each "node" is a TokenAuthBackend with its own SqlStorage on the same database file; nodes of
one test share one in-process broker, as the nodes of a cluster share Redis or NATS.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import sqlite3
import stat
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import AsyncExitStack, asynccontextmanager, closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import orjson
import pytest

import chatcore_auth
import chatcore_memory
import chatcore_sql
from chatcore.errors import ChatError, ErrorCode
from chatcore.hooks import resolve
from chatcore.interfaces import AuthBackend, Storage
from chatcore.models import TokenPair
from chatcore.server import accounts
from chatcore.server.app import App
from chatcore.server.realtime.hub import LOGINS_CHANNEL
from chatcore.settings import ConfigError
from chatcore.testing.server import FAST_AUTH
from chatcore_auth import AuthSettings, TokenAuthBackend
from chatcore_auth.tokens import hash_refresh_token, new_refresh_token
from chatcore_memory import MemoryBroker

SECRET = "test-secret-" + "k" * 52
PASSWORD = "correct horse battery"
WRONG_PAIR = "Wrong username or password."
TIMEOUT = 10 * float(os.environ.get("CHATCORE_TEST_TIMEOUT_SCALE", "1"))


def run(coro: Awaitable[Any]) -> Any:
    async def main() -> Any:
        return await asyncio.wait_for(coro, TIMEOUT)

    return asyncio.run(main())


def make_app(tmp_path: Path, **auth: Any) -> App:
    """An app with the SQL, auth and memory plugins only, its state under `tmp_path`."""
    overrides = {
        "storage": {"url": f"sqlite+aiosqlite:///{tmp_path}/chat.db"},
        "broker": {"url": "memory://"},
        "auth": {"secret": SECRET, **FAST_AUTH, "revocation_sync_seconds": 0, **auth},
    }
    if overrides["auth"]["secret"] is None:
        del overrides["auth"]["secret"]
    return App.from_config(
        None,
        overrides=overrides,
        entry_points=False,
        extra_plugins=[chatcore_sql, chatcore_auth, chatcore_memory],
    )


@dataclass
class Cluster:
    """Auth nodes sharing one database file and one broker; `events` records LOGINS_CHANNEL."""

    app: App
    broker: MemoryBroker
    stack: AsyncExitStack
    nodes: list[TokenAuthBackend] = field(default_factory=list)
    storages: list[Storage] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def auth(self) -> TokenAuthBackend:
        return self.nodes[0]

    @property
    def storage(self) -> Storage:
        return self.storages[0]

    async def add_node(self, settings: AuthSettings | None = None) -> TokenAuthBackend:
        storage = await resolve(chatcore_sql.chatcore_storage(self.app))
        assert storage is not None
        await storage.start()
        self.stack.push_async_callback(storage.close)
        settings = settings or self.app.settings.section("auth", AuthSettings)
        node = TokenAuthBackend(settings, storage, self.broker)
        await node.start()
        self.stack.push_async_callback(node.close)
        self.storages.append(storage)
        self.nodes.append(node)
        return node


@asynccontextmanager
async def cluster(tmp_path: Path, nodes: int = 1, **auth: Any) -> AsyncIterator[Cluster]:
    app = make_app(tmp_path, **auth)
    broker = chatcore_memory.chatcore_broker(app)
    assert broker is not None
    await broker.start()
    async with AsyncExitStack() as stack:
        stack.push_async_callback(broker.close)
        c = Cluster(app, broker, stack)
        await broker.subscribe(LOGINS_CHANNEL, lambda data: c.events.append(orjson.loads(data)))
        for _ in range(nodes):
            await c.add_node()
        yield c


async def fails(awaitable: Awaitable[Any], code: ErrorCode) -> ChatError:
    try:
        await awaitable
    except ChatError as exc:
        assert exc.code == code, exc
        return exc
    raise AssertionError(f"expected ChatError({code.value})")


async def registered(auth: AuthBackend, username: str = "alice") -> TokenPair:
    await auth.register(username, PASSWORD, username.title())
    return await auth.login(username, PASSWORD, "127.0.0.1")


def database_text(tmp_path: Path) -> str:
    """Everything in the SQLite database, as SQL text."""
    with closing(sqlite3.connect(tmp_path / "chat.db")) as db:
        return "\n".join(db.iterdump())


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"sub": "u1", "sid": "l1", "jti": "j1", "iat": now, "exp": now + 600, "iss": "chatcore"}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


# --- register, login, authenticate ------------------------------------------------------------


def test_the_backend_implements_the_interface_and_the_plugin_provides_it(tmp_path):
    """Started through the app, the auth backend is this plugin's, with the [auth] settings."""

    async def main():
        app = make_app(tmp_path, access_token_ttl=120)
        await app.start(listen=False)
        try:
            assert isinstance(app.auth, TokenAuthBackend)
            assert isinstance(app.auth, AuthBackend)
            user = await accounts.register(app, "alice", PASSWORD)
            pair = await app.auth.login("alice", PASSWORD, None)
            assert pair.expires_in == 120
            identity = await app.auth.authenticate(pair.access_token)
            assert identity.user_id == user.id
        finally:
            await app.stop()

    run(main())


def test_register_login_and_authenticate(tmp_path):
    """A registered user logs in (any case of the username) and the access token names them."""

    async def main():
        async with cluster(tmp_path) as c:
            user = await c.auth.register("Alice", PASSWORD, "Alice A.")
            credentials = await c.storage.get_credentials("alice")
            assert credentials is not None
            assert credentials.password_hash.startswith("$argon2id$")
            assert PASSWORD not in credentials.password_hash

            before = int(time.time() * 1000)
            pair = await c.auth.login("ALICE", PASSWORD, "127.0.0.1")
            assert pair.token_type == "bearer"
            assert pair.expires_in == 900
            assert pair.user == user
            assert pair.refresh_token and pair.refresh_token != pair.access_token

            identity = await c.auth.authenticate(pair.access_token)
            assert identity.user_id == user.id
            assert identity.login_id and identity.token_id
            assert before + 900_000 - 1000 <= identity.expires_ts <= before + 901_000

            # Each login is a login of its own; access tokens carry distinct ids.
            again = await c.auth.login("alice", PASSWORD, "127.0.0.1")
            other = await c.auth.authenticate(again.access_token)
            assert other.login_id != identity.login_id
            assert other.token_id != identity.token_id

    run(main())


def test_a_taken_username_is_a_conflict_whatever_its_case(tmp_path):
    """Registering a username that exists in another case answers conflict."""

    async def main():
        async with cluster(tmp_path) as c:
            await c.auth.register("alice", PASSWORD, "Alice")
            await fails(c.auth.register("ALICE", PASSWORD, "Other"), ErrorCode.CONFLICT)

    run(main())


def test_wrong_password_and_unknown_user_get_the_same_answer(tmp_path):
    """Both are 401 with one message, so a login never reveals whether a username exists."""

    async def main():
        async with cluster(tmp_path) as c:
            await registered(c.auth)
            wrong = await fails(
                c.auth.login("alice", "not the password", "a"), ErrorCode.UNAUTHORIZED
            )
            unknown = await fails(c.auth.login("nobody", PASSWORD, "b"), ErrorCode.UNAUTHORIZED)
            assert wrong.message == unknown.message == WRONG_PAIR
            assert wrong.status == unknown.status == 401

    run(main())


def test_hash_password_gives_a_hash_that_logs_in(tmp_path):
    """hash_password's output, stored as a user's hash, accepts that password (admin commands)."""

    async def main():
        async with cluster(tmp_path) as c:
            user = await c.auth.register("alice", PASSWORD, "Alice")
            await c.storage.set_password_hash(user.id, await c.auth.hash_password("new password!"))
            await fails(c.auth.login("alice", PASSWORD, None), ErrorCode.UNAUTHORIZED)
            assert (await c.auth.login("alice", "new password!", None)).user.id == user.id

    run(main())


def test_a_hash_made_with_old_parameters_is_upgraded_at_login(tmp_path):
    """After the hash parameters change, the next successful login stores a new hash."""

    async def main():
        async with cluster(tmp_path) as c:
            await c.auth.register("alice", PASSWORD, "Alice")
            old = await c.storage.get_credentials("alice")
            assert old is not None and ",t=1," in old.password_hash
            stronger = c.app.settings.section("auth", AuthSettings).model_copy(
                update={"hash_time_cost": 2}
            )
            node = await c.add_node(stronger)
            await node.login("alice", PASSWORD, None)
            new = await c.storage.get_credentials("alice")
            assert new is not None and ",t=2," in new.password_hash
            await node.login("alice", PASSWORD, None)  # and it still works

    run(main())


# --- refresh tokens ---------------------------------------------------------------------------


def test_refresh_rotates_and_a_reused_token_ends_the_login(tmp_path):
    """A refresh token works once; presenting it again ends its whole login everywhere."""

    async def main():
        async with cluster(tmp_path) as c:
            first = await registered(c.auth)
            second = await c.auth.refresh(first.refresh_token)
            assert second.refresh_token != first.refresh_token
            assert second.access_token != first.access_token
            assert second.expires_in == 900 and second.user.username == "alice"
            new_identity = await c.auth.authenticate(second.access_token)
            assert new_identity.login_id == (await c.auth.authenticate(first.access_token)).login_id
            # Neither refresh token nor the password is stored in clear, anywhere.
            stored = database_text(tmp_path)
            for secret in (first.refresh_token, second.refresh_token, PASSWORD):
                assert secret not in stored
            assert hash_refresh_token(second.refresh_token) in stored

            reused = await fails(c.auth.refresh(first.refresh_token), ErrorCode.UNAUTHORIZED)
            assert "already used" in reused.message
            assert c.events == [{"login_id": new_identity.login_id}]
            # The whole family is gone: the newest access token and refresh token too.
            await fails(c.auth.authenticate(second.access_token), ErrorCode.UNAUTHORIZED)
            await fails(c.auth.authenticate(first.access_token), ErrorCode.UNAUTHORIZED)
            ended = await fails(c.auth.refresh(second.refresh_token), ErrorCode.UNAUTHORIZED)
            assert "ended" in ended.message
            # Other logins of the same user are untouched.
            other = await c.auth.login("alice", PASSWORD, None)
            await c.auth.authenticate(other.access_token)

    run(main())


def test_unknown_malformed_and_expired_refresh_tokens_are_refused(tmp_path):
    """Each refusal is a 401 whose message says what to do."""

    async def main():
        async with cluster(tmp_path) as c:
            pair = await registered(c.auth)
            for bad in ["", "short", "x" * 10_000, new_refresh_token(), pair.access_token]:
                error = await fails(c.auth.refresh(bad), ErrorCode.UNAUTHORIZED)
                assert "sign in again" in error.message
            # A token whose time has passed (made directly in storage, with a past expiry).
            expired = new_refresh_token()
            now = int(time.time() * 1000)
            await c.storage.create_login(
                pair.user.id, hash_refresh_token(expired), now - 1, now - 2
            )
            error = await fails(c.auth.refresh(expired), ErrorCode.UNAUTHORIZED)
            assert "expired" in error.message
            # None of these ended the real login.
            assert c.events == []
            await c.auth.refresh(pair.refresh_token)

    run(main())


def test_concurrent_refreshes_with_one_token_never_both_succeed(tmp_path):
    """Two refreshes racing with the same token: at most one new pair is issued."""

    async def main():
        async with cluster(tmp_path) as c:
            pair = await registered(c.auth)
            results = await asyncio.gather(
                c.auth.refresh(pair.refresh_token),
                c.auth.refresh(pair.refresh_token),
                return_exceptions=True,
            )
            assert sum(isinstance(r, TokenPair) for r in results) <= 1
            for r in results:
                assert isinstance(r, TokenPair | ChatError), r

    run(main())


# --- access tokens ----------------------------------------------------------------------------


def test_expired_access_tokens_are_refused(tmp_path):
    """A token past its `exp` (beyond the small leeway) is refused with a hint to refresh."""

    async def main():
        async with cluster(tmp_path) as c:
            pair = await registered(c.auth)
            real = await c.auth.authenticate(pair.access_token)
            now = int(time.time())
            fresh = jwt.encode(
                claims(sub=real.user_id, sid=real.login_id), SECRET, algorithm="HS256"
            )
            assert (await c.auth.authenticate(fresh)).user_id == real.user_id  # crafted right
            stale = jwt.encode(
                claims(sub=real.user_id, sid=real.login_id, iat=now - 1000, exp=now - 60),
                SECRET,
                algorithm="HS256",
            )
            error = await fails(c.auth.authenticate(stale), ErrorCode.UNAUTHORIZED)
            assert "expired" in error.message

    run(main())


def test_forged_and_malformed_access_tokens_are_refused(tmp_path):
    """alg none, another key, another algorithm, missing or mistyped claims, other issuer, junk."""

    async def main():
        async with cluster(tmp_path) as c:
            pair = await registered(c.auth)
            real = await c.auth.authenticate(pair.access_token)
            good = claims(sub=real.user_id, sid=real.login_id)
            header, payload, _ = pair.access_token.split(".")
            forged = [
                jwt.encode(good, None, algorithm="none"),
                jwt.encode(good, "another secret, long enough to be 32+ bytes", algorithm="HS256"),
                jwt.encode(good, SECRET, algorithm="HS512"),  # the right key, another algorithm
                jwt.encode(claims(sub=real.user_id, sid=None), SECRET, algorithm="HS256"),
                jwt.encode(claims(sub=real.user_id, jti=None), SECRET, algorithm="HS256"),
                jwt.encode(claims(sub=None, sid=real.login_id), SECRET, algorithm="HS256"),
                jwt.encode(claims(sub=real.user_id, sid=real.login_id, iss=None), SECRET),
                jwt.encode(claims(sub=real.user_id, sid=real.login_id, iss="evil"), SECRET),
                jwt.encode(claims(sub=real.user_id, sid=7), SECRET, algorithm="HS256"),
                f"{header}.{payload}.",  # signature stripped
                f"{header}.{payload}.{'A' * 43}",
                "",
                "not a token",
                pair.refresh_token,
                pair.access_token + "x" * 5000,
            ]
            for token in forged:
                error = await fails(c.auth.authenticate(token), ErrorCode.UNAUTHORIZED)
                assert error.status == 401
            await c.auth.authenticate(pair.access_token)  # the real one still works

    run(main())


# --- logout and revocation across nodes -------------------------------------------------------


def test_logout_ends_the_login_at_once_on_every_node(tmp_path):
    """After logout, no node accepts the login's tokens, and the broker carried the event."""

    async def main():
        async with cluster(tmp_path, nodes=2) as c:
            node_a, node_b = c.nodes
            pair = await registered(node_a)
            other = await node_a.login("alice", PASSWORD, None)
            identity = await node_b.authenticate(pair.access_token)  # any node accepts it

            await node_a.logout(identity)
            assert c.events == [{"login_id": identity.login_id}]
            for node in (node_a, node_b):
                error = await fails(node.authenticate(pair.access_token), ErrorCode.UNAUTHORIZED)
                assert "ended" in error.message
            await fails(node_b.refresh(pair.refresh_token), ErrorCode.UNAUTHORIZED)
            # The user's other login is untouched, and a second logout is harmless.
            await node_b.authenticate(other.access_token)
            await node_a.logout(identity)

            # A node that starts later learns the ended login from storage.
            node_c = await c.add_node()
            await fails(node_c.authenticate(pair.access_token), ErrorCode.UNAUTHORIZED)
            await node_c.authenticate(other.access_token)

    run(main())


def test_a_reused_refresh_token_on_one_node_ends_the_login_on_the_other(tmp_path):
    """Theft detected on node B revokes the family on node A too."""

    async def main():
        async with cluster(tmp_path, nodes=2) as c:
            node_a, node_b = c.nodes
            first = await registered(node_a)
            second = await node_a.refresh(first.refresh_token)
            await node_a.authenticate(second.access_token)
            await fails(node_b.refresh(first.refresh_token), ErrorCode.UNAUTHORIZED)
            await fails(node_a.authenticate(second.access_token), ErrorCode.UNAUTHORIZED)

    run(main())


def test_ended_logins_missed_on_the_broker_are_read_back_from_storage(tmp_path):
    """With revocation_sync_seconds set, a node catches up on a login ended behind its back."""

    async def main():
        async with cluster(tmp_path, revocation_sync_seconds=0.05) as c:
            pair = await registered(c.auth)
            identity = await c.auth.authenticate(pair.access_token)
            # Ended in storage only, as when the broker dropped the event.
            await c.storage.end_login(identity.login_id, int(time.time() * 1000))
            # Polling the set the sync task fills; bounded by run()'s timeout.
            while identity.login_id not in c.auth.revoked:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            await fails(c.auth.authenticate(pair.access_token), ErrorCode.UNAUTHORIZED)

    run(main())


# --- brute force ------------------------------------------------------------------------------


def test_failed_logins_for_a_username_are_limited(tmp_path):
    """After N failures even the right password is refused for a while; others are unaffected."""

    async def main():
        async with cluster(tmp_path, login_failures_per_username=3) as c:
            await c.auth.register("alice", PASSWORD, "Alice")
            await c.auth.register("bob", PASSWORD, "Bob")
            for i in range(3):
                await fails(c.auth.login("alice", f"guess {i}", "10.0.0.1"), ErrorCode.UNAUTHORIZED)
            for username, address in (("alice", "10.0.0.1"), ("ALICE", "10.0.0.9")):
                limited = await fails(
                    c.auth.login(username, PASSWORD, address), ErrorCode.RATE_LIMITED
                )
                assert limited.status == 429
                assert 0 < limited.retry_after_ms <= 60_000
            await c.auth.login("bob", PASSWORD, "10.0.0.2")

    run(main())


def test_login_limits_are_shared_by_the_nodes(tmp_path):
    """The buckets live in storage: failures on one node count on another, and so does an
    address's every attempt."""

    async def main():
        async with cluster(
            tmp_path, nodes=2, login_failures_per_username=3, login_attempts_per_address=5
        ) as c:
            node_a, node_b = c.nodes
            await node_a.register("alice", PASSWORD, "Alice")
            for node in (node_a, node_b, node_a):
                await fails(node.login("alice", "guess", "10.0.0.1"), ErrorCode.UNAUTHORIZED)
            for node in (node_b, node_a):
                await fails(node.login("alice", PASSWORD, "10.0.0.2"), ErrorCode.RATE_LIMITED)
            # 10.0.0.1 tried three times, 10.0.0.2 twice: two more from .1 pass the address.
            await fails(node_b.login("bob", PASSWORD, "10.0.0.1"), ErrorCode.UNAUTHORIZED)
            await fails(node_a.login("bob", PASSWORD, "10.0.0.1"), ErrorCode.UNAUTHORIZED)
            limited = await fails(node_b.login("bob", PASSWORD, "10.0.0.1"), ErrorCode.RATE_LIMITED)
            assert 0 < limited.retry_after_ms <= 2000

    run(main())


def test_successful_logins_do_not_count_against_the_username(tmp_path):
    """Only failures consume the username's budget."""

    async def main():
        async with cluster(tmp_path, login_failures_per_username=2) as c:
            await c.auth.register("alice", PASSWORD, "Alice")
            for _ in range(5):
                await c.auth.login("alice", PASSWORD, None)
            await fails(c.auth.login("alice", "guess", None), ErrorCode.UNAUTHORIZED)
            await c.auth.login("alice", PASSWORD, None)

    run(main())


def test_every_login_from_an_address_counts(tmp_path):
    """The address budget is spent by any attempt, for any username; other addresses go on."""

    async def main():
        async with cluster(tmp_path, login_attempts_per_address=3) as c:
            await c.auth.register("alice", PASSWORD, "Alice")
            await c.auth.register("bob", PASSWORD, "Bob")
            await c.auth.login("alice", PASSWORD, "10.0.0.1")
            await fails(c.auth.login("nobody", PASSWORD, "10.0.0.1"), ErrorCode.UNAUTHORIZED)
            await c.auth.login("bob", PASSWORD, "10.0.0.1")
            limited = await fails(c.auth.login("bob", PASSWORD, "10.0.0.1"), ErrorCode.RATE_LIMITED)
            assert 0 < limited.retry_after_ms <= 2000
            await c.auth.login("bob", PASSWORD, "10.0.0.2")

    run(main())


def test_concurrent_guesses_cannot_outrun_the_limit(tmp_path):
    """Ten wrong passwords at once with a budget of 3: three are checked, seven are refused."""

    async def main():
        async with cluster(tmp_path, login_failures_per_username=3) as c:
            await c.auth.register("alice", PASSWORD, "Alice")
            results = await asyncio.gather(
                *(c.auth.login("alice", f"guess {i}", f"10.0.1.{i}") for i in range(10)),
                return_exceptions=True,
            )
            codes = sorted(r.code.value for r in results if isinstance(r, ChatError))
            assert codes == ["rate_limited"] * 7 + ["unauthorized"] * 3

    run(main())


# --- the secret -------------------------------------------------------------------------------


def test_a_generated_secret_is_private_and_survives_a_restart(tmp_path, caplog):
    """Without a secret, one is written (0600, folder created) and reused by the next start."""
    secret_file = tmp_path / "data" / "deep" / "auth_secret"

    async def first_start() -> tuple[str, str]:
        async with cluster(tmp_path, secret=None, secret_file=str(secret_file)) as c:
            pair = await registered(c.auth)
            return pair.access_token, pair.refresh_token

    with caplog.at_level(logging.INFO, logger="chatcore_auth.secret"):
        access, refresh = run(first_start())
    assert str(secret_file) in caplog.text
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    content = secret_file.read_bytes().strip()
    assert len(content) >= 64
    assert not [p for p in secret_file.parent.iterdir() if p.name.endswith(".tmp")]

    async def restart() -> None:
        async with cluster(tmp_path, secret=None, secret_file=str(secret_file)) as c:
            identity = await c.auth.authenticate(access)
            assert identity.user_id
            await c.auth.refresh(refresh)
            # The tokens are signed with the file's secret.
            jwt.decode(access, content, algorithms=["HS256"], options={"verify_exp": False})

    run(restart())
    assert secret_file.read_bytes().strip() == content


def test_the_secret_comes_from_the_environment(tmp_path, monkeypatch):
    """CHATCORE_AUTH__SECRET sets the signing key; no file is written."""
    monkeypatch.setenv("CHATCORE_AUTH__SECRET", "from-the-environment-" + "e" * 40)
    monkeypatch.chdir(tmp_path)

    async def main() -> None:
        app = App.from_config(
            None,
            overrides={
                "storage": {"url": f"sqlite+aiosqlite:///{tmp_path}/chat.db"},
                "auth": dict(FAST_AUTH),
            },
            entry_points=False,
            extra_plugins=[chatcore_sql, chatcore_auth, chatcore_memory],
        )
        await app.start(listen=False)
        try:
            pair = await registered(app.auth)
            jwt.decode(
                pair.access_token,
                "from-the-environment-" + "e" * 40,
                algorithms=["HS256"],
                issuer="chatcore",
            )
        finally:
            await app.stop()

    run(main())
    assert not (tmp_path / "data" / "auth_secret").exists()


def test_a_short_secret_is_a_warning_not_a_failure(tmp_path, caplog):
    """A short secret works (with a warning in the log, and no warning raised per token)."""

    async def main():
        async with cluster(tmp_path, secret="short") as c:
            pair = await registered(c.auth)
            await c.auth.authenticate(pair.access_token)

    with caplog.at_level(logging.WARNING, logger="chatcore_auth.backend"):
        run(main())
    assert "the auth secret is 5 bytes" in caplog.text


def test_a_secret_short_for_its_algorithm_is_a_warning_not_a_failure(tmp_path, caplog):
    """32 bytes or more, but less than HS512 wants: it works, with a warning in the log."""

    async def main():
        async with cluster(tmp_path, secret="s" * 40, algorithm="HS512") as c:
            pair = await registered(c.auth)
            await c.auth.authenticate(pair.access_token)

    with caplog.at_level(logging.WARNING, logger="chatcore_auth.backend"):
        run(main())
    assert "the auth secret is 40 bytes" in caplog.text


@pytest.mark.parametrize(
    ("auth", "key"),
    [
        ({"access_token_ttl": 10}, "auth.access_token_ttl"),
        ({"algorithm": "RS256"}, "auth.algorithm"),
        ({"algorithm": "none"}, "auth.algorithm"),
        ({"secret": ""}, "auth.secret"),
        ({"hash_memory_kib": 8, "hash_parallelism": 4}, "auth"),
        ({"refresh_token_ttl": 60, "access_token_ttl": 900}, "auth"),
        ({"login_username_refill_seconds": 0}, "auth.login_username_refill_seconds"),
        ({"no_such_key": 1}, "auth.no_such_key"),
    ],
)
def test_bad_auth_settings_are_config_errors(tmp_path, auth, key):
    """A wrong [auth] value fails at load with its dotted key."""
    with pytest.raises(ConfigError) as info:
        make_app(tmp_path, **auth)
    assert any(p.startswith(key) for p in info.value.problems), info.value.problems


# --- the event loop ---------------------------------------------------------------------------


def test_hashing_runs_off_the_event_loop(tmp_path):
    """While a costly hash runs, another task on the loop keeps running."""

    async def main():
        costly = {"hash_time_cost": 4, "hash_memory_kib": 32 * 1024, "hash_parallelism": 1}
        async with cluster(tmp_path, **costly) as c:
            ticks: list[float] = []
            done = asyncio.Event()

            async def ticker() -> None:
                while not done.is_set():
                    ticks.append(time.perf_counter())
                    await asyncio.sleep(0.001)

            task = asyncio.create_task(ticker())
            await asyncio.sleep(0)  # let it take its first tick
            started = time.perf_counter()
            await c.auth.hash_password(PASSWORD)
            took = time.perf_counter() - started
            done.set()
            await task
            during = [t for t in ticks if started <= t]
            gaps = [b - a for a, b in itertools.pairwise(during)]
            assert took > 0.02, f"the hash should be costly enough to measure ({took:.3f}s)"
            assert len(during) >= 5
            # Had the hash blocked the loop, one gap would be as long as the hash itself.
            assert max(gaps) < took / 2, (max(gaps), took)

    run(main())
