"""The terminal client's side screens, driven with Textual's Pilot over real clients and a real
server: contacts (finding, inviting, presence, invitations, blocks, a direct room), search over
the device store, settings (profile, theme, push settings), the sticker picker, the media viewer
and a new group.

Each screen runs alone in a minimal host app (`screens_support.Host`) over a started
`chatcore.Client`; the other people are engine clients of their own. Every wait polls the
widgets with a deadline and fails saying what they showed.
"""

from __future__ import annotations

import asyncio
import io
import json
import secrets
import string
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from engine_support import NO_FLOOD_CONTROL, WAIT
from PIL import Image as PILImage
from screens_support import (
    befriend,
    hosted,
    options,
    person,
    rows,
    text,
    until,
    until_rows,
    until_text,
)
from textual.widgets import DataTable, Input, OptionList, Select, SelectionList, Static, Switch
from textual_image.widget._base import Image as ImageWidget
from tui_support import poll

from chatcore.client.app import Client
from chatcore.client.models import Message
from chatcore.testing.server import ServerProcess, start_server
from chatcore.testing.tcp_proxy import TcpProxy
from chatcore_tui.screens.contacts import ContactsScreen
from chatcore_tui.screens.media import MediaViewer
from chatcore_tui.screens.new_group import NewGroupScreen
from chatcore_tui.screens.search import SearchScreen
from chatcore_tui.screens.settings import SettingsScreen
from chatcore_tui.screens.stickers import NO_PACKS, StickerPicker

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

CLI = [sys.executable, "-m", "chatcore"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with start_server(tmp_path_factory.mktemp("server"), {"websocket": NO_FLOOD_CONTROL}) as s:
        yield s


def tag() -> str:
    """Letters no other user of the server has in their name (typed key by key)."""
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(8))


@asynccontextmanager
async def people(server: ServerProcess, folder: Path, *names: str) -> AsyncIterator[list[Client]]:
    """Connected clients of new users with these display names; closed at the end."""
    clients: list[Client] = []
    try:
        for name in names:
            clients.append(await person(server, folder / name, name))
        yield clients
    finally:
        for client in clients:
            await client.close()


def table_of(screen: Any, table_id: str) -> DataTable[Any]:
    return screen.query_one(f"#{table_id}", DataTable)


def column(table: DataTable[Any], index: int) -> list[str]:
    return [row[index] for row in rows(table)]


def shows(table: DataTable[Any]) -> Callable[[], str]:
    return lambda: f"#{table.id}: {rows(table)}"


# --- contacts ----------------------------------------------------------------------------------


async def test_finding_someone_inviting_them_and_seeing_their_presence(
    server: ServerProcess, tmp_path: Path
) -> None:
    """Ann finds Bob by name and invites him (keys only); Bob accepts on his device: Ann's
    screen shows him as a contact, online while his client is connected, offline after."""
    bob_name = "bobby" + tag()
    async with people(server, tmp_path, "ann" + tag(), bob_name) as (ann, bob):
        screen = ContactsScreen(ann)
        async with hosted(ann, screen) as (app, pilot):
            contacts = table_of(screen, "contacts-table")
            await until_text(pilot, screen.query_one("#contacts-hint", Static), "No contacts yet")
            await pilot.press("3")
            assert screen.query_one("#find-query", Input).has_focus
            await pilot.press(*bob_name[:9])
            found = table_of(screen, "find-table")
            await until(pilot, lambda: column(found, 0) == [bob_name], shows(found))
            await pilot.press("enter")  # the query at once, and the focus on the results
            await until(pilot, lambda: found.has_focus, lambda: f"focus {app.focused}")
            await pilot.press("i")

            outgoing = table_of(screen, "outgoing-table")
            await until(pilot, lambda: column(outgoing, 0) == [bob_name], shows(outgoing))
            await until(pilot, lambda: column(found, 2) == ["invited"], shows(found))
            await poll(lambda: _incoming_from(bob, ann.user.id), "Bob's device has the invitation")
            [invitation] = (await bob.invitations())[0]
            await bob.accept_invitation(invitation.id)

            online = ["●", bob_name, bob.user.username, "online"]
            await until_rows(pilot, contacts, lambda shown: shown == [online])
            assert rows(outgoing) == []
            await bob.close()
            offline = ["○", bob_name, bob.user.username, "offline"]
            await until_rows(pilot, contacts, lambda shown: shown == [offline])
            await pilot.press("escape")
            await until(pilot, lambda: app.results == [None], lambda: app.results)


async def _incoming_from(client: Client, user_id: str) -> bool:
    incoming, _ = await client.invitations()
    return any(i.from_user.id == user_id for i in incoming)


async def test_accepting_an_incoming_invitation_and_cancelling_an_outgoing_one(
    server: ServerProcess, tmp_path: Path
) -> None:
    """Carol's invitation shows under Incoming and is accepted with the mouse; Ann's own
    invitation to Dave shows under Outgoing and is cancelled with `x`: Dave has none left."""
    ann_name, carol_name, dave_name = "ann" + tag(), "carol" + tag(), "dave" + tag()
    async with people(server, tmp_path, ann_name, carol_name, dave_name) as (ann, carol, dave):
        screen = ContactsScreen(ann)
        async with hosted(ann, screen) as (_, pilot):
            await pilot.press("2")
            incoming = table_of(screen, "incoming-table")
            await carol.invite(ann.user.id)
            await until(pilot, lambda: column(incoming, 0) == [carol_name], shows(incoming))
            assert "Invitations (1)" in str(screen.query_one("#tabs").get_tab("invitations").label)
            await pilot.click("#accept")
            contacts = table_of(screen, "contacts-table")
            await until(pilot, lambda: column(contacts, 1) == [carol_name], shows(contacts))
            assert rows(incoming) == []
            assert [c.user.id for c in await carol.api.contacts()] == [ann.user.id]

            outgoing = table_of(screen, "outgoing-table")
            await ann.invite(dave.user.id)
            await until(pilot, lambda: column(outgoing, 0) == [dave_name], shows(outgoing))
            await poll(lambda: _incoming_from(dave, ann.user.id), "Dave's device has it")
            outgoing.focus()
            await pilot.press("x")
            await until(pilot, lambda: rows(outgoing) == [], shows(outgoing))
            assert (await dave.api.invitations())[0] == []


async def test_blocking_unblocking_and_opening_a_direct_room(
    server: ServerProcess, tmp_path: Path
) -> None:
    """Blocking Erin takes her off the contacts and lists her under Blocked; unblocking empties
    it. Opening a chat with Frank dismisses the screen with their direct room's id."""
    ann_name, erin_name, frank_name = "ann" + tag(), "erin" + tag(), "frank" + tag()
    async with people(server, tmp_path, ann_name, erin_name, frank_name) as (ann, erin, frank):
        await befriend(ann, erin)
        await befriend(ann, frank)
        screen = ContactsScreen(ann)
        async with hosted(ann, screen) as (app, pilot):
            contacts = table_of(screen, "contacts-table")
            both = [erin_name, frank_name]
            await until(pilot, lambda: sorted(column(contacts, 1)) == both, shows(contacts))
            contacts.move_cursor(row=contacts.get_row_index(erin.user.id))
            await pilot.press("b")  # asks for the key again: blocking ends the contact
            await pilot.pause()
            assert sorted(column(contacts, 1)) == both
            await pilot.press("b")
            await until(pilot, lambda: column(contacts, 1) == [frank_name], shows(contacts))
            await pilot.press("4")
            blocked = table_of(screen, "blocked-table")
            await until(pilot, lambda: column(blocked, 0) == [erin_name], shows(blocked))
            assert [u.id for u in await ann.blocked()] == [erin.user.id]
            await pilot.press("u")
            await until(pilot, lambda: rows(blocked) == [], shows(blocked))
            assert await ann.blocked() == []

            await pilot.press("1")
            assert contacts.has_focus
            await pilot.press("o")
            await until(pilot, lambda: len(app.results) == 1, lambda: app.results)
            room = await ann.api.room(app.results[0])
            assert room.kind == "direct"
            assert set(room.member_ids) == {ann.user.id, frank.user.id}


# --- search ------------------------------------------------------------------------------------


async def test_search_finds_stored_messages_and_returns_the_chosen_one(
    server: ServerProcess, tmp_path: Path
) -> None:
    """Messages on Ann's device are found as she types (room, sender, text); Enter moves to
    the results and Enter again dismisses with the message."""
    ann_name, bob_name = "ann" + tag(), "bobby" + tag()
    word = "zebra" + tag()
    async with people(server, tmp_path, ann_name, bob_name) as (ann, bob):
        room = await bob.open_direct(ann.user.id)
        entry = await bob.send(room.room.id, f"a {word} crossed the road")
        await bob.send(room.room.id, "nothing to see here")
        sent = await asyncio.wait_for(bob.wait_sent(entry.ref), WAIT)
        await poll(lambda: _found(ann, word), "Ann's device holds Bob's message")

        screen = SearchScreen(ann)
        async with hosted(ann, screen) as (app, pilot):
            results = screen.query_one("#search-results", OptionList)
            await pilot.press(*word)
            await until(
                pilot,
                lambda: len(options(results)) == 1 and bob_name in options(results)[0],
                lambda: options(results),
            )
            [line] = options(results)
            assert f"{bob_name} · {bob_name}" in line  # the direct room's name, the sender
            assert f"a {word} crossed the road" in line
            await pilot.press("enter")
            assert results.has_focus
            await pilot.press("enter")
            await until(pilot, lambda: app.results == [sent], lambda: app.results)


async def _found(client: Client, word: str) -> bool:
    return bool(await client.search(word))


# --- settings ----------------------------------------------------------------------------------


async def test_settings_profile_theme_and_push(server: ServerProcess, tmp_path: Path) -> None:
    """The display name is saved on the server; the theme applies at once and is kept in the
    device's preferences; a room's level "none" (muted) is written to the server's push
    settings; a bad do-not-disturb time (the form's check) and a bad time zone (the server's)
    show why and save nothing."""
    async with people(server, tmp_path, "ann" + tag()) as (ann,):
        group = await ann.create_group("Noisy " + tag())
        screen = SettingsScreen(ann)
        async with hosted(ann, screen) as (app, pilot):
            push_status = screen.query_one("#push-status", Static)
            await until(pilot, lambda: text(push_status) == "", lambda: text(push_status))
            name = screen.query_one("#display-name", Input)
            assert name.value == ann.user.display_name

            name.value = "Ann Renamed"
            await pilot.click("#save-profile")
            profile_status = screen.query_one("#profile-status", Static)
            await until_text(pilot, profile_status, "Profile saved.")
            assert (await ann.api.me()).display_name == "Ann Renamed"

            theme = screen.query_one("#theme", Select)
            other = next(t for t in sorted(app.available_themes) if t != app.theme)
            theme.value = other
            await until(pilot, lambda: app.theme == other, lambda: app.theme)
            await poll(lambda: _preferred(ann, other), f"the theme {other} kept")

            rooms = screen.query_one("#room-choice", Select)
            await until(pilot, lambda: _has_option(rooms, group.room.id), lambda: rooms._options)
            rooms.value = group.room.id
            await pilot.pause()
            screen.query_one("#room-level", Select).value = "none"
            await pilot.press("ctrl+s")
            await until_text(pilot, push_status, "Notification settings saved.")
            saved = (await ann.api.settings())["push"]
            assert saved["rooms"] == {group.room.id: "none"}

            screen.query_one("#dnd-on", Switch).value = True
            screen.query_one("#dnd-start", Input).value = "25:00"
            screen.query_one("#dnd-end", Input).value = "07:30"
            save = screen.query_one("#save-push")
            save.scroll_visible(animate=False)  # below the fold at 40 lines, as for a person
            await pilot.pause()
            await pilot.click(save)
            await until_text(pilot, push_status, "the start must be a time as HH:MM")
            screen.query_one("#dnd-start", Input).value = "22:00"
            screen.query_one("#dnd-timezone", Input).value = "Mars/Olympus_Mons"
            await pilot.press("ctrl+s")
            await until_text(pilot, push_status, "push.dnd.timezone")
            assert "IANA time zone" in text(push_status)
            assert (await ann.api.settings())["push"] == saved  # nothing saved


async def _preferred(client: Client, theme: str) -> bool:
    return (await client.preferences()).get("theme") == theme


def _has_option(select: Select[Any], value: str) -> bool:
    return any(option_value == value for _, option_value in select._options)


# --- stickers ----------------------------------------------------------------------------------


def import_pack(server: ServerProcess, folder: Path) -> None:
    done = subprocess.run(
        [*CLI, "stickers", "import", str(folder), "--config", str(server.config_path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=server.folder,
    )
    assert done.returncode == 0, done.stderr


def png(size: int, color: str) -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", (size, size), color).save(buffer, "PNG")
    return buffer.getvalue()


async def test_sticker_picker_lists_the_packs_and_returns_the_chosen_sticker(
    server: ServerProcess, tmp_path: Path
) -> None:
    """Before any pack is imported the picker says there is none; after, it lists the pack's
    stickers with their emoji, and Enter returns the highlighted sticker's id."""
    async with people(server, tmp_path, "ann" + tag()) as (ann,):
        if not await ann.sticker_packs():
            empty = StickerPicker(ann)
            async with hosted(ann, empty) as (app, pilot):
                status = empty.query_one("#stickers-status", Static)
                await until_text(pilot, status, NO_PACKS)
                await pilot.press("escape")
                await until(pilot, lambda: app.results == [None], lambda: app.results)

        folder = tmp_path / "Happy Cats"
        folder.mkdir()
        (folder / "a.png").write_bytes(png(32, "orange"))
        (folder / "b.png").write_bytes(png(32, "purple"))
        listed = [{"file": "a.png", "emoji": "😺"}, {"file": "b.png"}]
        (folder / "pack.json").write_text(json.dumps({"name": "Happy Cats", "stickers": listed}))
        await asyncio.to_thread(import_pack, server, folder)
        packs = await ann.sticker_packs()
        in_order = [s.id for p in packs for s in p.stickers]  # as the picker lists them
        [cats] = [p for p in packs if p.name == "Happy Cats"]
        assert [s.emoji for s in cats.stickers] == ["😺", None]

        picker = StickerPicker(ann)
        async with hosted(ann, picker) as (app, pilot):
            stickers = picker.query_one("#stickers", OptionList)
            await until(pilot, lambda: len(options(stickers)) >= 3, lambda: options(stickers))
            lines = options(stickers)
            assert any(line.startswith("Happy Cats") for line in lines)
            assert any("😺" in line and cats.stickers[0].id in line for line in lines)
            assert any(cats.stickers[1].id in line for line in lines)
            await pilot.press("down", "enter")  # from the first sticker to the second
            await until(pilot, lambda: app.results == [in_order[1]], lambda: app.results)


# --- media -------------------------------------------------------------------------------------


async def _received_media(client: Client, room_id: str) -> list[Message]:
    return [m for m in await client.history(room_id) if m.media_id is not None]


# textual-image 0.12 renders with Pillow's `getdata`, deprecated in Pillow 13 (a warning at
# run time, an error under this suite's `filterwarnings = error`): theirs to change, not ours.
@pytest.mark.filterwarnings("ignore:Image.Image.getdata is deprecated:DeprecationWarning")
async def test_media_viewer_previews_an_image_and_describes_another_file(
    server: ServerProcess, tmp_path: Path
) -> None:
    """A PNG Bob sent opens in Ann's viewer as an image widget (from the media cache); a PDF
    shows its type, size and cached path, with no preview."""
    async with people(server, tmp_path, "ann" + tag(), "bob" + tag()) as (ann, bob):
        room = (await bob.open_direct(ann.user.id)).room.id
        picture = tmp_path / "sunset.png"
        picture.write_bytes(png(64, "orange"))
        document = tmp_path / "notes.pdf"
        document.write_bytes(
            b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
        )
        for path in (picture, document):
            entry = await bob.send_file(room, path)
            await asyncio.wait_for(bob.wait_sent(entry.ref), WAIT)

        async def both() -> bool:
            return len(await _received_media(ann, room)) == 2

        await poll(both, "Ann's device holds both files")
        image_message, pdf_message = sorted(await _received_media(ann, room), key=lambda m: m.seq)

        viewer = MediaViewer(ann, image_message)
        async with hosted(ann, viewer) as (app, pilot):
            info = viewer.query_one("#media-info", Static)
            await until(pilot, lambda: bool(viewer.query(ImageWidget)), lambda: text(info))
            assert "image/png" in text(info)
            await pilot.press("escape")
            await until(pilot, lambda: app.results == [None], lambda: app.results)

        viewer = MediaViewer(ann, pdf_message)
        async with hosted(ann, viewer) as (app, pilot):
            info = viewer.query_one("#media-info", Static)
            await until(pilot, lambda: "application/pdf" in text(info), lambda: text(info))
            size = document.stat().st_size
            assert f"{size} B" in text(info)
            cached = await ann.open_media(pdf_message.media_id or "")
            assert cached.path in text(info)
            assert cached.size == size
            assert not viewer.query(ImageWidget)
            assert f"(media {pdf_message.media_id})" in text(info)
            assert text(viewer.query_one("#media-title", Static)) == "A file (application/pdf)"


# --- new group ---------------------------------------------------------------------------------


async def test_new_group_with_two_contacts(server: ServerProcess, tmp_path: Path) -> None:
    """A name typed, two of three contacts picked with the keyboard, Ctrl+S: the screen is
    dismissed with the new room's id, and the server's room has exactly those members."""
    names = ["ann" + tag(), "bea" + tag(), "cid" + tag(), "dot" + tag()]
    async with people(server, tmp_path, *names) as (ann, bea, cid, dot):
        for other in (bea, cid, dot):
            await befriend(ann, other)
        screen = NewGroupScreen(ann)
        async with hosted(ann, screen) as (app, pilot):
            members = screen.query_one("#group-members", SelectionList)
            await until(pilot, lambda: members.option_count == 3, lambda: options(members))
            group_name = "trip" + tag()
            await pilot.press(*group_name)
            await pilot.press("enter")  # to the members
            assert members.has_focus
            await pilot.press("space", "down", "space")
            assert sorted(members.selected) == sorted([bea.user.id, cid.user.id])
            await pilot.press("ctrl+s")
            await until(pilot, lambda: len(app.results) == 1, lambda: app.results)
            room = await ann.api.room(app.results[0])
            assert room.kind == "group" and room.name == group_name
            assert set(room.member_ids) == {ann.user.id, bea.user.id, cid.user.id}


async def test_new_group_needs_a_name(server: ServerProcess, tmp_path: Path) -> None:
    async with people(server, tmp_path, "ann" + tag()) as (ann,):
        screen = NewGroupScreen(ann)
        async with hosted(ann, screen) as (app, pilot):
            status = screen.query_one("#group-status", Static)
            await pilot.click("#create")
            await until_text(pilot, status, "needs a name")
            await pilot.press("escape")
            await until(pilot, lambda: app.results == [None], lambda: app.results)


# --- offline -------------------------------------------------------------------------------------


async def test_offline_what_is_local_works_and_the_rest_says_why(
    server: ServerProcess, tmp_path: Path
) -> None:
    """With the server out of reach (its REST port behind a proxy that now refuses): the
    settings show the push settings last seen, the theme still applies and is kept, saving the
    profile or the push settings says the server cannot be reached; the contacts screen shows
    the stored contacts and says why people cannot be searched."""
    async with TcpProxy("127.0.0.1", server.config["server"]["port"]) as rest:
        async with people(server, tmp_path, "bob" + tag()) as (bob,):
            ann = await person(rest.url("http"), tmp_path / "ann", "ann" + tag())
            try:
                await befriend(ann, bob)
                await ann.update_account_settings({"push": {"group": "mentions"}})
                rest.refuse()
                await asyncio.wait_for(rest.cut(), WAIT)

                settings = SettingsScreen(ann)
                async with hosted(ann, settings) as (app, pilot):
                    push_status = settings.query_one("#push-status", Static)
                    group = settings.query_one("#push-group", Select)
                    await until(pilot, lambda: group.value == "mentions", lambda: text(push_status))
                    other = next(t for t in sorted(app.available_themes) if t != app.theme)
                    settings.query_one("#theme", Select).value = other
                    await until(pilot, lambda: app.theme == other, lambda: app.theme)
                    await poll(lambda: _preferred(ann, other), f"the theme {other} kept")

                    settings.query_one("#display-name", Input).value = "Offline Ann"
                    await pilot.click("#save-profile")
                    profile_status = settings.query_one("#profile-status", Static)
                    await until_text(
                        pilot, profile_status, "not saved: The server cannot be reached"
                    )
                    await pilot.press("ctrl+s")
                    await until_text(pilot, push_status, "Not saved: The server cannot be reached")

                contacts = ContactsScreen(ann)
                async with hosted(ann, contacts) as (_, pilot):
                    table = table_of(contacts, "contacts-table")
                    bob_row = [bob.user.username]
                    await until_rows(pilot, table, lambda shown: [r[2] for r in shown] == bob_row)
                    await pilot.press("3", *"bob")
                    hint = contacts.query_one("#find-hint", Static)
                    await until_text(pilot, hint, "People cannot be searched now")
            finally:
                await ann.close()
