"""Benchmark the browser app (`chatcore_webapp`) in Debian's Chromium, driven by Playwright.

- first paint of the room list: a browser that has the account's `--rooms` rooms in its
  IndexedDB loads the page again; from the navigation's start to the app's mark
  `chatcore:rooms-painted` (the room list drawn from IndexedDB, before the server answers).
  Also the browser's own first contentful paint. Target: 300 ms on loopback.
- message on screen: another user sends `--messages` messages over REST into the open room;
  from the send (the machine's clock) to the text in the page (a MutationObserver's clock).
- size: the page's own script, styles and HTML, raw and gzip-compressed (as served).
  Target: under 150 KB compressed.

Prints a markdown table. Not a test: the numbers depend on the machine.

    .venv/bin/python bench/webapp_bench.py [--rooms 50] [--per-room 20] [--loads 10]
                                           [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import gzip
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright

from chatcore.testing.server import ServerProcess, start_server
from chatcore.testing.users import PASSWORD, TestUser, new_user
from chatcore_webapp.assets import load_assets

NO_FLOOD_CONTROL = {"rate_per_second": 100_000, "rate_burst": 100_000}

#: Sets `window.seenAt`, a promise of Date.now() when `text` first appears in the message log.
WATCH = """text => { window.seenAt = new Promise(resolve => {
  const log = document.querySelector('[role=log]');
  const found = () => log.textContent.includes(text);
  if (found()) return resolve(Date.now());
  new MutationObserver((_, observer) => {
    if (found()) { observer.disconnect(); resolve(Date.now()); }
  }).observe(log, {childList: true, subtree: true, characterData: true});
}); }"""


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def row(name: str, values: list[float], target: str) -> str:
    return (
        f"| {name} | {statistics.median(values):.1f} ms | {pct(values, 99):.1f} ms "
        f"| {max(values):.1f} ms | {target} |"
    )


def seed(server: ServerProcess, rooms: int, per_room: int) -> tuple[TestUser, TestUser, str]:
    """alice and bob share `rooms` group rooms of `per_room` messages; the first one's id."""
    alice, bob = new_user(server.api, "alice"), new_user(server.api, "bob")
    first = ""
    with httpx.Client(base_url=server.api, headers=bob.headers, timeout=30) as http:
        for index in range(rooms):
            body = {"kind": "group", "name": f"Room {index:03}", "member_ids": [alice.id]}
            room_id = http.post("/rooms", json=body).json()["id"]
            first = first or room_id
            for seq in range(per_room):
                message = {"ref": f"seed-{index}-{seq}", "body": f"message {seq} of room {index}"}
                http.post(f"/rooms/{room_id}/messages", json=message).raise_for_status()
    return alice, bob, first


def log_in(page: Page, user: TestUser, rooms: int) -> None:
    page.goto("/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("list", name="Rooms").get_by_role("listitem").nth(rooms - 1).wait_for()


def rooms_painted(page: Page, rooms: int) -> tuple[float, float]:
    """Reload; (ms to the room list painted from IndexedDB, ms to first contentful paint)."""
    page.reload()
    page.get_by_role("list", name="Rooms").get_by_role("listitem").nth(rooms - 1).wait_for()
    page.wait_for_function("performance.getEntriesByName('chatcore:rooms-painted').length")
    marks = page.evaluate(
        """() => [performance.getEntriesByName('chatcore:rooms-painted')[0].startTime,
                 (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime]"""
    )
    return float(marks[0]), float(marks[1] or 0)


def on_screen(page: Page, bob: TestUser, room_id: str, count: int) -> list[float]:
    rooms = page.get_by_role("list", name="Rooms")
    rooms.get_by_role("button", name=re.compile("^Room 000")).click()
    page.get_by_role("heading", name="Room 000").wait_for()
    delays = []
    with httpx.Client(base_url=server_api(page), headers=bob.headers, timeout=10) as http:
        for index in range(count):
            text = f"live {index} {time.time_ns()}"
            page.evaluate(WATCH, text)
            sent = time.time() * 1000
            http.post(f"/rooms/{room_id}/messages", json={"ref": text, "body": text})
            delays.append(float(page.evaluate("window.seenAt")) - sent)
    return delays


def server_api(page: Page) -> str:
    return page.evaluate("location.origin") + "/api/v1"


def sizes() -> tuple[int, int]:
    own = [a for a in load_assets() if a.path.endswith((".js", ".css", ".html"))]
    return sum(len(a.body) for a in own), sum(len(gzip.compress(a.body)) for a in own)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rooms", type=int, default=50)
    parser.add_argument("--per-room", type=int, default=20)
    parser.add_argument("--loads", type=int, default=10)
    parser.add_argument("--messages", type=int, default=30)
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        with start_server(Path(tmp), {"websocket": NO_FLOOD_CONTROL}) as server:
            alice, bob, first_room = seed(server, args.rooms, args.per_room)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=args.chromium)
                page = browser.new_context(base_url=server.base_url).new_page()
                log_in(page, alice, args.rooms)
                loads = [rooms_painted(page, args.rooms) for _ in range(args.loads)]
                shown = on_screen(page, bob, first_room, args.messages)
                browser.close()
    raw, packed = sizes()
    print(f"\n{args.rooms} rooms of {args.per_room} messages; Chromium headless, loopback\n")
    print("| scenario | p50 | p99 | max | target |")
    print("|---|---|---|---|---|")
    print(row(f"room list painted ({args.loads} loads)", [a for a, _ in loads], "300 ms"))
    print(row("first contentful paint", [b for _, b in loads], ""))
    print(row("message sent over REST, on screen", shown, ""))
    print(
        f"| script, styles, HTML | {raw / 1024:.1f} KB | {packed / 1024:.1f} KB gzip | | 150 KB |"
    )


if __name__ == "__main__":
    main()
