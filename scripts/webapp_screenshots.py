"""Make the browser app's screenshots in docs/images/ (PNG, Chromium headless via Playwright).

    .venv/bin/python scripts/webapp_screenshots.py [--out docs/images] [--chromium PATH]

The world of scripts/screenshot_world.py (a real server; Ann, Bob, Cyril, Dee; a direct room
and a group with some history), then Ann in the browser: the main screen light and dark, a
message in another room with its quick reply, contacts, search, settings, the phone layout
and the login screen. Run it again after changing how a screen looks, and commit the PNGs.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect, sync_playwright
from screenshot_world import build_world

from chatcore.testing.server import ServerProcess, start_server
from chatcore.testing.users import PASSWORD

DESKTOP = {"width": 1180, "height": 720}
PHONE = {"width": 390, "height": 760}


def log_in(page: Page, username: str) -> None:
    page.goto("/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".banner")).to_be_hidden(timeout=15_000)


def open_room(page: Page, title: str) -> None:
    rooms = page.get_by_role("list", name="Rooms")
    rooms.get_by_role("button", name=re.compile("^" + re.escape(title))).click()
    expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible()


def bob_says(server: ServerProcess, room_id: str, text: str) -> None:
    """Over REST: Playwright's sync API holds this thread's event loop."""
    with httpx.Client(base_url=server.api, timeout=10) as http:
        login = http.post("/auth/login", json={"username": "bob", "password": PASSWORD})
        headers = {"Authorization": "Bearer " + login.json()["access_token"]}
        message = {"ref": "map-question", "body": text}
        http.post(f"/rooms/{room_id}/messages", json=message, headers=headers).raise_for_status()


def shoot(server: ServerProcess, folder: Path, out: Path, chromium: str) -> list[str]:
    world = asyncio.run(build_world(server, folder))
    made: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium)

        def new_page(viewport: dict[str, int], scheme: str = "light") -> Page:
            context = browser.new_context(
                base_url=server.base_url,
                viewport=viewport,
                color_scheme=scheme,  # type: ignore[arg-type]
            )
            return context.new_page()

        def save(page: Page, name: str, settle: Callable[[], None] | None = None) -> None:
            if settle:
                settle()
            page.wait_for_timeout(300)  # transitions end
            page.screenshot(path=str(out / f"web-{name}.png"))
            made.append(f"web-{name}.png")

        login = new_page(DESKTOP)
        login.goto("/")
        expect(login.get_by_role("button", name="Log in")).to_be_visible()
        save(login, "login")

        for scheme in ("light", "dark"):
            page = new_page(DESKTOP, scheme)
            log_in(page, "ann")
            open_room(page, "Bob Baker")
            expect(
                page.get_by_role("log", name="Messages").get_by_role("img").first
            ).to_be_visible()
            page.get_by_role("textbox", name="Message").fill("See you at 9")
            save(page, f"main-{scheme}")
            if scheme == "dark":
                break
            bob_says(server, world.group, "Who brings the map?")
            toast = page.get_by_role("status", name="Notifications")
            expect(toast).to_contain_text("Who brings the map?", timeout=15_000)
            save(page, "notification")
            toast.get_by_role("button", name="Reply").click()
            page.get_by_role("textbox", name="Quick reply").fill("I have one!")
            save(page, "quick-reply")
            page.get_by_role("textbox", name="Quick reply").press("Escape")
            for button, dialog, name in (
                ("Contacts", "Contacts", "contacts"),
                ("Search", "Search", "search"),
                ("Settings", "Settings", "settings"),
            ):
                page.get_by_role("button", name=re.compile("^" + button)).first.click()
                shown = page.get_by_role("dialog", name=dialog)
                expect(shown).to_be_visible()
                if name == "search":
                    shown.get_by_label("Search messages").fill("snacks")
                    expect(shown.get_by_role("listitem").first).to_be_visible()
                save(page, name)
                shown.get_by_role("button", name="Close").click()

        phone = new_page(PHONE)
        log_in(phone, "ann")
        save(phone, "phone-rooms")
        open_room(phone, "Bob Baker")
        save(phone, "phone-dialog")
        browser.close()
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with start_server(folder / "server") as server:
            made = shoot(server, folder, args.out.resolve(), args.chromium)
    print("\n".join(str(args.out / name) for name in made))


if __name__ == "__main__":
    main()
