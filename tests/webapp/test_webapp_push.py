"""Web Push in the browser app: the service worker shows pushes, answers them from the
notification, opens the app at the room; push.js registers the subscription; the app shell
loads offline. A real server (with a VAPID key) and Debian's Chromium.

Headless Chromium reaches no push service, so `pushManager.subscribe` fails here: pushes are
dispatched into the service worker by the test (`new PushEvent('push', {data})`, the JSON a
push service would deliver decrypted), and the device registration is tested with a made-up
subscription through `registerSubscription`, the part of `enablePush` after subscribing.
"""

from __future__ import annotations

import base64
import posixpath
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import expect
from webapp_support import PASSWORD, register_user

from chatcore.testing.server import ServerProcess, start_server
from chatcore_webapp.assets import STATIC, load_release
from chatcore_webpush.vapid import generate_private_key, private_key_text, public_key_text

pytestmark = pytest.mark.e2e

#: Flood control out of the way, as conftest's server has it.
FLOOD_OFF = {"websocket": {"rate_per_second": 100_000, "rate_burst": 100_000}}
SHELL_CACHE = "chatcore-shell-v1"
#: The service worker's own modules: the browser keeps those, the shell cache does not.
WORKER_FILES = {"sw.js", "shell.js"}
#: A subscription as PushSubscription.toJSON() gives it, with keys of RFC 8291's sizes.
SUBSCRIPTION_KEYS = {
    "p256dh": base64.urlsafe_b64encode(b"\x04" + bytes(range(64))).decode().rstrip("="),
    "auth": base64.urlsafe_b64encode(bytes(range(16))).decode().rstrip("="),
}

REGISTER_WORKER = """async () => {
  await navigator.serviceWorker.register('./sw.js', {type: 'module'});
  await navigator.serviceWorker.ready;
}"""
LOGIN = """async ([username, password]) => {
  const {Api} = await import('./js/engine/api.js');
  return (await new Api({base: '/api/v1'}).login(username, password)).user;
}"""
PUSH = """async (push) => {
  self.dispatchEvent(new PushEvent('push', {data: JSON.stringify(push)}));
  return await self.lastWork;
}"""
NOTIFICATIONS = """async () => (await self.registration.getNotifications()).map((n) => ({
  title: n.title, body: n.body, tag: n.tag, data: n.data,
  actions: n.actions.map((a) => ({action: a.action, type: a.type, title: a.title})),
}))"""
CLICK = """async ({tag, action, reply}) => {
  const [notification] = await self.registration.getNotifications({tag});
  if (!notification) throw new Error('no notification tagged ' + tag);
  const init = {notification};
  if (action) init.action = action;
  if (reply !== null) init.reply = reply;
  self.dispatchEvent(new NotificationEvent('notificationclick', init));
  return await self.lastWork;
}"""

#: The messages of the device store, read in the worker (which may not import() modules).
STORED_MESSAGES = """() => new Promise((resolve, reject) => {
  const open = indexedDB.open('chatcore');
  open.onerror = () => reject(open.error);
  open.onsuccess = () => {
    const all = open.result.transaction('messages').objectStore('messages').getAll();
    all.onsuccess = () => { open.result.close(); resolve(all.result); };
    all.onerror = () => reject(all.error);
  };
})"""


@pytest.fixture(scope="module")
def vapid_key() -> ec.EllipticCurvePrivateKey:
    return generate_private_key()


@pytest.fixture(scope="module")
def webapp_server(
    tmp_path_factory: pytest.TempPathFactory, vapid_key: ec.EllipticCurvePrivateKey
) -> Iterator[ServerProcess]:
    """conftest's server, with Web Push on (this module's tests need the VAPID key)."""
    webpush = {"vapid_private_key": private_key_text(vapid_key), "vapid_subject": "mailto:a@b.c"}
    overrides = {**FLOOD_OFF, "webpush": webpush}
    with start_server(tmp_path_factory.mktemp("webapp-push"), overrides=overrides) as server:
        yield server


class Person:
    """A user registered over REST, with a REST client of their own."""

    def __init__(self, server: ServerProcess, prefix: str, display_name: str) -> None:
        self.username = f"{prefix}{uuid.uuid4().hex[:8]}"
        tokens = register_user(server, self.username, display_name=display_name)
        self.id: str = tokens["user"]["id"]
        self.http = httpx.Client(
            base_url=server.api,
            headers={"Authorization": "Bearer " + tokens["access_token"]},
            timeout=10,
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        assert response.status_code < 300, response.text
        return response.json() if response.content else None

    def direct(self, other: Person) -> dict[str, Any]:
        room: dict[str, Any] = self.call(
            "POST", "/rooms", json={"kind": "direct", "user_id": other.id}
        )
        return room

    def group(self, name: str, *members: Person) -> dict[str, Any]:
        body = {"kind": "group", "name": name, "member_ids": [m.id for m in members]}
        room: dict[str, Any] = self.call("POST", "/rooms", json=body)
        return room

    def send(self, room: dict[str, Any], body: str) -> dict[str, Any]:
        message: dict[str, Any] = self.call(
            "POST", f"/rooms/{room['id']}/messages", json={"ref": uuid.uuid4().hex, "body": body}
        )
        return message

    def history(self, room: dict[str, Any]) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self.call("GET", f"/rooms/{room['id']}/messages")[
            "messages"
        ]
        return messages


@pytest.fixture
def person(webapp_server: ServerProcess) -> Iterator[Callable[[str, str], Person]]:
    made: list[Person] = []

    def make(prefix: str, display_name: str) -> Person:
        made.append(Person(webapp_server, prefix, display_name))
        return made[-1]

    yield make
    for one in made:
        one.http.close()


class AppInBrowser:
    """The app open in a browser context of its own, its service worker running."""

    def __init__(self, page: Any, worker: Any, errors: list[str]) -> None:
        self.page = page
        self.context = page.context
        self.worker = worker
        self.errors = errors

    def push(self, push: dict[str, Any]) -> Any:
        return self.worker.evaluate(PUSH, push)

    def notifications(self) -> list[dict[str, Any]]:
        shown: list[dict[str, Any]] = self.worker.evaluate(NOTIFICATIONS)
        return shown

    def click(self, tag: str, action: str | None = None, reply: str | None = None) -> Any:
        return self.worker.evaluate(CLICK, {"tag": tag, "action": action, "reply": reply})


@pytest.fixture
def open_app(
    new_page: Callable[..., Any], webapp_server: ServerProcess
) -> Iterator[Callable[[Person | None], AppInBrowser]]:
    """`open_app(person)`: the app loaded, its service worker active, `person` logged in (the
    tokens in IndexedDB, where the worker reads them). Fails the test on a worker error."""
    errors: list[str] = []

    def make(who: Person | None) -> AppInBrowser:
        page = new_page()
        page.context.grant_permissions(["notifications"], origin=webapp_server.base_url)
        page.goto("/")
        page.evaluate(REGISTER_WORKER)
        workers = page.context.service_workers
        worker = workers[0] if workers else page.context.wait_for_event("serviceworker")
        worker.on(
            "console",
            lambda msg: errors.append(msg.text) if msg.text.startswith("service worker:") else None,
        )
        if who is not None:
            user = page.evaluate(LOGIN, [who.username, PASSWORD])
            assert user["id"] == who.id
        return AppInBrowser(page, worker, errors)

    yield make
    assert not errors, "the service worker failed: " + "; ".join(errors)


def closed(app: AppInBrowser) -> AppInBrowser:
    """The app's window closed: its worker alone gets the pushes (as when the app is not open)."""
    app.page.close()
    return app


# --- the VAPID key and the device ------------------------------------------------------------


def test_push_js_reads_the_server_key_and_says_off(
    open_app: Callable[..., AppInBrowser],
    person: Callable[[str, str], Person],
    vapid_key: ec.EllipticCurvePrivateKey,
) -> None:
    app = open_app(person("ann", "Ann"))
    found = app.page.evaluate(
        """async () => {
      const push = await import('./js/engine/push.js');
      return {supported: push.pushSupported(), key: await push.applicationServerKey(),
              status: await push.pushStatus()};
    }"""
    )
    assert found == {"supported": True, "key": public_key_text(vapid_key), "status": "off"}


def test_enable_push_says_why_when_the_browser_cannot_subscribe(
    open_app: Callable[..., AppInBrowser], person: Callable[[str, str], Person]
) -> None:
    ann = person("ann", "Ann")
    app = open_app(ann)
    failure = app.page.evaluate(
        """async () => {
      const push = await import('./js/engine/push.js');
      try { await push.enablePush(); return null; }
      catch (err) { return {code: err.code, message: err.message}; }
    }"""
    )
    if failure is None:  # a headless Chromium that does reach a push service
        assert len(ann.call("GET", "/push/devices")["devices"]) == 1
        return
    assert failure["code"] == "subscribe_failed"
    assert failure["message"].startswith("The browser could not subscribe")
    assert ann.call("GET", "/push/devices")["devices"] == []


def test_a_subscription_is_registered_as_a_device_and_removed(
    open_app: Callable[..., AppInBrowser], person: Callable[[str, str], Person]
) -> None:
    ann = person("ann", "Ann")
    app = open_app(ann)
    endpoint = f"https://push.example.invalid/send/{uuid.uuid4().hex}"
    device = app.page.evaluate(
        """async (subscription) => {
      const push = await import('./js/engine/push.js');
      const db = await import('./js/engine/db.js');
      const device = await push.registerSubscription(subscription);
      return {device, kept: await db.kvGet('push_device')};
    }""",
        {"endpoint": endpoint, "keys": SUBSCRIPTION_KEYS},
    )
    registered = ann.call("GET", "/push/devices")["devices"]
    assert [d["id"] for d in registered] == [device["device"]["id"]]
    assert registered[0]["platform"] == "webpush"
    assert registered[0]["endpoint"] == endpoint
    assert device["kept"] == {"id": device["device"]["id"], "endpoint": endpoint, "user_id": ann.id}

    removed = app.page.evaluate(
        """async () => {
      const push = await import('./js/engine/push.js');
      const db = await import('./js/engine/db.js');
      return [await push.unregisterDevice(), await db.kvGet('push_device') ?? null,
              await push.unregisterDevice()];
    }"""
    )
    assert removed == [True, None, False]
    assert ann.call("GET", "/push/devices")["devices"] == []


def test_logging_out_removes_this_browsers_device(
    open_app: Callable[..., AppInBrowser], person: Callable[[str, str], Person]
) -> None:
    """The next person to log in on this browser must not get the last one's pushes."""
    ann = person("ann", "Ann")
    app = open_app(ann)
    endpoint = f"https://push.example.invalid/send/{uuid.uuid4().hex}"
    app.page.evaluate(
        """async (subscription) => {
      const push = await import('./js/engine/push.js');
      await push.registerSubscription(subscription);
      const {Client} = await import('./js/engine/client.js');
      await (await Client.open({base: '/api/v1'})).logout();
    }""",
        {"endpoint": endpoint, "keys": SUBSCRIPTION_KEYS},
    )
    assert ann.call("GET", "/push/devices")["devices"] == []


def test_status_is_unavailable_on_a_server_without_web_push(browser: Any, tmp_path: Path) -> None:
    with start_server(tmp_path, overrides=FLOOD_OFF) as server:
        context = browser.new_context(base_url=server.base_url)
        try:
            context.grant_permissions(["notifications"], origin=server.base_url)
            page = context.new_page()
            page.goto("/")
            found = page.evaluate(
                """async () => {
              const push = await import('./js/engine/push.js');
              const status = await push.pushStatus();
              try { await push.enablePush(); return [status, null]; }
              catch (err) { return [status, err.code]; }
            }"""
            )
        finally:
            context.close()
    assert found == ["unavailable", "unavailable"]


# --- pushes become notifications ---------------------------------------------------------------


def test_a_push_shows_a_notification_with_a_reply_action(
    open_app: Callable[..., AppInBrowser], person: Callable[[str, str], Person]
) -> None:
    ann, bob = person("ann", "Ann"), person("bob", "Bob")
    room = bob.group("Climbing crew", ann)
    app = closed(open_app(ann))
    push = {
        "type": "message", "room_id": room["id"], "message_id": "m-1", "seq": 1,
        "ts": 1_700_000_000_000, "sender_id": bob.id, "sender_name": "Bob",
        "room_name": "Climbing crew", "preview": "see you at 6?", "direct": False,
        "mention": False,
    }  # fmt: skip
    notice = app.push(push)
    assert notice["title"] == "Climbing crew"
    shown = app.notifications()
    assert shown == [
        {
            "title": "Climbing crew",
            "body": "Bob: see you at 6?",
            "tag": "message:m-1",
            "data": {"room_id": room["id"], "message_id": "m-1", "seq": 1},
            "actions": [
                {"action": "reply", "type": "text", "title": "Reply"},
                {"action": "open", "type": "button", "title": "Open"},
            ],
        }
    ]
    # A direct message: the sender is the title. A push sent twice (at least once) shows once.
    direct = {**push, "message_id": "m-2", "seq": 2, "direct": True, "preview": "and you?"}
    direct.pop("room_name")
    app.push(direct)
    app.push(direct)
    titles = sorted((n["title"], n["body"]) for n in app.notifications())
    assert titles == [("Bob", "and you?"), ("Climbing crew", "Bob: see you at 6?")]


def test_an_id_only_push_is_completed_from_the_server(
    open_app: Callable[..., AppInBrowser], person: Callable[[str, str], Person]
) -> None:
    ann, bob = person("ann", "Ann"), person("bob", "Bobby Tables")
    group = bob.group("Team", ann)
    in_group = bob.send(group, "lunch\n at   12?")
    direct = bob.direct(ann)
    in_direct = bob.send(direct, "psst")
    app = open_app(ann)
    # The device knows the group (as the engine stores rooms), not the direct room.
    known = ann.call("GET", f"/rooms/{group['id']}")
    app.page.evaluate(
        "async (room) => (await import('./js/engine/db.js')).put('rooms', room)", known
    )
    closed(app)

    def id_only(message: dict[str, Any]) -> dict[str, Any]:
        return {k: message[k] for k in ("room_id", "seq")} | {
            "type": "message", "message_id": message["id"]
        }  # fmt: skip

    app.push(id_only(in_group))
    app.push(id_only(in_direct))
    shown = {n["tag"]: (n["title"], n["body"]) for n in app.notifications()}
    assert shown == {
        f"message:{in_group['id']}": ("Team", "Bobby Tables: lunch at 12?"),
        f"message:{in_direct['id']}": ("Bobby Tables", "psst"),
    }
    # The fetched message is kept on the device, in the room it knows, for the app to show.
    stored = app.worker.evaluate(STORED_MESSAGES)
    assert [(m["id"], m["body"]) for m in stored] == [(in_group["id"], "lunch\n at   12?")]


def test_an_id_only_push_that_cannot_be_completed_says_new_message(
    open_app: Callable[..., AppInBrowser], person: Callable[[str, str], Person]
) -> None:
    ann, bob, cy = person("ann", "Ann"), person("bob", "Bob"), person("cy", "Cy")
    theirs = bob.direct(cy)  # a room Ann is not in: the server answers not_found
    secret = bob.send(theirs, "not for ann")
    app = closed(open_app(ann))
    push = {"type": "message", "room_id": theirs["id"], "message_id": secret["id"], "seq": 1}
    app.push(push)
    assert [(n["title"], n["body"]) for n in app.notifications()] == [("New message", "")]


def test_nothing_is_shown_while_the_app_is_focused(
    open_app: Callable[..., AppInBrowser], person: Callable[[str, str], Person]
) -> None:
    ann = person("ann", "Ann")
    app = open_app(ann)  # the window stays open, and headless pages have the focus
    push = {"type": "message", "room_id": "r", "message_id": "m", "seq": 1, "preview": "hi"}
    assert app.push(push) is None
    assert app.notifications() == []


# --- answering from the notification ------------------------------------------------------


def test_reply_from_the_notification_is_posted_without_opening_the_app(
    open_app: Callable[..., AppInBrowser], person: Callable[[str, str], Person]
) -> None:
    ann, bob = person("ann", "Ann"), person("bob", "Bob")
    room = bob.direct(ann)
    question = bob.send(room, "coffee?")
    app = closed(open_app(ann))
    app.push(
        {"type": "message", "room_id": room["id"], "message_id": question["id"],
         "seq": question["seq"], "sender_name": "Bob", "preview": "coffee?", "direct": True}
    )  # fmt: skip
    done = app.click(f"message:{question['id']}", action="reply", reply="  yes, at 3  ")
    answer = done["sent"]
    assert answer["body"] == "yes, at 3" and answer["reply_to"] == question["id"]
    latest = bob.history(room)[0]  # newest first: what Bob sees
    assert latest["id"] == answer["id"]
    assert latest["sender_id"] == ann.id
    assert latest["body"] == "yes, at 3"
    assert latest["reply_to"] == question["id"]
    assert app.notifications() == []  # answered: the notification is gone
    assert app.context.pages == []  # and no window was opened for it


def test_a_reply_that_fails_says_so_and_keeps_the_text(
    open_app: Callable[..., AppInBrowser], person: Callable[[str, str], Person]
) -> None:
    ann = person("ann", "Ann")
    app = closed(open_app(ann))
    gone = {"type": "message", "room_id": "no-such-room", "message_id": "m-9", "seq": 9,
            "sender_name": "Bob", "preview": "hi", "direct": True}  # fmt: skip
    app.push(gone)
    done = app.click("message:m-9", action="reply", reply="hello?")
    assert "failed" in done
    shown = app.notifications()
    assert len(shown) == 1
    assert shown[0]["title"].startswith("Reply not sent: ")
    assert shown[0]["title"] == "Reply not sent: " + done["failed"]
    assert shown[0]["body"] == "hello?"
    assert shown[0]["data"]["room_id"] == "no-such-room"


def test_a_reply_when_logged_out_says_so(
    open_app: Callable[..., AppInBrowser], person: Callable[[str, str], Person]
) -> None:
    ann, bob = person("ann", "Ann"), person("bob", "Bob")
    room = bob.direct(ann)
    question = bob.send(room, "there?")
    app = open_app(ann)
    app.page.evaluate(
        "async () => { const {Api} = await import('./js/engine/api.js');"
        " await new Api().logout(); }"
    )
    closed(app)
    app.push(
        {"type": "message", "room_id": room["id"], "message_id": question["id"], "seq": 1,
         "sender_name": "Bob", "preview": "there?", "direct": True}
    )  # fmt: skip
    done = app.click(f"message:{question['id']}", action="reply", reply="yes")
    assert done == {"failed": "You are logged out; log in again."}
    assert [m["body"] for m in bob.history(room)] == ["there?"]


def test_a_click_opens_the_room_in_the_open_app(
    open_app: Callable[..., AppInBrowser], person: Callable[[str, str], Person]
) -> None:
    ann = person("ann", "Ann")
    app = open_app(ann)
    app.page.evaluate(
        """() => {
      window.__opened = [];
      navigator.serviceWorker.addEventListener('message', (e) => window.__opened.push(e.data));
      navigator.serviceWorker.startMessages();
    }"""
    )
    data = {"room_id": "room-1", "message_id": "m-1", "seq": 1}
    app.worker.evaluate(
        "async (data) => self.registration.showNotification('Bob', {tag: 't1', data})", data
    )
    assert app.click("t1") == {"opened": "focused"}
    app.page.wait_for_function("() => window.__opened.length === 1")
    # Reply where the browser has no text field: the app opens at the room, replying.
    app.worker.evaluate(
        "async (data) => self.registration.showNotification('Bob', {tag: 't2', data})", data
    )
    assert app.click("t2", action="reply") == {"opened": "focused"}
    app.page.wait_for_function("() => window.__opened.length === 2")
    opened = app.page.evaluate("() => window.__opened")
    assert opened == [
        {"type": "open", "room_id": "room-1"},
        {"type": "open", "room_id": "room-1", "reply_to": "m-1"},
    ]
    assert app.notifications() == []


# --- the app shell ------------------------------------------------------------------------------


def app_files() -> set[str]:
    """Every file the server serves for the app, but the worker's own modules."""
    served = {".html", ".js", ".css", ".svg", ".png", ".ico", ".webmanifest", ".json"}
    return {
        p.relative_to(STATIC).as_posix()
        for p in STATIC.rglob("*")
        if p.is_file() and p.suffix in served
    } - WORKER_FILES


#: A static import statement (at the start of a line, so a comment's example is no import).
IMPORT = re.compile(r"""^(?:import|export)\b[^;'"]*?\bfrom\s*['"](\.{1,2}/[^'"]+)['"]""", re.M)


def worker_modules() -> set[str]:
    """The modules sw.js imports, directly or not: the browser keeps those with the worker,
    so the page need not load them for the worker to run offline."""
    found: set[str] = set()
    todo = ["sw.js"]
    while todo:
        path = todo.pop()
        source = (STATIC / path).read_text()
        for ref in IMPORT.findall(source):
            target = posixpath.normpath(posixpath.join(posixpath.dirname(path), ref))
            if target not in found:
                found.add(target)
                todo.append(target)
    return found


def test_the_app_loads_offline_from_the_shell_cache(
    open_app: Callable[..., AppInBrowser], person: Callable[[str, str], Person],
    webapp_server: ServerProcess,
) -> None:  # fmt: skip
    ann = person("ann", "Ann")
    app = open_app(ann)  # logging in went through the worker's fetch handler (not cached)
    cached = app.worker.evaluate(
        "async (name) => (await (await caches.open(name)).keys()).map((r) => r.url)", SHELL_CACHE
    )
    base = webapp_server.base_url + "/"
    assert all(url.startswith(base) for url in cached)
    # The page points at the release's copies (v/<version>/...): one release, never mixed.
    release = load_release().prefix
    paths = {url[len(base) :].removeprefix(release) for url in cached}
    assert not any(path.startswith("api/") for path in paths)  # the API is never cached
    assert not any(path.startswith("v/") for path in paths)  # no other release's files
    # Found from the page: every file of the app is reachable from index.html, and cached.
    unreached = app_files() - paths - worker_modules()
    assert not unreached, f"not referenced from the page, so not cached for offline: {unreached}"
    assert paths <= app_files()

    app.context.set_offline(True)
    app.page.reload()
    expect(app.page).to_have_title("chatcore")
    expect(app.page.locator("main#app")).to_be_attached()
    # The modules came too: the app booted (from IndexedDB) and drew its screen.
    expect(app.page.locator("main#app")).not_to_have_attribute("aria-busy", "true")
    # Offline indeed (the emulation covers the worker's fetches too): the API fails.
    failed = app.page.evaluate(
        "async () => { try { await fetch('/api/v1/info'); return false; } catch { return true; } }"
    )
    assert failed
    stylesheet = app.page.evaluate(
        "() => [...document.styleSheets].some((s) => s.href && s.href.endsWith('/css/app.css'))"
    )
    assert stylesheet
