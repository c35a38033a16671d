"""The browser app's client engine (static/js/engine/*.js) in a real Chromium against a real
server: login, the outbox (ack, offline, across a reload, refusals), live delivery between two
users, catch-up after being away, history paging, edits and deletions, token refresh.

Each test drives the engine with `page.evaluate` on the app's own page: the engine is imported
as the UI imports it (`./js/engine/client.js`), and the test's client lives in `window.__c`,
with every event it announces recorded in `window.__events`. Each user has a browser context
of their own (IndexedDB is per context)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from webapp_support import PASSWORD, register_user

from chatcore.testing.server import ServerProcess, start_server

pytest.importorskip("playwright")

#: Opens the engine in the page, records its events; answers the logged-in user (or null).
OPEN = """async () => {
  const {Client} = await import('./js/engine/client.js');
  const c = await Client.open({base: '/api/v1'});
  window.__c = c;
  window.__events = [];
  const types = ['connection', 'message', 'message_updated', 'outbox', 'room', 'contact',
    'typing', 'receipt', 'presence', 'error', 'account', 'upload'];
  for (const t of types) {
    c.on(t, (d) => window.__events.push(
      {type: t, ...JSON.parse(JSON.stringify(d, (k, v) => (v instanceof Blob ? null : v)))}));
  }
  return c.user;
}"""

#: Waits (in the page) for an event matching a predicate given as a JS function's source.
WAIT_EVENT = """async ([type, predicate, timeout]) => {
  const test = new Function('d', 'return (' + predicate + ')(d)');
  const found = () => window.__events.find((e) => e.type === type && test(e));
  const t0 = Date.now();
  while (!found()) {
    if (Date.now() - t0 > timeout) throw new Error('no ' + type + ' event matching ' + predicate);
    await new Promise((r) => setTimeout(r, 20));
  }
  return found();
}"""


#: Polls (in the page) an async predicate given as a JS function's source, with an argument.
UNTIL = """async ([source, arg, timeout]) => {
  const predicate = new Function('return (' + source + ')')();
  const t0 = Date.now();
  for (;;) {
    const value = await predicate(arg);
    if (value) return value;
    if (Date.now() - t0 > timeout) throw new Error('still false: ' + source);
    await new Promise((r) => setTimeout(r, 25));
  }
}"""


def until(page: Any, predicate: str, arg: Any = None, timeout: int = 10_000) -> Any:
    """Wait until the async JS `predicate(arg)` is truthy; its value."""
    return page.evaluate(UNTIL, [predicate, arg, timeout])


def open_engine(page: Any) -> Any:
    page.goto("/")
    return page.evaluate(OPEN)


def login(page: Any, username: str, *, start: bool = True) -> dict[str, Any]:
    user = page.evaluate("async ([u, p]) => window.__c.login(u, p)", [username, PASSWORD])
    if start:
        page.evaluate("() => window.__c.start()")
        wait_state(page, "ready")
    return user


def wait_state(page: Any, state: str, timeout: int = 10_000) -> None:
    page.wait_for_function("s => window.__c && window.__c.state === s", arg=state, timeout=timeout)


def wait_event(page: Any, kind: str, predicate: str = "d => true", timeout: int = 10_000) -> Any:
    return page.evaluate(WAIT_EVENT, [kind, predicate, timeout])


def wait_entry(page: Any, ref: str, state: str) -> Any:
    """Wait for the `outbox` event of the entry `ref` in `state`; the event."""
    return wait_event(
        page, "outbox", f"d => d.entry.ref === {json.dumps(ref)} && d.entry.state === '{state}'"
    )


def events(page: Any, kind: str) -> list[dict[str, Any]]:
    return page.evaluate("t => window.__events.filter((e) => e.type === t)", kind)


def rest(server: ServerProcess, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.api, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


def direct_room(server: ServerProcess, a: dict[str, Any], b: dict[str, Any]) -> str:
    with rest(server, a["access_token"]) as http:
        reply = http.post("/rooms", json={"kind": "direct", "user_id": b["user"]["id"]})
        reply.raise_for_status()
        return str(reply.json()["id"])


def server_history(server: ServerProcess, token: str, room_id: str) -> list[dict[str, Any]]:
    with rest(server, token) as http:
        reply = http.get(f"/rooms/{room_id}/messages", params={"after_seq": 0, "limit": 500})
        reply.raise_for_status()
        return list(reply.json()["messages"])


def send_over_rest(server: ServerProcess, token: str, room_id: str, body: str, ref: str) -> Any:
    with rest(server, token) as http:
        reply = http.post(f"/rooms/{room_id}/messages", json={"ref": ref, "body": body})
        reply.raise_for_status()
        return reply.json()


def test_login_send_and_ack(webapp_server: ServerProcess, new_page: Any) -> None:
    ann = register_user(webapp_server, "eng_ann1", display_name="Ann")
    bob = register_user(webapp_server, "eng_bob1", display_name="Bob Builder")
    room_id = direct_room(webapp_server, bob, ann)
    page = new_page()
    assert open_engine(page) is None
    user = login(page, "eng_ann1")
    assert user["id"] == ann["user"]["id"]
    assert events(page, "account")[0]["user"]["username"] == "eng_ann1"
    # The room list comes from the server at connect; a direct room is titled by its peer.
    until(page, "id => window.__c.rooms().then((rs) => rs.some((r) => r.id === id))", room_id)
    rooms = page.evaluate("() => window.__c.rooms()")
    assert [r["title"] for r in rooms if r["id"] == room_id] == ["Bob Builder"]

    entry = page.evaluate("async (id) => window.__c.send(id, 'hello from the browser')", room_id)
    assert entry["state"] == "pending" and entry["body"] == "hello from the browser"
    sent = wait_entry(page, entry["ref"], "sent")
    assert sent["entry"]["message"]["seq"] == 1
    message = wait_event(page, "message", "d => d.message.seq === 1")
    assert message["live"] is True
    until(page, "() => window.__c.outbox().then((o) => o.length === 0)")
    history = page.evaluate("id => window.__c.history(id)", room_id)
    assert [m["body"] for m in history["messages"]] == ["hello from the browser"]
    assert history["hasMore"] is False
    # Exactly once on the server.
    bodies = [m["body"] for m in server_history(webapp_server, bob["access_token"], room_id)]
    assert bodies == ["hello from the browser"]
    # The store is read without the network.
    page.evaluate("() => window.__c.stop()")
    found = page.evaluate("() => window.__c.search('BROWSER')")
    assert [m["body"] for m in found] == ["hello from the browser"]


def test_two_users_talk_live(webapp_server: ServerProcess, new_page: Any) -> None:
    ann = register_user(webapp_server, "eng_ann2", display_name="Ann")
    bob = register_user(webapp_server, "eng_bob2", display_name="Bob")
    room_id = direct_room(webapp_server, ann, bob)
    pa, pb = new_page(), new_page()
    open_engine(pa)
    open_engine(pb)
    login(pa, "eng_ann2")
    login(pb, "eng_bob2")

    pa.evaluate("id => window.__c.typing(id, true)", room_id)
    typing = wait_event(pb, "typing", "d => d.active === true")
    assert typing["user_id"] == ann["user"]["id"] and typing["room_id"] == room_id

    for text in ("one", "two", "three"):
        pa.evaluate("([id, t]) => window.__c.send(id, t)", [room_id, text])
    wait_event(pb, "message", "d => d.message.body === 'three'")
    got = [e["message"]["body"] for e in events(pb, "message")]
    assert got == ["one", "two", "three"]
    assert all(e["live"] for e in events(pb, "message"))
    room = pb.evaluate("id => window.__c.room(id)", room_id)
    assert room["unread"] == 3 and room["title"] == "Ann"
    assert room["last_message"]["body"] == "three"

    pb.evaluate("id => window.__c.markRead(id, 3)", room_id)
    assert pb.evaluate("id => window.__c.room(id)", room_id)["unread"] == 0
    receipt = wait_event(pa, "receipt", f"d => d.user_id === {json.dumps(bob['user']['id'])}")
    assert receipt["seq"] == 3

    pb.evaluate("([id]) => window.__c.reply(id, 'back to you')", [room_id])
    wait_event(pa, "message", "d => d.message.body === 'back to you'")
    history = pa.evaluate("id => window.__c.history(id)", room_id)
    assert [m["body"] for m in history["messages"]] == ["one", "two", "three", "back to you"]


def test_the_outbox_survives_a_reload_and_delivers_once(
    webapp_server: ServerProcess, new_page: Any
) -> None:
    ann = register_user(webapp_server, "eng_ann3")
    bob = register_user(webapp_server, "eng_bob3")
    room_id = direct_room(webapp_server, ann, bob)
    page = new_page()
    context = page.context
    open_engine(page)
    login(page, "eng_ann3")

    context.set_offline(True)
    wait_state(page, "offline")
    entry = page.evaluate("id => window.__c.send(id, 'written offline')", room_id)
    assert entry["state"] == "pending"

    # While the page reloads, its WebSocket cannot reach the server (the network is back for
    # the page itself): the entry must still be there, pending, after the reload.
    blocked = {"on": True}

    def handle(ws: Any) -> None:
        if blocked["on"]:
            ws.close()
        else:
            ws.connect_to_server()

    context.route_web_socket("**/*", handle)
    context.set_offline(False)
    open_engine(page)
    outbox = page.evaluate("() => window.__c.outbox()")
    assert [(e["ref"], e["state"], e["body"]) for e in outbox] == [
        (entry["ref"], "pending", "written offline")
    ]
    page.evaluate("() => window.__c.start()")
    page.wait_for_function("() => window.__c.state === 'offline' && window.__c.retryIn !== null")

    blocked["on"] = False
    page.evaluate("() => window.__c.retryNow()")
    wait_state(page, "ready")
    until(page, "() => window.__c.outbox().then((o) => o.length === 0)")
    bodies = [m["body"] for m in server_history(webapp_server, bob["access_token"], room_id)]
    assert bodies == ["written offline"]
    history = page.evaluate("id => window.__c.history(id)", room_id)
    assert [m["body"] for m in history["messages"]] == ["written offline"]


def test_catch_up_after_being_away(webapp_server: ServerProcess, new_page: Any) -> None:
    ann = register_user(webapp_server, "eng_ann4")
    bob = register_user(webapp_server, "eng_bob4")
    room_id = direct_room(webapp_server, ann, bob)
    send_over_rest(webapp_server, bob["access_token"], room_id, "before", "r0")
    page = new_page()
    open_engine(page)
    login(page, "eng_ann4")
    until(page, "id => window.__c.history(id).then((h) => h.messages.length === 1)", room_id)
    first = send_over_rest(webapp_server, bob["access_token"], room_id, "edit me", "r1")
    wait_event(page, "message", "d => d.message.body === 'edit me'")

    page.context.set_offline(True)
    wait_state(page, "offline")
    for i in range(1, 6):
        send_over_rest(webapp_server, bob["access_token"], room_id, f"missed {i}", f"m{i}")
    with rest(webapp_server, bob["access_token"]) as http:
        http.patch(
            f"/rooms/{room_id}/messages/{first['id']}", json={"body": "edited"}
        ).raise_for_status()
    page.context.set_offline(False)
    wait_state(page, "ready", timeout=40_000)

    history = page.evaluate("id => window.__c.history(id)", room_id)
    assert [m["body"] for m in history["messages"]] == [
        "before",
        "edited",
        "missed 1",
        "missed 2",
        "missed 3",
        "missed 4",
        "missed 5",
    ]
    assert [m["seq"] for m in history["messages"]] == list(range(1, 8))
    caught = [e for e in events(page, "message") if e["message"]["body"].startswith("missed")]
    assert len(caught) == 5 and not any(e["live"] for e in caught)
    updated = events(page, "message_updated")
    assert [e["message"]["body"] for e in updated] == ["edited"]
    assert page.evaluate("id => window.__c.room(id)", room_id)["unread"] == 7


def test_history_pages_come_from_the_server(webapp_server: ServerProcess, new_page: Any) -> None:
    ann = register_user(webapp_server, "eng_ann5")
    bob = register_user(webapp_server, "eng_bob5")
    room_id = direct_room(webapp_server, ann, bob)
    with rest(webapp_server, bob["access_token"]) as http:
        for i in range(1, 121):
            http.post(f"/rooms/{room_id}/messages", json={"ref": f"h{i}", "body": f"m{i}"})
    page = new_page()
    open_engine(page)
    login(page, "eng_ann5", start=False)  # offline-first reads, no catch-up: REST pages
    newest = page.evaluate("id => window.__c.history(id, {limit: 50})", room_id)
    assert [m["seq"] for m in newest["messages"]] == list(range(71, 121))
    assert newest["hasMore"] is True
    older = page.evaluate("id => window.__c.history(id, {beforeSeq: 71, limit: 50})", room_id)
    assert [m["seq"] for m in older["messages"]] == list(range(21, 71))
    oldest = page.evaluate("id => window.__c.history(id, {beforeSeq: 21, limit: 50})", room_id)
    assert [m["seq"] for m in oldest["messages"]] == list(range(1, 21))
    assert oldest["hasMore"] is False
    # Now stored: the same pages come without the server (no message events: old history).
    page.context.set_offline(True)
    again = page.evaluate("id => window.__c.history(id, {beforeSeq: 71, limit: 50})", room_id)
    assert [m["seq"] for m in again["messages"]] == list(range(21, 71))
    assert events(page, "message") == []
    page.context.set_offline(False)


def test_edits_and_deletes_update_the_store(webapp_server: ServerProcess, new_page: Any) -> None:
    ann = register_user(webapp_server, "eng_ann6")
    bob = register_user(webapp_server, "eng_bob6")
    room_id = direct_room(webapp_server, ann, bob)
    pa, pb = new_page(), new_page()
    open_engine(pa)
    open_engine(pb)
    login(pa, "eng_ann6")
    login(pb, "eng_bob6")
    pa.evaluate("id => window.__c.send(id, 'first draft')", room_id)
    pa.evaluate("id => window.__c.send(id, 'to delete')", room_id)
    wait_event(pb, "message", "d => d.message.body === 'to delete'")
    until(pa, "() => window.__c.outbox().then((o) => o.length === 0)")
    messages = pa.evaluate("id => window.__c.history(id)", room_id)["messages"]
    first, second = messages[0]["id"], messages[1]["id"]

    edited = pa.evaluate("([r, m]) => window.__c.edit(r, m, 'final text')", [room_id, first])
    assert edited["body"] == "final text" and edited["edited_ts"]
    pa.evaluate("([r, m]) => window.__c.delete(r, m)", [room_id, second])
    # Both sides' stores follow: here at once, there by message_updated events.
    wait_event(pb, "message_updated", "d => d.message.deleted === true")
    for page in (pa, pb):
        until(
            page,
            """id => window.__c.history(id).then((h) =>
                 h.messages[0].body === 'final text' && h.messages[1].deleted === true &&
                 h.messages[1].body === '')""",
            room_id,
        )
    assert pb.evaluate("() => window.__c.search('final')")[0]["id"] == first
    assert pb.evaluate("() => window.__c.search('delete')") == []


def test_a_refused_send_fails_and_blocks_nothing(
    webapp_server: ServerProcess, new_page: Any
) -> None:
    ann = register_user(webapp_server, "eng_ann7")
    bob = register_user(webapp_server, "eng_bob7")
    room_id = direct_room(webapp_server, ann, bob)
    page = new_page()
    open_engine(page)
    login(page, "eng_ann7")
    limit = page.evaluate("() => window.__c.info.limits.max_message_bytes")
    big = page.evaluate("([id, n]) => window.__c.send(id, 'x'.repeat(n + 1))", [room_id, limit])
    small = page.evaluate("id => window.__c.send(id, 'small one')", room_id)
    failed = wait_entry(page, big["ref"], "failed")
    assert failed["entry"]["error"]["code"] == "too_large"
    wait_entry(page, small["ref"], "sent")
    outbox = page.evaluate("() => window.__c.outbox()")
    assert [(e["ref"], e["state"]) for e in outbox] == [(big["ref"], "failed")]

    # The fix: a shorter text queues it again with the same ref, and it goes.
    page.evaluate("ref => window.__c.editPending(ref, 'shorter now')", big["ref"])
    wait_entry(page, big["ref"], "sent")
    bodies = [m["body"] for m in server_history(webapp_server, bob["access_token"], room_id)]
    assert bodies == ["small one", "shorter now"]
    assert page.evaluate("() => window.__c.outbox()") == []


def test_an_expired_token_is_refreshed(webapp_server: ServerProcess, new_page: Any) -> None:
    register_user(webapp_server, "eng_ann8")
    page = new_page()
    open_engine(page)
    login(page, "eng_ann8", start=False)
    before = page.evaluate("() => import('./js/engine/db.js').then((db) => db.kvGet('account'))")
    # The server no longer takes the access token (as after its expiry): a REST call is
    # answered 401, refreshed once, and retried; the new tokens are kept.
    page.evaluate(
        """() => import('./js/engine/db.js').then(async (db) => {
             const a = await db.kvGet('account');
             await db.kvSet('account', {...a, access_token: a.access_token + 'x'});
           })"""
    )
    settings = page.evaluate("() => window.__c.accountSettings()")
    assert settings == {}
    after = page.evaluate("() => import('./js/engine/db.js').then((db) => db.kvGet('account'))")
    assert after["refresh_token"] != before["refresh_token"]
    assert after["user"]["id"] == before["user"]["id"]
    # A token about to expire is refreshed before use (the WebSocket's auth, too).
    page.evaluate(
        """() => import('./js/engine/db.js').then(async (db) => {
             const a = await db.kvGet('account');
             await db.kvSet('account', {...a, expires_at: Date.now() - 1000});
           })"""
    )
    page.evaluate("() => window.__c.start()")
    wait_state(page, "ready")
    latest = page.evaluate("() => import('./js/engine/db.js').then((db) => db.kvGet('account'))")
    assert latest["refresh_token"] != after["refresh_token"]
    assert latest["expires_at"] > page.evaluate("() => Date.now()")


def test_a_login_ended_elsewhere_logs_out(webapp_server: ServerProcess, new_page: Any) -> None:
    register_user(webapp_server, "eng_ann9")
    page = new_page()
    open_engine(page)
    login(page, "eng_ann9")
    account = page.evaluate("() => import('./js/engine/db.js').then((db) => db.kvGet('account'))")
    # Another tab (or the service worker) logs this login out: the socket closes with 4401,
    # the refresh is refused, the engine says so.
    with rest(webapp_server, account["access_token"]) as http:
        assert http.post("/auth/logout").status_code == 204
    wait_event(page, "account", "d => d.user === null")
    assert page.evaluate("() => window.__c.user") is None
    assert page.evaluate("() => window.__c.state") == "offline"


def test_another_user_on_the_same_browser_sees_nothing_of_the_first(
    webapp_server: ServerProcess, new_page: Any
) -> None:
    ann = register_user(webapp_server, "eng_ann10")
    bob = register_user(webapp_server, "eng_bob10")
    register_user(webapp_server, "eng_cid10")
    room_id = direct_room(webapp_server, ann, bob)
    send_over_rest(webapp_server, ann["access_token"], room_id, "private", "p1")
    page = new_page()
    open_engine(page)
    login(page, "eng_ann10")
    until(page, "() => window.__c.search('private').then((r) => r.length === 1)")
    page.evaluate("() => window.__c.logout()")
    assert page.evaluate("() => window.__c.user") is None
    login(page, "eng_cid10")
    assert page.evaluate("() => window.__c.search('private')") == []
    assert page.evaluate("() => window.__c.rooms()") == []


def test_files_upload_with_progress_and_come_back_as_blob_urls(
    webapp_server: ServerProcess, new_page: Any
) -> None:
    ann = register_user(webapp_server, "eng_ann11")
    bob = register_user(webapp_server, "eng_bob11")
    room_id = direct_room(webapp_server, ann, bob)
    page = new_page()
    open_engine(page)
    login(page, "eng_ann11")
    if "media" not in page.evaluate("() => window.__c.info.features"):
        pytest.skip("the test server has no media store")
    # A 64x64 PNG made by the page's own canvas.
    entry = page.evaluate(
        """async (id) => {
             const canvas = new OffscreenCanvas(64, 64);
             const g = canvas.getContext('2d');
             g.fillStyle = '#c00';
             g.fillRect(0, 0, 64, 64);
             const blob = await canvas.convertToBlob({type: 'image/png'});
             const file = new File([blob], 'red.png', {type: 'image/png'});
             return window.__c.sendFile(id, file, {caption: 'a red square'});
           }""",
        room_id,
    )
    assert entry["kind"] == "media" and entry["state"] == "pending"
    sent = wait_entry(page, entry["ref"], "sent")
    message = sent["entry"]["message"]
    assert message["kind"] == "media" and message["body"] == "a red square"
    progress = [e["progress"] for e in events(page, "upload")]
    assert progress and progress[-1] == 1
    url = page.evaluate("m => window.__c.mediaUrl(m, {thumbnail: 256})", message["media_id"])
    assert url.startswith("blob:")
    # The same URL again without a request; the image decodes.
    assert (
        page.evaluate("m => window.__c.mediaUrl(m, {thumbnail: 256})", message["media_id"]) == url
    )
    size = page.evaluate(
        """async (u) => { const img = new Image(); img.src = u; await img.decode();
             return [img.naturalWidth, img.naturalHeight]; }""",
        url,
    )
    assert size == [64, 64]
    messages = server_history(webapp_server, bob["access_token"], room_id)
    assert [(m["kind"], m["media_id"]) for m in messages] == [("media", message["media_id"])]


def test_contacts_invitations_and_presence(webapp_server: ServerProcess, new_page: Any) -> None:
    ann = register_user(webapp_server, "eng_ann12", display_name="Ann")
    bob = register_user(webapp_server, "eng_bob12", display_name="Bob")
    pa, pb = new_page(), new_page()
    open_engine(pa)
    open_engine(pb)
    login(pa, "eng_ann12")
    login(pb, "eng_bob12")
    found = pa.evaluate("() => window.__c.searchUsers('eng_bob12')")
    assert [u["id"] for u in found] == [bob["user"]["id"]]
    invitation = pa.evaluate("() => window.__c.invite({username: 'eng_bob12'})")
    assert invitation["status"] == "pending"
    assert (
        wait_event(pa, "contact", "d => d.event === 'invited'")["invitation"]["id"]
        == invitation["id"]
    )
    wait_event(pb, "contact", "d => d.event === 'invited'")
    incoming = pb.evaluate("() => window.__c.invitations()")["incoming"]
    assert [i["from_user"]["display_name"] for i in incoming] == ["Ann"]

    contact = pb.evaluate("id => window.__c.acceptInvitation(id)", invitation["id"])
    assert contact["user"]["id"] == ann["user"]["id"]
    accepted = wait_event(pa, "contact", "d => d.event === 'accepted'")
    assert accepted["contact"]["user"]["id"] == bob["user"]["id"]
    contacts = pa.evaluate("() => window.__c.contacts()")
    assert [(c["user"]["username"], c["presence"]) for c in contacts] == [("eng_bob12", "online")]

    # Bob goes away: Ann hears it, and her stored contacts follow.
    pb.evaluate("() => window.__c.stop()")
    bob_id = json.dumps(bob["user"]["id"])
    wait_event(pa, "presence", f"d => d.user_id === {bob_id} && d.status === 'offline'")
    pa.context.set_offline(True)
    contacts = pa.evaluate("() => window.__c.contacts()")
    assert [(c["user"]["username"], c["presence"]) for c in contacts] == [("eng_bob12", "offline")]
    pa.context.set_offline(False)

    room = pa.evaluate("id => window.__c.openDirect(id)", bob["user"]["id"])
    assert room["kind"] == "direct" and room["title"] == "Bob"
    assert [r["id"] for r in pa.evaluate("() => window.__c.rooms()")] == [room["id"]]


@contextmanager
def flood_limited(
    browser: Any, folder: Path, rate: int, burst: int, suffix: str
) -> Iterator[tuple[ServerProcess, Any, dict[str, Any], str]]:
    """A server whose flood control lets `burst` frames through at once, then `rate` a second;
    Ann and Bob in a direct room; a page with the engine, Ann logged in but not started. Yields
    the server, the page, Bob and the room; fails when the page threw."""
    limits = {"websocket": {"rate_per_second": rate, "rate_burst": burst}}
    with start_server(folder, overrides=limits) as server:
        ann = register_user(server, f"eng_ann{suffix}")
        bob = register_user(server, f"eng_bob{suffix}")
        room_id = direct_room(server, ann, bob)
        context = browser.new_context(base_url=server.base_url)
        try:
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            open_engine(page)
            login(page, f"eng_ann{suffix}", start=False)
            yield server, page, bob, room_id
            assert not errors
        finally:
            context.close()


def send_all(page: Any, room_id: str, prefix: str, count: int) -> None:
    script = "async ([id, p, n]) => { for (let i = 1; i <= n; i++) await __c.send(id, p + i) }"
    page.evaluate(script, [room_id, prefix, count])


def sent_in_order(server: ServerProcess, page: Any, bob: dict[str, Any], room_id: str) -> list[str]:
    """Once the outbox is empty: the bodies the server stored in the room, in seq order."""
    until(page, "() => window.__c.outbox().then((o) => o.length === 0)", timeout=30_000)
    return [m["body"] for m in server_history(server, bob["access_token"], room_id)]


def test_sends_are_paced_below_the_flood_control(browser: Any, tmp_path: Path) -> None:
    # A server with its flood control on (a burst of 30, 20 frames a second): 60 queued sends
    # go out below it, none refused for good, all in order, each once.
    with flood_limited(browser, tmp_path / "paced", 20, 30, "13") as (server, page, bob, room_id):
        page.evaluate("() => window.__c.start()")
        wait_state(page, "ready")
        assert page.evaluate("() => window.__c.info.limits.ws_rate_burst") == 30
        send_all(page, room_id, "p", 60)
        assert sent_in_order(server, page, bob, room_id) == [f"p{i}" for i in range(1, 61)]
        assert not [e for e in events(page, "outbox") if e["entry"]["state"] == "failed"]


#: In the page: a client held back as a loaded machine holds it. After the first `sync`, a
#: burst of pings (written by the engine's own link, so it counts them) empties the server's
#: bucket; every send frame after the first is written only after the page stood still for
#: longer than a token takes to refill.
HOLD_BACK = """([burst, holdMs]) => {
  const send = WebSocket.prototype.send;
  let syncs = 0;
  let sends = 0;
  WebSocket.prototype.send = function (data) {
    const frame = JSON.parse(data);
    if (frame.type === 'send' && ++sends > 1) {
      const end = performance.now() + holdMs;
      while (performance.now() < end) { /* the page is held: the server's bucket refills */ }
    }
    send.call(this, data);
    if (frame.type === 'sync' && ++syncs === 1) {
      for (let i = 0; i < burst; i++) window.__c._conn.link.write({type: 'ping', ref: 'ping-' + i});
    }
  };
}"""


def test_a_send_flood_control_might_refuse_is_never_overtaken(browser: Any, tmp_path: Path) -> None:
    # The interleaving that reorders a room: the server refuses the first send on an empty
    # bucket and reads the next after a refill. A send that might be refused goes alone, so
    # all arrive in the order queued, each once, and one was refused on the way.
    with flood_limited(browser, tmp_path / "held", 2, 20, "14") as (server, page, bob, room_id):
        send_all(page, room_id, "h", 5)
        page.evaluate(HOLD_BACK, [20, 750])
        page.evaluate("() => window.__c.start()")
        assert sent_in_order(server, page, bob, room_id) == [f"h{i}" for i in range(1, 6)]
        writes = [
            e["entry"]["ref"] for e in events(page, "outbox") if e["entry"]["state"] == "sending"
        ]
        assert len(writes) > len(set(writes)), "nothing was refused: the test tested nothing"
