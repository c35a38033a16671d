"""Accounts on a device and how a client is assembled: logout ends the login, another user on the
same device starts from a clean store, a config of the wrong role or a missing device store
plugin is refused with a sentence saying so.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from engine_support import (
    NO_FLOOD_CONTROL,
    WAIT,
    Rest,
    engine_client,
    ready,
    signed_up,
    stored,
)

from chatcore.client.app import Client
from chatcore.client.errors import LoggedOut
from chatcore.client.events import MessageReceived
from chatcore.errors import StartupError
from chatcore.settings import ConfigError
from chatcore.testing.server import ServerProcess, start_server
from chatcore.testing.wsclient import new_ref

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with start_server(tmp_path_factory.mktemp("server"), {"websocket": NO_FLOOD_CONTROL}) as s:
        yield s


async def test_logout_ends_the_login_and_another_user_starts_from_a_clean_device(
    server: ServerProcess, tmp_path: Path
) -> None:
    """Logout: the connection is logged out, the server refuses the old refresh token, the
    history stays readable. Then another user logs in on the same device: nothing of the first
    user's is left in the store, and the new login connects."""
    bob = await Rest.new(server)
    async with engine_client(server, tmp_path / "device") as (client, log):
        ann_id = await signed_up(client)
        room_id = await bob.group("before", [ann_id])
        await ready(client)
        reply = await bob.call(
            "POST", f"/rooms/{room_id}/messages", json={"ref": new_ref(), "body": "hi ann"}
        )
        assert reply.status_code == 201, reply.text
        await log.wait(lambda log: len(log.received(room_id)) == 1)
        assert client.account is not None and client.account.tokens is not None
        old_refresh = client.account.tokens.refresh_token

        mark = log.mark()
        await client.logout()

        assert client.connection_state == "logged_out"
        await log.wait(lambda log: log.states(mark) == ["logged_out"])
        assert client.account is not None and client.account.tokens is None
        assert client.account.user.id == ann_id
        with pytest.raises(LoggedOut):
            _ = client.user
        async with httpx.AsyncClient(base_url=server.api, timeout=WAIT) as http:
            refused = await http.post("/auth/refresh", json={"refresh_token": old_refresh})
        assert refused.status_code == 401
        assert [m.body for m in await client.history(room_id)] == ["hi ann"]  # still readable
        kept = await client.store.get_account()
        assert kept is not None and kept.user.id == ann_id and kept.tokens is None

        carl_id = await signed_up(client)
        assert client.user.id == carl_id
        assert await client.rooms() == []
        assert await stored(client, room_id) == []
        await ready(client)
        assert not any(
            isinstance(e, MessageReceived) and e.message.room_id == room_id for e in log.since(mark)
        )


async def test_two_processes_of_one_device_share_the_login_without_spending_it_twice(
    server: ServerProcess, tmp_path: Path
) -> None:
    """The app refreshes the login; the push handler (another client on the same device
    store, still holding the old tokens) then needs a refresh too: it takes the app's new
    tokens instead of presenting the spent refresh token, which would end the login."""
    async with engine_client(server, tmp_path / "device") as (app, _):
        await signed_up(app)
        await ready(app)
        async with engine_client(server, tmp_path / "device", connect=False) as (handler, _):
            assert handler.api.tokens == app.api.tokens
            spent = handler.api.tokens

            renewed = await app.api.refresh()
            taken = await handler.api.refresh()

            assert spent is not None and renewed.refresh_token != spent.refresh_token
            assert taken.refresh_token == renewed.refresh_token
            assert (await handler.api.me()).id == app.user.id
            # The login is alive: the app can go on refreshing it.
            again = await app.api.refresh()
            assert again.refresh_token != renewed.refresh_token


async def test_a_server_config_is_not_a_client_config(tmp_path: Path) -> None:
    server_file = tmp_path / "server.toml"
    server_file.write_text('role = "server"\n[server]\nport = 8080\n')
    with pytest.raises(ConfigError, match="this file is for a server"):
        Client.from_config(server_file)
    no_role = tmp_path / "plain.toml"
    no_role.write_text("[client]\nserver_url = 'http://127.0.0.1:1'\n")
    with pytest.raises(ConfigError, match='role = "client"'):
        Client.from_config(no_role)


async def test_without_a_device_store_plugin_start_says_which_hook_and_section(
    tmp_path: Path,
) -> None:
    client = Client.from_config(
        None,
        overrides={"role": "client", "device_store": {"path": str(tmp_path / "client.db")}},
        entry_points=False,
    )
    with pytest.raises(StartupError, match=r"chatcore_device_store.*\[device_store\]"):
        await client.start()
    await client.close()  # closing a client that failed to start is harmless
