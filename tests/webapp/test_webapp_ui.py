"""The browser app as people use it: two browser contexts as two users against a real server,
driven by role and label (what a screen reader announces), never by CSS paths alone.

Every page fails its test on an uncaught error (the `new_page` fixture)."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from webapp_support import PASSWORD, register_user

from chatcore.testing.server import ServerProcess
from chatcore.testing.users import unique_username

pytest.importorskip("playwright")
from playwright.sync_api import Locator, Page, expect

CLI = [sys.executable, "-m", "chatcore"]
#: Longer than the 10 s default for what crosses the server and another browser.
SLOW = 15_000


# --- helpers -------------------------------------------------------------------------------------


def register_in_ui(page: Page, username: str, display_name: str) -> None:
    """Create an account on the login screen (it logs in too)."""
    page.goto("/")
    page.get_by_role("button", name="Create an account").click()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Display name").fill(display_name)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name=display_name)).to_be_visible()


def log_in(page: Page, username: str) -> None:
    page.goto("/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("list", name="Rooms")).to_be_attached()
    expect(banner(page)).to_be_hidden(timeout=SLOW)  # connected and caught up


def banner(page: Page) -> Locator:
    return page.locator(".banner")


def person(server: ServerProcess, name: str) -> dict[str, Any]:
    """A user made over REST: `{"user", "access_token", "username", "name"}`."""
    username = unique_username(name.lower())
    made = register_user(server, username, display_name=name)
    return {**made, "username": username, "name": name}


def rest(server: ServerProcess, who: dict[str, Any]) -> httpx.Client:
    return httpx.Client(
        base_url=server.api, headers={"Authorization": f"Bearer {who['access_token']}"}, timeout=10
    )


def befriend(server: ServerProcess, a: dict[str, Any], b: dict[str, Any]) -> None:
    with rest(server, a) as http:
        invitation = http.post("/contacts/invitations", json={"user_id": b["user"]["id"]}).json()
    with rest(server, b) as http:
        http.post(f"/contacts/invitations/{invitation['id']}/accept").raise_for_status()


def direct_room(server: ServerProcess, a: dict[str, Any], b: dict[str, Any]) -> str:
    with rest(server, a) as http:
        answer = http.post("/rooms", json={"kind": "direct", "user_id": b["user"]["id"]})
        answer.raise_for_status()
        return str(answer.json()["id"])


def group_room(
    server: ServerProcess, owner: dict[str, Any], name: str, *members: dict[str, Any]
) -> str:
    with rest(server, owner) as http:
        body = {"kind": "group", "name": name, "member_ids": [m["user"]["id"] for m in members]}
        answer = http.post("/rooms", json=body)
        answer.raise_for_status()
        return str(answer.json()["id"])


def send_rest(
    server: ServerProcess, who: dict[str, Any], room_id: str, body: str
) -> dict[str, Any]:
    with rest(server, who) as http:
        answer = http.post(
            f"/rooms/{room_id}/messages", json={"ref": unique_username("ref"), "body": body}
        )
        answer.raise_for_status()
        return dict(answer.json())


def history(server: ServerProcess, who: dict[str, Any], room_id: str) -> list[dict[str, Any]]:
    with rest(server, who) as http:
        return list(
            http.get(f"/rooms/{room_id}/messages", params={"limit": 500}).json()["messages"]
        )


def rooms(page: Page) -> Locator:
    return page.get_by_role("list", name="Rooms")


def open_room(page: Page, title: str) -> None:
    rooms(page).get_by_role("button", name=re.compile("^" + re.escape(title))).click()
    expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible()


def log(page: Page) -> Locator:
    return page.get_by_role("log", name="Messages")


def message(page: Page, text: str) -> Locator:
    """The message whose text is `text` (not one quoting it)."""
    return (
        log(page)
        .get_by_role("article")
        .filter(has=page.locator(".body").get_by_text(text, exact=True))
    )


def send(page: Page, text: str) -> None:
    box = page.get_by_role("textbox", name="Message")
    box.fill(text)
    box.press("Enter")


def act(page: Page, text: str, action: str) -> None:
    """Open a message's "Actions" menu and choose `action`."""
    row = message(page, text)
    row.get_by_role("button", name="Actions").click()
    row.get_by_role("button", name=action, exact=True).click()


def png(size: int, color: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buffer, "PNG")
    return buffer.getvalue()


def two_friends(
    server: ServerProcess, new_page: Callable[..., Page], **context: Any
) -> tuple[dict[str, Any], dict[str, Any], Page, Page, str]:
    """Ann and Bob, contacts with a direct room, each logged in in a browser of their own."""
    ann, bob = person(server, "Ann"), person(server, "Bob")
    befriend(server, ann, bob)
    room = direct_room(server, ann, bob)
    pa, pb = new_page(**context), new_page(**context)
    log_in(pa, ann["username"])
    log_in(pb, bob["username"])
    return ann, bob, pa, pb, room


# --- tests ---------------------------------------------------------------------------------------


def test_register_invite_accept_and_chat_both_ways(
    webapp_server: ServerProcess, new_page: Callable[..., Page]
) -> None:
    """Both register on the login screen; Ann invites Bob by username, Bob accepts; they chat:
    ✓ then ✓✓ once Bob read it, typing shown, a reply quote, an edit and a deletion seen by
    the other side."""
    ann_name, bob_name = unique_username("ann"), unique_username("bob")
    pa, pb = new_page(), new_page()
    register_in_ui(pa, ann_name, "Ann")
    register_in_ui(pb, bob_name, "Bob")

    # A wrong password is refused in the server's words, in an alert.
    other = new_page()
    other.goto("/")
    other.get_by_label("Username").fill(ann_name)
    other.get_by_label("Password").fill("not the password")
    other.get_by_role("button", name="Log in").click()
    expect(other.get_by_role("alert")).to_contain_text(re.compile(r"\w"))

    # Ann invites Bob by his username.
    pa.get_by_role("button", name="Contacts").click()
    contacts = pa.get_by_role("dialog", name="Contacts")
    contacts.get_by_label("Find people").fill(bob_name)
    found = (
        contacts.get_by_role("list", name="People found")
        .get_by_role("listitem")
        .filter(has_text=bob_name)
    )
    found.get_by_role("button", name="Invite").click()
    expect(contacts.get_by_role("list", name="Your invitations")).to_contain_text("Bob")
    contacts.get_by_role("button", name="Close").click()

    # Bob sees it (the Contacts button counts it) and accepts.
    expect(pb.get_by_role("button", name="Contacts (1 invitation)")).to_be_visible(timeout=SLOW)
    pb.get_by_role("button", name="Contacts").click()
    incoming = pb.get_by_role("dialog", name="Contacts").get_by_role(
        "list", name="Invitations to you"
    )
    incoming.get_by_role("listitem").filter(has_text="Ann").get_by_role(
        "button", name="Accept"
    ).click()
    bob_contacts = pb.get_by_role("dialog", name="Contacts").get_by_role(
        "list", name="Your contacts"
    )
    expect(bob_contacts).to_contain_text("Ann")
    pb.keyboard.press("Escape")
    expect(pb.get_by_role("dialog", name="Contacts")).to_have_count(0)

    # Ann opens the direct room from her contacts.
    pa.get_by_role("button", name="Contacts").click()
    ann_contacts = pa.get_by_role("dialog", name="Contacts").get_by_role(
        "list", name="Your contacts"
    )
    ann_contacts.get_by_role("listitem").filter(has_text="Bob").get_by_role(
        "button", name="Message"
    ).click()
    expect(pa.get_by_role("heading", name="Bob", exact=True)).to_be_visible()

    send(pa, "hello bob")
    expect(message(pa, "hello bob").get_by_role("img", name="sent", exact=True)).to_have_text(
        "✓", timeout=SLOW
    )

    # Bob's list shows the room with one unread; opening it reads it, and Ann sees ✓✓.
    bob_row = rooms(pb).get_by_role("button", name=re.compile("^Ann"))
    expect(bob_row).to_contain_text("1 unread", timeout=SLOW)
    expect(bob_row).to_contain_text("hello bob")
    bob_row.click()
    expect(message(pb, "hello bob")).to_be_visible()
    expect(bob_row).not_to_contain_text("unread")
    expect(message(pa, "hello bob").get_by_role("img", name="read", exact=True)).to_have_text(
        "✓✓", timeout=SLOW
    )
    expect(pa.get_by_role("heading", name="Bob", exact=True)).to_be_visible()

    # Bob types: Ann sees it.
    pb.get_by_role("textbox", name="Message").press_sequentially("hi a", delay=20)
    expect(pa.get_by_role("status").filter(has_text="Bob is typing…")).to_be_visible(timeout=SLOW)

    # Bob replies to Ann's message: the quote shows on both sides.
    pb.get_by_role("textbox", name="Message").fill("")
    act(pb, "hello bob", "Reply")
    expect(pb.get_by_text("Replying to Ann: hello bob")).to_be_visible()
    send(pb, "hello ann")
    reply = message(pa, "hello ann")
    expect(reply).to_be_visible(timeout=SLOW)
    expect(reply.get_by_role("button", name=re.compile("In reply to"))).to_contain_text("hello bob")
    expect(pa.get_by_role("status").filter(has_text="is typing")).to_have_count(0, timeout=SLOW)

    # Ann edits her message: Bob sees the new text, marked edited.
    act(pa, "hello bob", "Edit")
    box = pa.get_by_role("textbox", name="Message")
    expect(box).to_have_value("hello bob")
    box.fill("hello bobby")
    box.press("Enter")
    edited = message(pb, "hello bobby")
    expect(edited).to_be_visible(timeout=SLOW)
    expect(edited).to_contain_text("edited")

    # Ann deletes it: Bob sees "Message deleted" in its place.
    act(pa, "hello bobby", "Delete")
    pa.get_by_role("dialog", name="Delete this message?").get_by_role(
        "button", name="Delete"
    ).click()
    expect(message(pb, "hello bobby")).to_have_count(0, timeout=SLOW)
    expect(message(pb, "Message deleted")).to_have_count(1)
    expect(message(pa, "Message deleted")).to_have_count(1)
    # Bob's reply now quotes a deleted message.
    expect(
        message(pb, "hello ann").get_by_role("button", name=re.compile("In reply to"))
    ).to_contain_text("Message deleted")


def test_an_image_shows_as_a_thumbnail_on_the_other_side_and_opens_in_the_viewer(
    webapp_server: ServerProcess, new_page: Callable[..., Page], tmp_path: Path
) -> None:
    _ann, _bob, pa, pb, _room = two_friends(webapp_server, new_page)
    open_room(pa, "Bob")
    open_room(pb, "Ann")
    picture = tmp_path / "red.png"
    picture.write_bytes(png(400, "red"))
    pa.get_by_label("File to send").set_input_files(str(picture))

    # Ann's side: her own picture while it goes, then ✓.
    expect(log(pa).locator("img.thumb")).to_be_visible()
    own = log(pa).get_by_role("article").filter(has=pa.locator("img.thumb"))
    expect(own.locator(".mark")).to_have_text(re.compile("^✓✓?$"), timeout=SLOW)  # sent (or read)

    # Bob's side: the server's thumbnail (at most 256 px), opening the full image.
    thumb = log(pb).get_by_role("button", name="Open image")
    expect(thumb).to_be_visible(timeout=SLOW)
    size = thumb.locator("img").evaluate(
        "img => img.decode().then(() => [img.naturalWidth, img.naturalHeight])"
    )
    assert 0 < size[0] <= 256 and 0 < size[1] <= 256, size
    thumb.click()
    viewer = pb.get_by_role("dialog", name="Image")
    full = viewer.get_by_role("img", name="Image")
    expect(full).to_have_attribute("src", re.compile("^blob:"))
    assert full.evaluate("img => img.decode().then(() => img.naturalWidth)") == 400
    pb.keyboard.press("Escape")
    expect(viewer).to_have_count(0)


def test_a_message_in_another_room_shows_a_toast_and_the_quick_reply_leaves_the_dialog_open(
    webapp_server: ServerProcess, new_page: Callable[..., Page]
) -> None:
    ann, bob, pa, pb, direct = two_friends(webapp_server, new_page)
    group = group_room(webapp_server, ann, "Climbing crew", bob)
    send_rest(webapp_server, ann, group, "who's in on saturday?")
    open_room(pb, "Climbing crew")
    open_room(pa, "Bob")

    send(pa, "are you there?")
    toast = (
        pb.get_by_role("status", name="Notifications")
        .locator(".toast")
        .filter(has_text="are you there?")
    )
    expect(toast).to_be_visible(timeout=SLOW)
    expect(toast).to_contain_text("Ann")
    toast.get_by_role("button", name="Reply").click()
    quick = toast.get_by_role("textbox", name="Quick reply")
    quick.fill("yes, here")
    quick.press("Enter")
    expect(pb.get_by_role("status", name="Notifications")).to_contain_text("Sent")

    # Ann gets the answer in the direct room, quoting her message; Bob is still in the group.
    answer = message(pa, "yes, here")
    expect(answer).to_be_visible(timeout=SLOW)
    expect(answer.get_by_role("button", name=re.compile("In reply to"))).to_contain_text(
        "are you there?"
    )
    expect(pb.get_by_role("heading", name="Climbing crew", exact=True)).to_be_visible()
    expect(message(pb, "who's in on saturday?")).to_be_visible()
    expect(message(pb, "yes, here")).to_have_count(0)
    replies = [m for m in history(webapp_server, ann, direct) if m["body"] == "yes, here"]
    assert len(replies) == 1 and replies[0]["reply_to"]

    # "Open" on a toast opens that room.
    send_rest(webapp_server, ann, direct, "one more thing")
    toast = (
        pb.get_by_role("status", name="Notifications")
        .locator(".toast")
        .filter(has_text="one more thing")
    )
    toast.get_by_role("button", name="Open").click()
    expect(pb.get_by_role("heading", name="Ann", exact=True)).to_be_visible()
    expect(message(pb, "one more thing")).to_be_visible()


def test_a_sticker_is_sent_from_the_picker_and_shown_on_the_other_side(
    webapp_server: ServerProcess, new_page: Callable[..., Page], tmp_path: Path
) -> None:
    folder = tmp_path / "Happy Cats"
    folder.mkdir()
    (folder / "a.png").write_bytes(png(64, "orange"))
    (folder / "b.png").write_bytes(png(64, "purple"))
    stickers = [{"file": "a.png", "emoji": "😺"}, {"file": "b.png"}]
    (folder / "pack.json").write_text(json.dumps({"name": "Happy Cats", "stickers": stickers}))
    done = subprocess.run(
        [*CLI, "stickers", "import", str(folder), "--config", str(webapp_server.config_path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=webapp_server.folder,
    )
    assert done.returncode == 0, done.stderr

    _ann, _bob, pa, pb, _room = two_friends(webapp_server, new_page)
    open_room(pa, "Bob")
    open_room(pb, "Ann")
    pa.get_by_role("button", name="Stickers").click()
    picker = pa.get_by_role("dialog", name="Stickers")
    expect(picker.get_by_role("heading", name="Happy Cats")).to_be_visible()
    expect(picker.get_by_role("button", name="Sticker", exact=True)).to_be_visible()  # no emoji
    picker.get_by_role("button", name="😺").click()
    expect(picker).to_have_count(0)
    sticker = log(pb).get_by_role("img", name="😺")
    expect(sticker).to_have_attribute("src", re.compile("^blob:"), timeout=SLOW)
    assert sticker.evaluate("img => img.decode().then(() => img.naturalWidth)") == 64


def test_search_finds_a_stored_message_and_opens_it_highlighted(
    webapp_server: ServerProcess, new_page: Callable[..., Page]
) -> None:
    ann, bob, pa, _pb, direct = two_friends(webapp_server, new_page)
    for n in range(60):  # the one looked for is far above the newest page
        send_rest(webapp_server, bob, direct, "the blue pineapple" if n == 3 else f"filler {n}")
    open_room(pa, "Bob")
    expect(message(pa, "filler 59")).to_be_visible(timeout=SLOW)
    expect(log(pa).get_by_role("button", name="Load older")).to_be_visible()
    log(pa).evaluate("log => { log.scrollTop = 0; }")  # scrolled to the top: the older page comes
    expect(message(pa, "the blue pineapple")).to_be_attached()
    expect(message(pa, "filler 0")).to_be_attached()
    expect(log(pa).get_by_role("button", name="Load older")).to_be_hidden()  # nothing older

    # Another room open; Ctrl+K searches what this browser stored.
    group_room(webapp_server, ann, "Elsewhere", bob)
    open_room(pa, "Elsewhere")
    pa.keyboard.press("Control+k")
    search = pa.get_by_role("dialog", name="Search")
    search.get_by_label("Search messages").fill("blue pine")
    result = search.get_by_role("list", name="Results").get_by_role("button")
    expect(result).to_have_count(1)
    expect(result).to_contain_text("the blue pineapple")
    expect(result).to_contain_text("Bob")
    result.click()
    expect(pa.get_by_role("heading", name="Bob", exact=True)).to_be_visible()
    found = message(pa, "the blue pineapple")
    expect(found).to_have_class(re.compile("highlight"))
    expect(found).to_be_in_viewport()
    expect(found).to_be_focused()


def test_settings_switch_the_theme_and_keep_it(
    webapp_server: ServerProcess, new_page: Callable[..., Page], tmp_path: Path
) -> None:
    ann = person(webapp_server, "Ann")
    page = new_page(color_scheme="light")
    log_in(page, ann["username"])
    html = page.locator("html")
    background = "getComputedStyle(document.body).backgroundColor"
    light = page.evaluate(background)
    page.get_by_role("button", name="Settings").click()
    settings = page.get_by_role("dialog", name="Settings")
    settings.get_by_role("radio", name="Dark").check()
    expect(html).to_have_attribute("data-theme", "dark")
    assert page.evaluate(background) != light
    # Push settings are the server's: a change is saved there.
    saved = lambda r: r.url.endswith("/me/settings") and r.request.method == "PATCH"  # noqa: E731
    with page.expect_response(saved) as answer:
        settings.get_by_label("Groups").select_option("mentions")
    assert answer.value.ok
    with rest(webapp_server, ann) as http:
        assert http.get("/me/settings").json()["push"]["group"] == "mentions"
    # The profile: a new display name and an avatar, shown at the top of the sidebar.
    settings.get_by_label("Display name").fill("Annie")
    settings.get_by_role("button", name="Save name").click()
    expect(page.get_by_role("heading", name="Annie", level=1)).to_be_visible()
    picture = tmp_path / "me.png"
    picture.write_bytes(png(64, "green"))
    settings.get_by_label("Avatar").set_input_files(str(picture))
    expect(page.locator(".side-head .avatar img")).to_be_visible(timeout=SLOW)
    page.keyboard.press("Escape")
    page.reload()
    expect(page.get_by_role("list", name="Rooms")).to_be_attached()
    expect(html).to_have_attribute("data-theme", "dark")
    expect(page.get_by_role("heading", name="Annie", level=1)).to_be_visible()
    page.get_by_role("button", name="Settings").click()
    settings.get_by_role("radio", name="System").check()
    expect(html).not_to_have_attribute("data-theme", re.compile("."))
    assert page.evaluate(background) == light
    # Log out: back to the login screen, and the login no longer works on the server.
    settings.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    expect(page.get_by_role("list", name="Rooms")).to_have_count(0)


def test_a_phone_sized_screen_shows_one_pane_with_back(
    webapp_server: ServerProcess, new_page: Callable[..., Page]
) -> None:
    ann, bob = person(webapp_server, "Ann"), person(webapp_server, "Bob")
    befriend(webapp_server, ann, bob)
    room = direct_room(webapp_server, ann, bob)
    send_rest(webapp_server, bob, room, "hi from a phone test")
    page = new_page(viewport={"width": 375, "height": 667}, is_mobile=True, has_touch=True)
    log_in(page, ann["username"])
    room_button = rooms(page).get_by_role("button", name=re.compile("^Bob"))
    expect(room_button).to_be_visible()
    expect(log(page)).to_be_hidden()
    room_button.click()
    expect(message(page, "hi from a phone test")).to_be_visible()
    expect(rooms(page)).to_be_hidden()
    expect(page.get_by_role("textbox", name="Message")).to_be_visible()
    page.get_by_role("button", name="Back").click()
    expect(room_button).to_be_visible()
    expect(log(page)).to_be_hidden()
    # Nothing sticks out sideways.
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


def test_keyboard_moves_between_rooms_and_opens_a_room_from_the_url(
    webapp_server: ServerProcess, new_page: Callable[..., Page]
) -> None:
    ann, bob = person(webapp_server, "Ann"), person(webapp_server, "Bob")
    befriend(webapp_server, ann, bob)
    direct = direct_room(webapp_server, ann, bob)
    group = group_room(webapp_server, ann, "Book club", bob)
    send_rest(webapp_server, bob, direct, "older news")
    asked = send_rest(webapp_server, bob, group, "newer news")
    page = new_page()
    log_in(page, ann["username"])
    expect(page.get_by_role("heading", name="Book club", exact=True)).to_be_visible()  # the latest
    page.get_by_role("textbox", name="Message").focus()
    page.keyboard.press("Alt+ArrowDown")
    expect(page.get_by_role("heading", name="Bob", exact=True)).to_be_visible()
    page.keyboard.press("Alt+ArrowUp")
    expect(page.get_by_role("heading", name="Book club", exact=True)).to_be_visible()

    # What a notification's click opens: the room, replying to the message.
    page.goto(f"/?room={direct}&reply={asked['id']}")
    expect(page.get_by_role("heading", name="Bob", exact=True)).to_be_visible()
    page.goto(f"/?room={group}&reply={asked['id']}")
    expect(page.get_by_role("heading", name="Book club", exact=True)).to_be_visible()
    expect(page.get_by_text("Replying to Bob: newer news")).to_be_visible()
    send(page, "count me in")
    answer = message(page, "count me in")
    expect(answer.get_by_role("button", name=re.compile("In reply to"))).to_contain_text(
        "newer news"
    )
    assert "room=" not in page.url


def test_a_refused_send_shows_failed_with_the_reason_and_retry_and_cancel(
    webapp_server: ServerProcess, new_page: Callable[..., Page]
) -> None:
    ann, bob, pa, _pb, _room = two_friends(webapp_server, new_page)
    open_room(pa, "Bob")
    with rest(webapp_server, bob) as http:
        http.post("/blocks", json={"user_id": ann["user"]["id"]}).raise_for_status()
    send(pa, "can you hear me?")
    refused = message(pa, "can you hear me?")
    expect(refused.locator(".mark")).to_have_text(
        "✗ failed: This user does not accept messages from you.", timeout=SLOW
    )
    # Retry sends it again (refused again: the block holds); Cancel drops it.
    refused.get_by_role("button", name="Retry").click()
    expect(refused.locator(".mark")).to_contain_text("✗ failed", timeout=SLOW)
    refused.get_by_role("button", name="Cancel").click()
    expect(refused).to_have_count(0)
    # Edit on a failed entry fixes it and queues it again (here: refused again).
    send(pa, "second try")
    again = message(pa, "second try")
    expect(again.locator(".mark")).to_contain_text("✗ failed", timeout=SLOW)
    with rest(webapp_server, bob) as http:
        http.delete(f"/blocks/{ann['user']['id']}").raise_for_status()
    act(pa, "second try", "Edit")
    box = pa.get_by_role("textbox", name="Message")
    expect(box).to_have_value("second try")
    box.fill("third try")
    box.press("Enter")
    expect(message(pa, "third try").locator(".mark")).to_have_text(
        re.compile("^✓✓?$"), timeout=SLOW
    )
    expect(message(pa, "second try")).to_have_count(0)


def test_a_new_group_from_contacts_reaches_its_members_and_every_button_is_named(
    webapp_server: ServerProcess, new_page: Callable[..., Page]
) -> None:
    _ann, _bob, pa, pb, _room = two_friends(webapp_server, new_page)
    pa.get_by_role("button", name="New group").click()
    dialog = pa.get_by_role("dialog", name="New group")
    dialog.get_by_role("button", name="Create group").click()
    expect(dialog.get_by_role("alert")).to_have_text("Give the group a name.")
    dialog.get_by_label("Group name").fill("Weekend plans")
    dialog.get_by_role("checkbox", name="Bob").check()
    dialog.get_by_role("button", name="Create group").click()
    expect(pa.get_by_role("heading", name="Weekend plans", exact=True)).to_be_visible()
    expect(pa.get_by_text("2 members")).to_be_visible()
    send(pa, "first!")
    row = rooms(pb).get_by_role("button", name=re.compile("^Weekend plans"))
    expect(row).to_contain_text("Ann: first!", timeout=SLOW)
    expect(row).to_contain_text("1 unread")

    # Every control of the main screen and of each dialog has an accessible name.
    unnamed = """() => [...document.querySelectorAll('button, input, textarea, select')]
        .filter(el => el.offsetParent !== null || el.closest('dialog[open]'))
        .filter(el => !(el.getAttribute('aria-label') || el.textContent.trim()
                        || el.labels?.length || el.title))
        .map(el => el.outerHTML.slice(0, 120))"""
    assert pa.evaluate(unnamed) == []
    for name in ("Contacts", "Search", "New group", "Settings"):
        pa.get_by_role("button", name=name, exact=True).click()
        expect(pa.get_by_role("dialog")).to_be_visible()
        assert pa.evaluate(unnamed) == [], name
        pa.keyboard.press("Escape")
        expect(pa.get_by_role("dialog")).to_have_count(0)


def test_a_muted_room_shows_no_toast_and_is_kept_in_the_server_settings(
    webapp_server: ServerProcess, new_page: Callable[..., Page]
) -> None:
    ann, bob, _pa, pb, _direct = two_friends(webapp_server, new_page)
    group = group_room(webapp_server, ann, "Noisy group", bob)
    open_room(pb, "Noisy group")
    pb.get_by_role("button", name="Room options").click()
    saved = lambda r: r.url.endswith("/me/settings") and r.request.method == "PATCH"  # noqa: E731
    with pb.expect_response(saved):
        pb.get_by_role("button", name="Mute notifications").click()
    with rest(webapp_server, bob) as http:
        assert http.get("/me/settings").json()["push"]["rooms"] == {group: "none"}
    open_room(pb, "Ann")
    send_rest(webapp_server, ann, group, "nobody listens")
    row = rooms(pb).get_by_role("button", name=re.compile("^Noisy group"))
    expect(row).to_contain_text("nobody listens", timeout=SLOW)
    notifications = pb.get_by_role("status", name="Notifications")
    expect(notifications.locator(".toast").filter(has_text="nobody listens")).to_have_count(0)
    # Unmuted again from the room's menu: the next message shows a toast.
    open_room(pb, "Noisy group")
    pb.get_by_role("button", name="Room options").click()
    with pb.expect_response(saved):
        pb.get_by_role("button", name="Unmute notifications").click()
    open_room(pb, "Ann")
    send_rest(webapp_server, ann, group, "now someone does")
    expect(notifications.locator(".toast").filter(has_text="now someone does")).to_be_visible(
        timeout=SLOW
    )


def test_blocking_and_unblocking_from_the_contacts(
    webapp_server: ServerProcess, new_page: Callable[..., Page]
) -> None:
    _ann, bob, pa, _pb, room = two_friends(webapp_server, new_page)
    pa.get_by_role("button", name="Contacts").click()
    dialog = pa.get_by_role("dialog", name="Contacts")
    mine = (
        dialog.get_by_role("list", name="Your contacts")
        .get_by_role("listitem")
        .filter(has_text="Bob")
    )
    expect(mine).to_contain_text("online", timeout=SLOW)
    mine.get_by_role("button", name="Block").click()
    pa.get_by_role("dialog", name="Block Bob?").get_by_role("button", name="Block").click()
    blocked = dialog.get_by_role("list", name="Blocked people")
    expect(blocked).to_contain_text("Bob")
    expect(dialog.get_by_role("list", name="Your contacts")).not_to_contain_text("Bob")
    with rest(webapp_server, bob) as http:  # the block holds on the server
        answer = http.post(f"/rooms/{room}/messages", json={"ref": "blocked-1", "body": "hey"})
        assert answer.status_code == 403
    blocked.get_by_role("listitem").filter(has_text="Bob").get_by_role(
        "button", name="Unblock"
    ).click()
    expect(dialog.get_by_role("list", name="Blocked people")).to_be_hidden()
    # Found again by name: an invitation can go out once more.
    dialog.get_by_label("Find people").fill(bob["username"])
    found = dialog.get_by_role("list", name="People found").get_by_role("listitem")
    found.get_by_role("button", name="Invite").click()
    expect(dialog.get_by_role("list", name="Your invitations")).to_contain_text("Bob")
