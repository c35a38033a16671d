"""Offline in the browser: the banner says so, a message sent offline waits in the outbox
(IndexedDB) marked pending, survives a reload (the service worker serves the app shell from
its cache, so the reload works without a network), and once the network is back it is
delivered exactly once and its mark turns ✓."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from test_webapp_ui import (
    SLOW,
    banner,
    befriend,
    direct_room,
    history,
    log,
    log_in,
    message,
    open_room,
    person,
    send,
    send_rest,
)

from chatcore.testing.server import ServerProcess

pytest.importorskip("playwright")
from playwright.sync_api import Page, expect


def test_a_message_sent_offline_survives_a_reload_and_is_delivered_once(
    webapp_server: ServerProcess, new_page: Callable[..., Page]
) -> None:
    ann, bob = person(webapp_server, "Ann"), person(webapp_server, "Bob")
    befriend(webapp_server, ann, bob)
    room = direct_room(webapp_server, ann, bob)
    send_rest(webapp_server, ann, room, "before the tunnel")
    pa, pb = new_page(), new_page()
    log_in(pa, ann["username"])
    log_in(pb, bob["username"])
    open_room(pa, "Bob")
    open_room(pb, "Ann")
    expect(message(pb, "before the tunnel")).to_be_visible()
    # The app shell is cached once the service worker is active (it installs in the background).
    pb.wait_for_function(
        "navigator.serviceWorker.ready.then(() => !!navigator.serviceWorker.controller)",
        timeout=SLOW,
    )

    # Bob goes offline: the banner says so, and a send waits in the outbox, pending.
    pb.context.set_offline(True)
    expect(banner(pb)).to_contain_text("Offline", timeout=SLOW)
    send(pb, "sent from the tunnel")
    queued = message(pb, "sent from the tunnel")
    expect(queued.get_by_role("img", name="pending", exact=True)).to_have_text("⏳")

    # A reload without a network: the shell comes from the cache, the history and the
    # outbox from IndexedDB.
    pb.reload()
    open_room(pb, "Ann")
    expect(banner(pb)).to_contain_text("Offline", timeout=SLOW)
    expect(message(pb, "before the tunnel")).to_be_visible()
    expect(queued.get_by_role("img", name="pending", exact=True)).to_be_visible()
    assert [m["body"] for m in history(webapp_server, ann, room)] == ["before the tunnel"]

    # Back online: delivered once, to Ann's view and to the server; Bob's mark turns ✓.
    pb.context.set_offline(False)
    expect(banner(pb)).to_be_hidden(timeout=SLOW)
    expect(queued.locator(".mark")).to_have_text(re.compile("^✓✓?$"), timeout=SLOW)
    expect(message(pa, "sent from the tunnel")).to_have_count(1, timeout=SLOW)
    bodies = [m["body"] for m in history(webapp_server, ann, room)]
    assert bodies.count("sent from the tunnel") == 1, bodies
    # Nothing arrives twice later either (a resend with the same ref is not a second message).
    send(pb, "and one more")
    expect(message(pa, "and one more")).to_be_visible(timeout=SLOW)
    expect(message(pa, "sent from the tunnel")).to_have_count(1)
    expect(log(pb).get_by_role("img", name="pending", exact=True)).to_have_count(0)
