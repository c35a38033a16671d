"""The terminal client, driven like a person drives it: Textual's `run_test` and `Pilot`.

One user is the app (`ChatApp` on a real `chatcore.Client`), the other acts over REST or
through the client engine; both talk to a real `chatcore serve` process shared by the module.
Each test asserts on what the widgets show, waiting for it with a deadline (`wait_until`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from engine_support import (
    NO_FLOOD_CONTROL,
    EventLog,
    Rest,
    engine_client,
    ready,
    signed_up,
    synced,
)
from faults_support import proxied_server
from PIL import Image
from textual.binding import Binding
from textual.widgets import DataTable, Input, Static
from tui_support import (
    SIZE,
    chat_app,
    click_room,
    dialog_texts,
    main_screen,
    poll,
    room_texts,
    signed_up_device,
    text_of,
    toasts,
    type_text,
    wait_until,
)

from chatcore.client.app import Client
from chatcore.client.events import OutboxChanged
from chatcore.client.models import Message, PushNotice
from chatcore.testing.server import ServerProcess, start_server
from chatcore.testing.users import PASSWORD, new_user, unique_username
from chatcore.testing.wsclient import new_ref
from chatcore_tui.app import ChatApp, PushReplyApp
from chatcore_tui.screens.help import HelpScreen
from chatcore_tui.screens.login import LoginScreen
from chatcore_tui.screens.main import MainScreen
from chatcore_tui.screens.quick_reply import QuickReply
from chatcore_tui.widgets.composer import Composer
from chatcore_tui.widgets.dialog import PAGE, Dialog
from chatcore_tui.widgets.room_list import RoomList

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

#: The server's largest message body here: a longer one fails to send.
MAX_MESSAGE_BYTES = 200


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    overrides = {"websocket": NO_FLOOD_CONTROL, "limits": {"max_message_bytes": MAX_MESSAGE_BYTES}}
    with start_server(tmp_path_factory.mktemp("server"), overrides) as running:
        yield running


async def direct_room(bob: Rest, ann_id: str) -> str:
    """The direct room of Bob (REST) and Ann (the app)."""
    reply = await bob.call("POST", "/rooms", json={"kind": "direct", "user_id": ann_id})
    assert reply.status_code in (200, 201), reply.text
    return str(reply.json()["id"])


async def send_as(person: Rest, room_id: str, body: str) -> dict[str, Any]:
    """`person` sends `body` over REST; the stored message (JSON)."""
    reply = await person.call(
        "POST", f"/rooms/{room_id}/messages", json={"ref": new_ref("bob"), "body": body}
    )
    assert reply.status_code == 201, reply.text
    message: dict[str, Any] = reply.json()
    return message


def row_with(app: ChatApp, text: str) -> str | None:
    """The dialog row showing `text`, None when there is none."""
    return next((row for row in dialog_texts(app) if text in row), None)


async def test_registration_through_the_login_screen_lands_on_the_main_screen(
    server: ServerProcess, tmp_path: Path
) -> None:
    """A device without an account shows the login screen; Register creates the account and
    logs in; the main screen follows and the connection gets ready. On another device a wrong
    password is said in words, the right one logs in, and a logout brings the login back."""
    username = unique_username("reg")
    async with chat_app(server.base_url, tmp_path / "ann") as (app, pilot):
        await wait_until(pilot, lambda: isinstance(app.screen, LoginScreen), "the login screen")
        await pilot.click("#login-username")
        await type_text(pilot, username)
        app.screen.query_one("#login-password", Input).value = PASSWORD
        app.screen.query_one("#login-display-name", Input).value = "Ann Example"
        await pilot.click("#login-register")
        await wait_until(pilot, lambda: main_screen(app).is_current, "the main screen")
        assert app.client.user.username == username
        assert app.client.user.display_name == "Ann Example"
        await wait_until(
            pilot,
            lambda: main_screen(app).banner.has_class("-ready"),
            "the connection ready",
        )

    async with chat_app(server.base_url, tmp_path / "other") as (app, pilot):
        await wait_until(pilot, lambda: isinstance(app.screen, LoginScreen), "the login screen")
        app.screen.query_one("#login-username", Input).value = username
        app.screen.query_one("#login-password", Input).value = "not the password"
        await pilot.click("#login-log-in")
        error = app.screen.query_one("#login-error")
        await wait_until(pilot, lambda: "Wrong username or password" in text_of(error), "an error")
        app.screen.query_one("#login-password", Input).value = PASSWORD
        button = app.screen.query_one("#login-log-in")
        # A button takes no second click while it shows the first (0.2 s): a person's pace.
        await wait_until(pilot, lambda: not button.has_class("-active"), "the button ready")
        await pilot.click(button)
        await wait_until(pilot, lambda: main_screen(app).is_current, "the main screen")
        assert app.client.user.username == username

        # The login ends (a logout here or elsewhere): back to the login screen, the
        # username kept for the next login.
        await app.client.logout()
        await wait_until(pilot, lambda: isinstance(app.screen, LoginScreen), "the login screen")
        assert app.main is None
        assert app.screen.query_one("#login-username", Input).value == username


async def test_messages_go_both_ways_in_a_direct_room(
    server: ServerProcess, tmp_path: Path
) -> None:
    """Bob's message shows in the room list (with his name) and the room opens by itself on
    a first start; a click opens it too; Ann's message goes out once and shows sent; Bob's
    next message arrives live in the open dialog."""
    ann_id = await signed_up_device(server.base_url, tmp_path / "ann")
    bob = await Rest.new(server)
    room_id = await direct_room(bob, ann_id)
    await send_as(bob, room_id, "hello ann")
    async with chat_app(server.base_url, tmp_path / "ann") as (app, pilot):
        screen = main_screen(app)
        await wait_until(
            pilot,
            lambda: any(bob.user.username in r and "hello ann" in r for r in room_texts(app)),
            "Bob's room",
        )
        row = screen.room_list.row(room_id)
        assert row is not None
        await click_room(pilot, app, room_id)
        await wait_until(pilot, lambda: row_with(app, "hello ann"), "Bob's message in the dialog")
        header = screen.query_one("#dialog-header")
        await wait_until(pilot, lambda: bob.user.username in text_of(header), "Bob's name")
        assert screen.room_list.active_id == room_id and "(1)" not in row.text

        screen.composer.focus()
        await type_text(pilot, "hi bob")
        await pilot.press("enter")
        await wait_until(pilot, lambda: (row_with(app, "hi bob") or "").endswith("✓"), "sent")
        assert screen.composer.text == ""
        history = [m["body"] for m in await bob.history(room_id)]
        assert history == ["hello ann", "hi bob"]

        await send_as(bob, room_id, "how are you?")
        await wait_until(pilot, lambda: row_with(app, "how are you?"), "Bob's live message")
        texts = dialog_texts(app)
        assert [
            i
            for i, t in enumerate(texts)
            if "hello ann" in t or "hi bob" in t or "how are you?" in t
        ] == [0, 1, 2]
        assert not toasts(app), "a message in the open room shows no toast"

        # Bob reads it all: Ann's own message is marked read.
        reply = await bob.call("POST", f"/rooms/{room_id}/read", json={"seq": 3})
        assert reply.status_code in (200, 204), reply.text
        await wait_until(pilot, lambda: "✓✓ read" in (row_with(app, "hi bob") or ""), "read")

        # A reply to Bob's question, on two lines (ctrl+j adds a line, Enter sends).
        await pilot.press("f3", "up")
        assert screen.dialog.selected is not None
        assert "how are you?" in screen.dialog.selected.shown
        await pilot.press("r")
        assert screen.composer.has_focus
        assert "Replying to" in text_of(screen.composer_bar)
        await type_text(pilot, "fine")
        await pilot.press("ctrl+j")
        await type_text(pilot, "and you?")
        await pilot.press("enter")
        await wait_until(pilot, lambda: row_with(app, "↳"), "the reply with its quote")
        quoted_row = row_with(app, "↳") or ""
        assert "how are you?" in quoted_row and "fine\nand you?" in quoted_row
        assert not screen.composer_bar.has_class("-shown")
        [sent] = [m for m in await bob.history(room_id) if m["body"] == "fine\nand you?"]
        assert sent["reply_to"] == (await bob.history(room_id))[2]["id"]


async def test_the_app_starts_offline_from_the_device_store_and_sends_when_it_can(
    tmp_path: Path,
) -> None:
    """A second start with the server unreachable shows the rooms and messages of the first
    at once, with an offline banner; a message typed then shows pending, and once the server
    answers it turns sent and Bob has it exactly once."""
    async with proxied_server(tmp_path / "server") as rig:
        folder = tmp_path / "ann"
        ann_id = await signed_up_device(rig.server_url, folder)
        bob = Rest(rig.server, await asyncio.to_thread(new_user, rig.server.api))
        room_id = await direct_room(bob, ann_id)
        await send_as(bob, room_id, "before the outage")
        async with chat_app(rig.server_url, folder) as (app, pilot):
            await wait_until(pilot, lambda: row_with(app, "before the outage"), "the message")

        rig.refuse()
        async with chat_app(rig.server_url, folder) as (app, pilot):
            screen = main_screen(app)
            # From the device store, before any answer: no network wait.
            await wait_until(
                pilot, lambda: row_with(app, "before the outage"), "the stored message", 2.0
            )
            assert any("before the outage" in r for r in room_texts(app))
            await wait_until(
                pilot, lambda: "Offline" in text_of(screen.banner), "the offline banner"
            )
            assert not screen.composer.disabled and screen.composer.has_focus
            await type_text(pilot, "written offline")
            await pilot.press("enter")
            await wait_until(
                pilot, lambda: "pending" in (row_with(app, "written offline") or ""), "pending"
            )

            rig.refuse(False)
            await wait_until(
                pilot, lambda: (row_with(app, "written offline") or "").endswith("✓"), "sent"
            )
            await wait_until(
                pilot,
                lambda: screen.banner.has_class("-ready"),
                "the banner gone",
            )
            assert [m["body"] for m in await bob.history(room_id)] == [
                "before the outage",
                "written offline",
            ]
            assert sum("written offline" in t for t in dialog_texts(app)) == 1


async def test_a_message_in_another_room_shows_a_toast_and_the_quick_reply_answers_it(
    server: ServerProcess, tmp_path: Path
) -> None:
    """With the direct room open, Bob writes in a group: the group counts it unread and moves
    to the top, a toast says who, where and what; ctrl+r opens the quick reply, whose answer
    reaches the group as a reply to that message, and the open dialog is still the direct
    room."""
    ann_id = await signed_up_device(server.base_url, tmp_path / "ann")
    bob = await Rest.new(server)
    room_id = await direct_room(bob, ann_id)
    group_id = await bob.group("Team", [ann_id])
    await send_as(bob, room_id, "direct hello")
    async with chat_app(server.base_url, tmp_path / "ann") as (app, pilot):
        screen = main_screen(app)
        await wait_until(pilot, lambda: screen.room_list.row(room_id), "the direct room")
        await wait_until(pilot, lambda: screen.room_list.row(group_id), "the group")
        await click_room(pilot, app, room_id)
        await wait_until(pilot, lambda: row_with(app, "direct hello"), "the direct room open")
        await wait_until(pilot, lambda: app.client.connection_state == "ready", "ready")

        question = await send_as(bob, group_id, "are you coming?")
        await wait_until(
            pilot,
            lambda: any(
                f"{bob.user.username} in Team" in t and "are you coming?" in t for t in toasts(app)
            ),
            "the toast",
        )
        group_row = screen.room_list.row(group_id)
        assert group_row is not None
        await wait_until(pilot, lambda: "Team (1)" in group_row.text, "the group unread")
        assert room_texts(app)[0].startswith("Team (1)"), "the most active room comes first"
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: isinstance(app.screen, QuickReply), "the quick reply")
        box = app.screen
        assert "Reply to" in text_of(box.query_one("#quick-reply-title"))
        assert "are you coming?" in text_of(box.query_one("#quick-reply-quote"))
        await type_text(pilot, "on my way")
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen is screen, "the box closed")

        async def answered() -> list[dict[str, Any]]:
            return [m for m in await bob.history(group_id) if m["body"] == "on my way"]

        await wait_until(pilot, lambda: any("on my way" in r for r in room_texts(app)), "sent")
        [answer] = await answered()
        assert answer["reply_to"] == question["id"] and answer["sender_id"] == ann_id
        assert screen.dialog.room_id == room_id
        assert row_with(app, "direct hello") and not row_with(app, "on my way")


async def test_a_failed_send_shows_why_and_is_edited_resent_or_cancelled_in_the_dialog(
    server: ServerProcess, tmp_path: Path
) -> None:
    """Over the server's size limit: the echo shows failed with the server's reason; `s`
    resends it (it fails again), `e` edits it shorter and it goes out; another failed one is
    cancelled with `d` and leaves the dialog."""
    ann_id = await signed_up_device(server.base_url, tmp_path / "ann")
    bob = await Rest.new(server)
    room_id = await direct_room(bob, ann_id)
    await send_as(bob, room_id, "send me something long")
    async with chat_app(server.base_url, tmp_path / "ann") as (app, pilot):
        screen = main_screen(app)
        await wait_until(pilot, lambda: row_with(app, "something long"), "the room open")
        async with EventLog(app.client) as log:
            too_long = "long " * 60
            screen.composer.load_text(too_long)
            await pilot.press("enter")
            await wait_until(
                pilot,
                lambda: "failed: A message body is at most" in (row_with(app, "long long") or ""),
                "the failure and its reason",
            )
            [ref] = {e.entry.ref for e in log.events if isinstance(e, OutboxChanged)}

            await pilot.press("f3", "up")  # the newest row: the failed echo
            selected = screen.dialog.selected
            assert selected is not None and selected.entry is not None
            await pilot.press("s")
            await wait_until(pilot, lambda: log.outbox(ref).count("failed") == 2, "resent")

            await pilot.press("e")
            assert screen.composer.text == too_long and screen.composer.has_focus
            screen.composer.load_text("short now")
            await pilot.press("enter")
            await wait_until(pilot, lambda: (row_with(app, "short now") or "").endswith("✓"), "ok")
            assert not row_with(app, "long long")
            bodies = [m["body"] for m in await bob.history(room_id)]
            assert bodies == ["send me something long", "short now"]

            screen.composer.load_text("again " * 50)
            await pilot.press("enter")
            await wait_until(pilot, lambda: "failed" in (row_with(app, "again") or ""), "failed")
            await pilot.press("f3", "up", "d")
            await wait_until(pilot, lambda: not row_with(app, "again"), "the cancelled one gone")
            assert await app.client.outbox(room_id) == []


async def test_scrollback_shows_the_newest_page_first_and_loads_older_ones_on_the_way_up(
    server: ServerProcess, tmp_path: Path
) -> None:
    """500 messages from Bob, caught up on the device: the app opens the room with the newest
    page only; Home (at the top) loads older pages until message 1 shows, in order, with one
    day separator."""
    folder = tmp_path / "ann"
    ann_id = await signed_up_device(server.base_url, folder)
    bob = await Rest.new(server)
    room_id = await direct_room(bob, ann_id)
    await bob.send_many(room_id, [f"message {i}" for i in range(1, 501)])
    async with engine_client(server, folder) as (ann, _):
        await synced(ann)

    async with chat_app(server.base_url, folder) as (app, pilot):
        dialog = main_screen(app).dialog
        await wait_until(pilot, lambda: row_with(app, "message 500"), "the newest message")
        texts = dialog_texts(app)
        assert len(texts) == PAGE and texts[0].endswith("message 451"), texts[:2]
        await pilot.press("f3")
        for _ in range(12):
            if row_with(app, "  message 1\n") or dialog_texts(app)[0].endswith("message 1"):
                break
            count = len(dialog.rows)
            await pilot.press("home")
            await wait_until(pilot, lambda: len(dialog.rows) > count, "an older page")  # noqa: B023
        texts = dialog_texts(app)
        assert len(texts) == 500
        assert [t.rsplit(" ", 1)[-1] for t in texts] == [str(i) for i in range(1, 501)]
        assert not dialog.has_older
        assert [row.separator for row in dialog.rows if row.separator] == ["Today"]
        assert dialog.rows[0].separator == "Today"

        # A search result's jump: the page around it, that message selected; End: the newest.
        main_screen(app).open_room(room_id, around_seq=200)
        await wait_until(
            pilot,
            lambda: dialog.selected is not None and dialog.selected.text == "message 200",
            "message 200 selected",
        )
        assert dialog.detached and not row_with(app, "message 500")
        await pilot.press("f3", "end")
        await wait_until(pilot, lambda: row_with(app, "message 500"), "the newest again")
        assert not dialog.detached and len(dialog.rows) == PAGE


async def test_edits_deletions_and_typing_of_the_other_user_show_in_place(
    server: ServerProcess, tmp_path: Path
) -> None:
    """Bob (a connected client) types, sends, edits and deletes: the dialog shows "is
    typing…" and clears it, then the edit (marked edited) and the deletion in the same row."""
    ann_id = await signed_up_device(server.base_url, tmp_path / "ann")
    async with engine_client(server, tmp_path / "bob") as (bob, _):
        await signed_up(bob)
        room = await bob.open_direct(ann_id)
        await ready(bob)
        first = await bob.wait_sent((await bob.send(room.room.id, "first version")).ref)
        async with chat_app(server.base_url, tmp_path / "ann") as (app, pilot):
            screen = main_screen(app)
            await wait_until(pilot, lambda: row_with(app, "first version"), "the message")
            await wait_until(pilot, lambda: app.client.connection_state == "ready", "ready")
            typing = screen.typing_indicator
            await bob.typing(room.room.id, True)
            await wait_until(pilot, lambda: "is typing" in text_of(typing), "typing shown")
            await bob.typing(room.room.id, False)
            await wait_until(pilot, lambda: text_of(typing) == "", "typing cleared")

            await bob.edit(room.room.id, first.id, "second version")
            await wait_until(pilot, lambda: row_with(app, "second version"), "the edit")
            assert "(edited)" in (row_with(app, "second version") or "")
            assert not row_with(app, "first version") and len(dialog_texts(app)) == 1

            await bob.delete(room.room.id, first.id)
            await wait_until(pilot, lambda: row_with(app, "message deleted"), "the deletion")
            assert len(dialog_texts(app)) == 1


async def test_push_reply_app_answers_a_push_without_the_app(
    server: ServerProcess, tmp_path: Path
) -> None:
    """`PushReplyApp` shows the pushed message and who sent it; the typed answer reaches Bob
    as a reply to it, and the app ends with the reply's state."""
    folder = tmp_path / "ann"
    ann_id = await signed_up_device(server.base_url, folder)
    bob = await Rest.new(server)
    room_id = await direct_room(bob, ann_id)
    pushed = Message(**await send_as(bob, room_id, "lunch at noon?"))
    notice = PushNotice(
        room_id=room_id,
        message_id=pushed.id,
        seq=pushed.seq,
        sender_id=bob.id,
        sender_name="Bob",
        direct=True,
        message=pushed,
    )
    app = PushReplyApp(Client.for_server(server.base_url, folder), notice)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, QuickReply), "the reply box")
        assert "Reply to Bob" in text_of(app.screen.query_one("#quick-reply-title"))
        assert "lunch at noon?" in text_of(app.screen.query_one("#quick-reply-quote"))
        await type_text(pilot, "yes please")
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.return_value is not None, "the reply sent")
    assert app.return_value == "sent"
    [answer] = [m for m in await bob.history(room_id) if m["body"] == "yes please"]
    assert answer["reply_to"] == pushed.id


async def test_the_help_lists_every_key_from_the_bindings(
    server: ServerProcess, tmp_path: Path
) -> None:
    """F1 (and `?` outside the composer) shows every binding of the app, the main screen and
    its widgets, grouped; in the composer `?` is just a character."""
    await signed_up_device(server.base_url, tmp_path / "ann")
    async with chat_app(server.base_url, tmp_path / "ann") as (app, pilot):
        screen = main_screen(app)
        await type_text(pilot, "why?")
        assert screen.composer.text == "why?" and app.screen is screen
        await pilot.press("f1")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), "the help")
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        shown = "\n".join(text_of(w) for w in help_screen.query(Static))
        titles = [group.title for group in help_screen.groups]
        assert titles[:2] == ["Everywhere", "Main screen"]
        assert {"Room list", "Messages", "Composer"} <= set(titles)
        for owner in (ChatApp, MainScreen, Dialog, Composer, RoomList):
            for binding in Binding.make_bindings(owner.BINDINGS):
                assert binding.description in shown, binding
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen, "the help closed")
        await pilot.press("f2", "question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), "the help by ?")


async def test_a_file_is_sent_from_a_path(server: ServerProcess, tmp_path: Path) -> None:
    """ctrl+o asks for a path; the file shows queued under its name, then sent as a file
    message; Bob's copy is a media message; a path with no file says so."""
    ann_id = await signed_up_device(server.base_url, tmp_path / "ann")
    bob = await Rest.new(server)
    room_id = await direct_room(bob, ann_id)
    await send_as(bob, room_id, "send me the picture")
    picture = tmp_path / "cat.png"
    Image.new("RGB", (8, 8), "orange").save(picture)
    async with chat_app(server.base_url, tmp_path / "ann") as (app, pilot):
        screen = main_screen(app)
        await wait_until(pilot, lambda: row_with(app, "the picture"), "the room open")
        await pilot.press("ctrl+o")
        assert screen.file_prompt.has_focus
        await pilot.press("x", "enter")
        await wait_until(
            pilot, lambda: any("There is no file at x" in t for t in toasts(app)), "the error"
        )
        await pilot.press("ctrl+o")
        screen.file_prompt.value = str(picture)
        await pilot.press("enter")
        await wait_until(pilot, lambda: (row_with(app, "📎 file") or "").endswith("✓"), "sent")
        assert screen.composer.has_focus and not screen.file_prompt.has_class("-shown")
        [media] = [m for m in await bob.history(room_id) if m["kind"] == "media"]
        assert media["media_id"]


async def test_the_whole_way_login_invite_accept_open_and_talk(
    server: ServerProcess, tmp_path: Path
) -> None:
    """Ann, with keys only: logs in on the login screen, finds Bob in the contacts screen and
    invites him; Bob accepts on his device and the open contacts screen shows him (the app
    passes it the events); Ann opens their direct room from the contact and they talk."""
    ann_name = unique_username("ann")
    async with engine_client(server, tmp_path / "bob") as (bob, bob_log):
        bob_id = await signed_up(bob)
        await ready(bob)
        await bob.register(ann_name, PASSWORD)
        async with chat_app(server.base_url, tmp_path / "ann") as (app, pilot):
            await wait_until(pilot, lambda: isinstance(app.screen, LoginScreen), "login screen")
            await pilot.click("#login-username")
            await type_text(pilot, ann_name)
            await pilot.press("tab")
            await type_text(pilot, PASSWORD)
            await pilot.press("enter")
            await wait_until(pilot, lambda: main_screen(app).is_current, "the main screen")

            await pilot.press("ctrl+t")
            await wait_until(
                pilot, lambda: type(app.screen).__name__ == "ContactsScreen", "contacts screen"
            )
            contacts = app.screen
            await pilot.press("3")
            await type_text(pilot, bob.user.username)
            await wait_until(
                pilot,
                lambda: bob.user.username in screen_cells(contacts, "#find-table"),
                "Bob found",
            )
            await pilot.press("enter", "i")
            incoming: list[Any] = []

            async def invited() -> bool:
                incoming[:] = (await bob.invitations())[0]
                return bool(incoming)

            await poll(invited, "Bob's device has the invitation")
            await bob.accept_invitation(incoming[0].id)
            await pilot.press("1")
            await wait_until(
                pilot,
                lambda: bob.user.username in screen_cells(contacts, "#contacts-table"),
                "Bob among the contacts",
            )
            await pilot.press("o")
            await wait_until(pilot, lambda: main_screen(app).is_current, "back on the main screen")
            dialog = main_screen(app).dialog
            await wait_until(pilot, lambda: dialog.room_id is not None, "the direct room open")
            room_id = dialog.room_id
            room = await app.client.room(str(room_id))
            assert room is not None and room.room.kind == "direct"
            assert set(room.room.member_ids) == {app.client.user.id, bob_id}

            mark = bob_log.mark()
            await pilot.press("f4")
            await type_text(pilot, "hello Bob")
            await pilot.press("enter")
            await bob_log.wait(
                lambda log: (
                    [e.message.body for e in log.received(str(room_id), mark)] == ["hello Bob"]
                )
            )
            await bob.send(str(room_id), "hello Ann")
            await wait_until(pilot, lambda: row_with(app, "hello Ann"), "Bob's answer shown")
            assert row_with(app, "hello Bob") is not None


def screen_cells(screen: Any, table_id: str) -> str:
    """Every cell of a table on `screen`, as one text (for `in` checks)."""
    table = screen.query_one(table_id, DataTable)
    return " ".join(str(cell) for i in range(table.row_count) for cell in table.get_row_at(i))


async def test_push_reply_app_names_the_sender_and_room_of_an_id_only_push(
    server: ServerProcess, tmp_path: Path
) -> None:
    """An id-only push carries neither names nor text: as `chatcore client reply-to-push`
    does, the push handler stores its message first, and the box names the sender and the
    group from the device."""
    folder = tmp_path / "ann"
    ann_id = await signed_up_device(server.base_url, folder)
    bob = await Rest.new(server)
    group_id = await bob.group("Weekend trip", [ann_id])
    pushed = Message(**await send_as(bob, group_id, "train at 9:10?"))
    handler = Client.for_server(server.base_url, folder)
    await handler.start(connect=False)
    try:
        payload = {"type": "message", "room_id": group_id, "message_id": pushed.id, "seq": 1}
        notice = await handler.handle_push(payload)
    finally:
        await handler.close()
    assert notice.room_name is None and notice.sender_name is None  # the push said nothing
    app = PushReplyApp(Client.for_server(server.base_url, folder), notice)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, QuickReply), "the reply box")
        title = text_of(app.screen.query_one("#quick-reply-title"))
        assert title == f"Reply to {bob.user.username} in Weekend trip", title
        assert "train at 9:10?" in text_of(app.screen.query_one("#quick-reply-quote"))
        await pilot.press("escape")
        await wait_until(pilot, lambda: not app.is_running, "the box closed")
    assert app.return_value is None
