"""The users, logins and rooms of `make bench`, written straight into a server's database.

Registering and logging in over REST costs about 20 ms of server CPU per user (an argon2 hash,
a verify, a login row): half a minute per database for the 1,042 users of the main scenarios,
minutes for the 10,000 of the many-connections one. What `make bench` measures comes after a
login (the WebSocket handshake, `auth` with an access token, sends and deliveries), so the
database is filled before its servers start, with the rows that registration and login write
(`chatcore_sql.users.create` and `create_login`; one statement per table), rooms made through
the storage's own methods, and for each user an access token signed with the servers' secret for
that login, as `POST /auth/login` hands out. The accounts are real: the password hash is an
argon2id hash of the given password with the servers' parameters, so each user can also log in.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher, Type
from sqlalchemy import insert, text

from chatcore_auth.tokens import AccessTokens, hash_refresh_token, new_refresh_token
from chatcore_sql.rows import new_ids
from chatcore_sql.settings import SqlStorageSettings
from chatcore_sql.storage import SqlStorage, build_storage
from chatcore_sql.tables import logins, refresh_tokens, users

#: Alembic keeps a migration's context in module globals: one schema set-up at a time in a
#: process (the harness fills two databases side by side).
_ONE_AT_A_TIME = threading.Lock()


@dataclass(frozen=True)
class Accounts:
    tokens: dict[str, str]  # user name -> access token
    rooms: dict[str, str]  # room name -> room id
    seconds: float  # how long writing them took


def write_accounts(
    storage: Mapping[str, Any],
    auth: Mapping[str, Any],
    password: str,
    names: Sequence[str],
    groups: Mapping[str, Sequence[str]],
    directs: Mapping[str, tuple[str, str]],
) -> Accounts:
    """Users `names` with one login each, group rooms (name -> members, the first one the
    owner) and direct rooms (name -> the two users), in the database of the `[storage]` config
    section `storage` (its schema made if missing); `auth` is the servers' `[auth]` section
    (secret, hash parameters, token lifetimes)."""
    with _ONE_AT_A_TIME:
        return asyncio.run(_write(storage, auth, password, names, groups, directs))


async def _write(
    settings: Mapping[str, Any],
    auth: Mapping[str, Any],
    password: str,
    names: Sequence[str],
    groups: Mapping[str, Sequence[str]],
    directs: Mapping[str, tuple[str, str]],
) -> Accounts:
    started = time.monotonic()
    hasher = PasswordHasher(
        time_cost=auth["hash_time_cost"],
        memory_cost=auth["hash_memory_kib"],
        parallelism=auth["hash_parallelism"],
        type=Type.ID,
    )
    # One hash for all: in real life each has its own salt, which changes nothing measured here.
    password_hash = await asyncio.to_thread(hasher.hash, password)
    now = int(time.time() * 1000)
    ids = dict(zip(names, new_ids(len(names)), strict=True))
    login_ids = dict(zip(names, new_ids(len(names)), strict=True))
    storage = build_storage(SqlStorageSettings(**settings))
    assert isinstance(storage, SqlStorage)
    await storage.start()  # makes the schema
    try:
        async with storage.engine.begin() as conn:
            await conn.execute(
                insert(users),
                [
                    {
                        "id": ids[name],
                        "username": name,
                        "username_lower": name.lower(),
                        "display_name": name,
                        "display_name_lower": name.lower(),
                        "password_hash": password_hash,
                        "created_ts": now,
                    }
                    for name in names
                ],
            )
            await conn.execute(
                insert(logins),
                [
                    {"id": login_ids[name], "user_id": ids[name], "created_ts": now}
                    for name in names
                ],
            )
            await conn.execute(
                insert(refresh_tokens),
                [
                    {
                        "token_hash": hash_refresh_token(new_refresh_token()),
                        "login_id": login_ids[name],
                        "created_ts": now,
                        "expires_ts": now + auth["refresh_token_ttl"] * 1000,
                    }
                    for name in names
                ],
            )
        rooms = {}
        for room, members in groups.items():
            made = await storage.create_group_room(
                ids[members[0]], room, [ids[m] for m in members[1:]], now
            )
            rooms[room] = made.id
        for room, (a, b) in directs.items():
            made, _ = await storage.create_direct_room(ids[a], ids[b], now)
            rooms[room] = made.id
    finally:
        await storage.close()
    signer = AccessTokens(
        auth["secret"].strip().encode(),
        auth.get("algorithm", "HS256"),
        auth.get("issuer", "chatcore"),
        auth["access_token_ttl"],
    )
    tokens = {name: signer.issue(ids[name], login_ids[name]) for name in names}
    return Accounts(tokens, rooms, time.monotonic() - started)


def drop_schema(url: str, schema: str) -> None:
    """Remove a PostgreSQL schema a run made, with everything in it."""

    async def drop() -> None:
        storage = build_storage(SqlStorageSettings(url=url, schema=schema))
        assert isinstance(storage, SqlStorage)
        await storage.connect()  # no schema work
        try:
            async with storage.engine.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        finally:
            await storage.close()

    asyncio.run(drop())
