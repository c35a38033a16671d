"""The engine's actions for a user interface: people (names, contacts, invitations, blocks),
rooms opened or created, edits and deletions, sticker packs, profile, server settings and the
device's preferences. Each updates the device store and announces the change as an event, so a
UI only reacts to events.

Real `chatcore serve` processes and device stores on files; no part is mocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from engine_support import (
    EventLog,
    engine_client,
    ready,
    signed_up,
)
from PIL import Image

from chatcore.client.app import Client
from chatcore.client.errors import ApiError, ClientError
from chatcore.client.events import ContactChanged, MessageUpdated, RoomChanged
from chatcore.testing.server import ServerProcess, start_server

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with start_server(tmp_path_factory.mktemp("server")) as s:
        yield s


@contextlib.asynccontextmanager
async def connected_pair(
    server: ServerProcess, folder: Path
) -> AsyncIterator[tuple[Client, EventLog, Client, EventLog]]:
    """Ann and Bob, signed up and connected, each with the log of their events."""
    async with (
        engine_client(server, folder / "ann") as (ann, ann_log),
        engine_client(server, folder / "bob") as (bob, bob_log),
    ):
        await signed_up(ann)
        await signed_up(bob)
        await ready(ann)
        await ready(bob)
        yield ann, ann_log, bob, bob_log


def contact_events(log: EventLog, mark: int = 0) -> list[str]:
    return [e.event for e in log.since(mark) if isinstance(e, ContactChanged)]


async def test_names_come_from_the_device_then_the_server(
    server: ServerProcess, tmp_path: Path
) -> None:
    """`users()` answers from the device store, asks the server for ids it lacks (and keeps
    them), leaves out an id nobody knows, and answers offline from what it kept."""
    async with (
        engine_client(server, tmp_path / "ann") as (ann, _),
        engine_client(server, tmp_path / "bob") as (bob, _),
    ):
        ann_id = await signed_up(ann)
        bob_id = await signed_up(bob)
        assert (await ann.users([ann_id]))[ann_id].username == ann.user.username  # kept at login
        found = await ann.users([bob_id, "u-no-such-user", bob_id])
        assert list(found) == [bob_id] and found[bob_id].username == bob.user.username
        assert await ann.store.get_users([bob_id]) == found  # kept
    offline = Client.for_server("http://127.0.0.1:1", tmp_path / "ann")
    await offline.start(connect=False)
    try:
        assert (await offline.users([bob_id]))[bob_id].username == found[bob_id].username
    finally:
        await offline.close()


async def test_invitations_contacts_and_blocks(server: ServerProcess, tmp_path: Path) -> None:
    """Invite, cancel, invite again, accept, remove, block and unblock: after each call the
    device store holds the server's lists, and a `ContactChanged` says what happened."""
    async with connected_pair(server, tmp_path) as (ann, ann_log, bob, bob_log):
        bob_id = bob.user.id
        assert [u.id for u in await ann.search_users(bob.user.username)] == [bob_id]
        with pytest.raises(ClientError, match="exactly one"):
            await ann.invite()

        first = await ann.invite(username=bob.user.username)
        assert first.status == "pending"
        await ann_log.wait(lambda log: "invited" in contact_events(log))
        assert [i.id for i in (await ann.invitations())[1]] == [first.id]
        await ann.decline_invitation(first.id)  # cancelled by its sender
        assert await ann.invitations() == ([], [])

        second = await ann.invite(bob_id)
        await bob_log.wait(lambda log: "invited" in contact_events(log))
        incoming, _ = await bob.invitations()
        assert [i.id for i in incoming] == [second.id]  # kept by bob's device from the event
        mark = ann_log.mark()
        contact = await bob.accept_invitation(second.id)
        assert contact.user.id == ann.user.id
        assert [c.user.id for c in await bob.contacts()] == [ann.user.id]
        await ann_log.wait(lambda log: "accepted" in contact_events(log, mark))
        assert [c.user.id for c in await ann.contacts()] == [bob_id]

        mark = ann_log.mark()
        await ann.block(bob_id)
        assert await ann.contacts() == []
        assert [u.id for u in await ann.blocked()] == [bob_id]
        await ann_log.wait(lambda log: "blocked" in contact_events(log, mark))
        blocked = [e for e in ann_log.since(mark) if isinstance(e, ContactChanged)]
        assert blocked[-1].user is not None and blocked[-1].user.id == bob_id
        hidden = await bob.invite(ann.user.id)  # the block is not revealed to bob
        assert hidden.status == "pending" and (await ann.invitations())[0] == []
        await ann.unblock(bob_id)
        assert await ann.blocked() == []
        await ann_log.wait(lambda log: "unblocked" in contact_events(log, mark))
        mark = ann_log.mark()
        await ann.remove_contact(bob_id)  # no contact any more: still a clean 204
        await ann_log.wait(lambda log: "removed" in contact_events(log, mark))


async def test_rooms_edits_and_deletions(server: ServerProcess, tmp_path: Path) -> None:
    """A direct room opened and a group created are stored and announced; an edit and a
    deletion change the stored message in place, here and on the other side."""
    async with connected_pair(server, tmp_path) as (ann, ann_log, bob, bob_log):
        bob_id = bob.user.id
        direct = await ann.open_direct(bob_id)
        assert direct.room.kind == "direct" and set(direct.room.member_ids) == {
            ann.user.id,
            bob_id,
        }
        assert (await ann.open_direct(bob_id)).room.id == direct.room.id  # the same room
        assert any(
            isinstance(e, RoomChanged) and e.room.id == direct.room.id for e in ann_log.events
        )
        group = await ann.create_group("lunch", [bob_id])
        assert (await ann.room(group.room.id)) is not None and group.room.name == "lunch"

        entry = await ann.send(direct.room.id, "helo")
        message = await ann.wait_sent(entry.ref)
        mark = bob_log.mark()
        edited = await ann.edit(direct.room.id, message.id, "hello")
        assert edited.body == "hello" and edited.edited_ts is not None
        stored = await ann.store.get_message(direct.room.id, message.id)
        assert stored is not None and stored.body == "hello"
        await ann_log.wait(
            lambda log: any(
                isinstance(e, MessageUpdated) and e.message.body == "hello" for e in log.events
            )
        )
        await bob_log.wait(
            lambda log: any(
                isinstance(e, MessageUpdated) and e.message.body == "hello" for e in log.since(mark)
            )
        )
        deleted = await ann.delete(direct.room.id, message.id)
        assert deleted is not None and deleted.deleted and deleted.body == ""
        assert (await ann.history(direct.room.id))[0].deleted
        await bob_log.wait(
            lambda log: any(
                isinstance(e, MessageUpdated) and e.message.deleted for e in log.since(mark)
            )
        )
        missing = await _error(bob.delete(direct.room.id, "m-no-such-message"))
        assert missing is not None and missing.status == 404
        forbidden = await _error(bob.edit(direct.room.id, message.id, "not mine"))
        assert forbidden is not None and forbidden.status in (403, 409)


async def test_sticker_packs_profile_and_settings(server: ServerProcess, tmp_path: Path) -> None:
    """Sticker packs come from the server; the profile (display name, avatar) changes on the
    server and on the device; server settings keep a copy for offline; preferences are the
    device's own."""
    pack = tmp_path / "Cats"
    pack.mkdir()
    Image.new("RGB", (16, 16), "orange").save(pack / "a.png")
    command = [sys.executable, "-m", "chatcore", "stickers", "import", str(pack)]
    done = await asyncio.to_thread(
        subprocess.run,
        [*command, "--config", str(server.config_path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=server.folder,
    )
    assert done.returncode == 0, done.stderr
    avatar = tmp_path / "me.png"
    Image.new("RGB", (32, 32), "blue").save(avatar)
    async with engine_client(server, tmp_path / "ann") as (ann, _):
        ann_id = await signed_up(ann)
        packs = await ann.sticker_packs()
        assert [p.name for p in packs] == ["Cats"] and len(packs[0].stickers) == 1

        user = await ann.set_profile(display_name="Ann A.", avatar=avatar)
        assert user.display_name == "Ann A." and user.avatar_media_id
        assert (await ann.api.me()).display_name == "Ann A."
        assert ann.user.display_name == "Ann A."
        assert (await ann.users([ann_id]))[ann_id].display_name == "Ann A."

        assert await ann.account_settings() == {}
        after = await ann.update_account_settings({"push": {"group": "mentions"}})
        assert after == {"push": {"group": "mentions"}}
        bad = await _error(ann.update_account_settings({"push": {"group": "loud"}}))
        assert bad is not None and (bad.status, bad.code) == (400, "bad_request")
        assert await ann.api.settings() == after  # nothing saved by the refused patch

        assert await ann.preferences() == {}
        assert await ann.set_preferences({"theme": "nord"}) == {"theme": "nord"}
        assert await ann.set_preferences({"compact": True}) == {"theme": "nord", "compact": True}
    offline = Client.for_server("http://127.0.0.1:1", tmp_path / "ann")
    await offline.start(connect=False)
    try:
        # No server to ask (and no login for this URL): the copies kept on the device.
        assert await offline.account_settings() == after
        assert await offline.preferences() == {"theme": "nord", "compact": True}
    finally:
        await offline.close()


async def _error(call: object) -> ApiError | None:
    """The ApiError `call` (an awaitable) raised, None when it succeeded."""
    try:
        await call  # type: ignore[misc]
    except ApiError as exc:
        return exc
    return None
