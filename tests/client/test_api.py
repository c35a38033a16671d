"""The REST client (`chatcore.client.api.Api`) against a real server process: every endpoint
group of docs/protocol.md, the errors a program sees, and the tokens kept fresh (refresh
before expiry, after a 401, one refresh for many callers, the end of a login)."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from api_support import (
    People,
    RecordingTransport,
    TokenLog,
    expired_access_token,
    png_bytes,
)

from chatcore.client.api import Api, ApiError, ApiUnavailable, LoggedOut
from chatcore.client.models import Tokens
from chatcore.clock import now_ms
from chatcore.testing.push_receiver import PushReceiver
from chatcore.testing.server import ServerProcess, free_port
from chatcore.testing.users import PASSWORD, unique_username

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

#: The test server's access token lifetime (the default `[auth] access_token_ttl`).
TTL_MS = 900_000


async def error_of(call: object) -> ApiError:
    """The ApiError a call raises (fails when it returns)."""
    assert asyncio.iscoroutine(call)
    with pytest.raises(ApiError) as caught:
        await call
    return caught.value


# --- discovery and accounts ------------------------------------------------------------------


async def test_info(server: ServerProcess) -> None:
    async with People(server) as people:
        info = await people.api().info()
    assert info.name == "chatcore"
    assert info.ws_url == server.ws_url
    assert {"media", "stickers", "push"} <= set(info.features)
    assert info.limits["max_message_bytes"] > 0


async def test_register_login_and_me(server: ServerProcess) -> None:
    async with People(server) as people:
        log = TokenLog()
        api = people.api(log=log)
        username = unique_username("reg")
        user = await api.register(username, PASSWORD, "Ann Example")
        assert (user.username, user.display_name) == (username, "Ann Example")
        assert api.tokens is None

        before = now_ms()
        tokens = await api.login(username.upper(), PASSWORD)  # usernames match in any case
        assert tokens.user == user
        assert before + TTL_MS <= tokens.access_expires_ts <= now_ms() + TTL_MS
        assert api.tokens == tokens and log.calls == [tokens]
        assert await api.me() == user
        assert await api.access_token() == tokens.access_token  # fresh: no refresh

        taken = await error_of(api.register(username, PASSWORD))
        assert (taken.status, taken.code) == (409, "conflict")
        wrong = await error_of(api.login(username, "not the password"))
        assert (wrong.status, wrong.code) == (401, "unauthorized") and wrong.message


async def test_bad_requests_are_400(server: ServerProcess) -> None:
    async with People(server) as people:
        ann = await people.person()
        short = await error_of(people.api().register("x", PASSWORD))
        assert (short.status, short.code) == (400, "bad_request")
        room = await ann.api.create_group("g")
        both = await error_of(ann.api.messages(room.id, after_seq=1, before_seq=5))
        assert (both.status, both.code) == (400, "bad_request")


async def test_too_many_failed_logins_are_rate_limited_with_retry_after(
    server: ServerProcess,
) -> None:
    async with People(server) as people:
        ann = await people.person()
        api = people.api()
        for _ in range(5):  # [auth] login_failures_per_username
            assert (await error_of(api.login(ann.username, "wrong password"))).status == 401
        limited = await error_of(api.login(ann.username, "wrong password"))
    assert (limited.status, limited.code) == (429, "rate_limited")
    assert limited.retry_after is not None and limited.retry_after > 0


# --- users and settings ----------------------------------------------------------------------


async def test_profile_and_avatar(server: ServerProcess) -> None:
    async with People(server) as people:
        ann, bob = await people.people(2)
        renamed = await ann.api.update_profile(display_name="Ann Renamed")
        assert renamed.display_name == "Ann Renamed" and renamed.avatar_media_id is None

        avatar = await ann.api.upload(png_bytes(), filename="me.png")
        with_avatar = await ann.api.update_profile(avatar_media_id=avatar.id)
        assert with_avatar.avatar_media_id == avatar.id
        assert await bob.api.user(ann.id) == with_avatar  # what everyone sees
        assert await ann.api.me() == with_avatar

        without = await ann.api.update_profile(remove_avatar=True)
        assert without.avatar_media_id is None and without.display_name == "Ann Renamed"
        bad = await error_of(ann.api.update_profile(display_name=""))
        assert (bad.status, bad.code) == (400, "bad_request")


async def test_settings_are_a_merge_patched_object(server: ServerProcess) -> None:
    async with People(server) as people:
        ann = await people.person()
        assert await ann.api.settings() == {}
        patched = await ann.api.patch_settings({"theme": "dark", "ui": {"font": 12, "dense": True}})
        assert patched == {"theme": "dark", "ui": {"font": 12, "dense": True}}
        patched = await ann.api.patch_settings({"theme": None, "ui": {"dense": None}})
        assert patched == {"ui": {"font": 12}}
        assert await ann.api.settings() == patched
        bad = await error_of(ann.api.patch_settings({"push": {"group": "sometimes"}}))
        assert (bad.status, bad.code) == (400, "bad_request")


async def test_search_and_look_up_users(server: ServerProcess) -> None:
    async with People(server) as people:
        ann = await people.person(prefix="searchable")
        bob = await people.person()
        assert ann.user in await bob.api.search_users(ann.username[:12], limit=50)
        assert ann.user in await bob.api.search_users(ann.username.upper())
        assert await bob.api.search_users(" ") == []
        assert await bob.api.user(ann.id) == ann.user
        missing = await error_of(bob.api.user("no-such-user"))
        assert (missing.status, missing.code) == (404, "not_found")


# --- contacts and blocks ---------------------------------------------------------------------


async def test_invite_accept_list_and_remove_contacts(server: ServerProcess) -> None:
    async with People(server) as people:
        ann, bob = await people.people(2)
        invitation = await ann.api.invite(user_id=bob.id)
        assert (invitation.from_user, invitation.to_user) == (ann.user, bob.user)
        assert invitation.status == "pending"
        assert await ann.api.invitations() == ([], [invitation])
        assert await bob.api.invitations() == ([invitation], [])

        contact = await bob.api.accept_invitation(invitation.id)
        assert contact.user == ann.user
        assert [c.user for c in await ann.api.contacts()] == [bob.user]
        assert await ann.api.invitations() == ([], [])

        await ann.api.remove_contact(bob.id)
        assert await ann.api.contacts() == [] and await bob.api.contacts() == []
        await ann.api.remove_contact(bob.id)  # idempotent


async def test_invite_by_username_and_decline(server: ServerProcess) -> None:
    async with People(server) as people:
        ann, bob = await people.people(2)
        invitation = await ann.api.invite(username=bob.username.upper())
        assert invitation.to_user == bob.user
        await bob.api.decline_invitation(invitation.id)
        assert await bob.api.invitations() == ([], [])
        assert await ann.api.invitations() == ([], [])
        self_invite = await error_of(ann.api.invite(user_id=ann.id))
        assert (self_invite.status, self_invite.code) == (400, "bad_request")


async def test_blocks(server: ServerProcess) -> None:
    async with People(server) as people:
        ann, bob = await people.people(2)
        await ann.api.block(bob.id)
        await ann.api.block(bob.id)  # twice is harmless
        assert await ann.api.blocks() == [bob.user]
        refused = await error_of(bob.api.create_direct(ann.id))
        assert (refused.status, refused.code) == (403, "forbidden")
        await ann.api.unblock(bob.id)
        assert await ann.api.blocks() == []
        assert (await bob.api.create_direct(ann.id)).kind == "direct"


# --- rooms and messages ----------------------------------------------------------------------


async def test_direct_and_group_rooms_and_members(server: ServerProcess) -> None:
    async with People(server) as people:
        ann, bob, carl, outsider = await people.people(4)
        direct = await ann.api.create_direct(bob.id)
        assert direct.kind == "direct" and set(direct.member_ids) == {ann.id, bob.id}
        assert direct.name is None and direct.owner_id is None
        assert (await bob.api.create_direct(ann.id)).id == direct.id  # the pair's one room

        group = await ann.api.create_group("Team", [bob.id])
        assert (group.kind, group.name, group.owner_id) == ("group", "Team", ann.id)
        await bob.api.add_member(group.id, carl.id)  # any member may add
        assert set((await carl.api.room(group.id)).member_ids) == {ann.id, bob.id, carl.id}
        assert {r.id for r in await carl.api.rooms()} == {group.id}

        forbidden = await error_of(bob.api.remove_member(group.id, ann.id))
        assert (forbidden.status, forbidden.code) == (403, "forbidden")
        await carl.api.remove_member(group.id, carl.id)  # leaving
        assert await carl.api.rooms() == []
        for call in (outsider.api.room(group.id), carl.api.room(group.id)):
            hidden = await error_of(call)
            assert (hidden.status, hidden.code) == (404, "not_found")


async def test_send_is_idempotent_by_ref(server: ServerProcess) -> None:
    async with People(server) as people:
        ann, bob = await people.people(2)
        room = await ann.api.create_direct(bob.id)
        fields = {"type": "send", "ref": "r-1", "room_id": room.id, "kind": "text", "body": "hi"}
        first = await ann.api.send_message(room.id, fields)
        again = await ann.api.send_message(room.id, {**fields, "body": "changed"})
        assert again == first
        assert (first.seq, first.body, first.sender_id, first.ref) == (1, "hi", ann.id, "r-1")
        empty = await error_of(ann.api.send_message(room.id, {"ref": "r-2", "body": ""}))
        assert (empty.status, empty.code) == (400, "bad_request")
        outsider = await people.person()
        hidden = await error_of(outsider.api.send_message(room.id, {"ref": "x", "body": "hi"}))
        assert (hidden.status, hidden.code) == (404, "not_found")


async def test_history_pages_edits_deletes_and_reads(server: ServerProcess) -> None:
    async with People(server) as people:
        ann, bob = await people.people(2)
        room = await ann.api.create_group("History", [bob.id])
        for i in range(1, 6):
            await ann.api.send_message(room.id, {"ref": f"m{i}", "body": f"message {i}"})

        first = await bob.api.messages(room.id, after_seq=0, limit=2)
        assert [m.seq for m in first.messages] == [1, 2] and first.has_more
        last = await bob.api.messages(room.id, after_seq=4, limit=2)
        assert [m.seq for m in last.messages] == [5] and not last.has_more
        older = await bob.api.messages(room.id, before_seq=4, limit=2)
        assert [m.seq for m in older.messages] == [3, 2] and older.has_more
        newest = await bob.api.messages(room.id, limit=3)
        assert [m.seq for m in newest.messages] == [5, 4, 3]

        target = first.messages[0]
        edited = await ann.api.edit_message(room.id, target.id, "message 1, edited")
        assert edited.body == "message 1, edited" and edited.edited_ts is not None
        not_sender = await error_of(bob.api.edit_message(room.id, target.id, "mine now"))
        assert (not_sender.status, not_sender.code) == (403, "forbidden")
        await ann.api.delete_message(room.id, first.messages[1].id)
        page = await bob.api.messages(room.id, after_seq=0, limit=2)
        assert page.messages[0].body == "message 1, edited"
        assert page.messages[1].deleted and page.messages[1].body == ""
        conflict = await error_of(ann.api.edit_message(room.id, first.messages[1].id, "back"))
        assert (conflict.status, conflict.code) == (409, "conflict")

        assert (await bob.api.room(room.id)).unread == 4  # one of the five is deleted
        await bob.api.mark_read(room.id, 3)
        assert (await bob.api.room(room.id)).unread == 2
        await bob.api.mark_read(room.id, 1)  # never backwards
        assert (await bob.api.room(room.id)).unread == 2


async def test_search_messages_pages_and_report(server: ServerProcess) -> None:
    async with People(server) as people:
        ann, bob = await people.people(2)
        room = await ann.api.create_group("Search", [bob.id])
        sent = [
            await ann.api.send_message(room.id, {"ref": f"s{i}", "body": f"findable {i}"})
            for i in range(3)
        ]
        await ann.api.send_message(room.id, {"ref": "other", "body": "something else"})

        first = await bob.api.search_messages("FINDABLE", limit=2)
        assert [m.id for m in first.messages] == [sent[2].id, sent[1].id]
        assert first.has_more and first.next is not None
        rest = await bob.api.search_messages("findable", room_id=room.id, before=first.next)
        assert [m.id for m in rest.messages] == [sent[0].id]
        assert not rest.has_more and rest.next is None
        empty = await error_of(bob.api.search_messages("***"))
        assert (empty.status, empty.code) == (400, "bad_request")

        report = await bob.api.report_message(room.id, sent[0].id, "not nice")
        assert (report["status"], report["message"]["id"]) == ("open", sent[0].id)
        assert await bob.api.report_message(room.id, sent[0].id, "again") == report


# --- media, stickers, push devices -----------------------------------------------------------


async def test_sticker_packs(server: ServerProcess) -> None:
    async with People(server) as people:
        ann = await people.person()
        assert await ann.api.sticker_packs() == []  # this server has none imported
        missing = await error_of(ann.api.sticker_pack("no-such-pack"))
        assert (missing.status, missing.code) == (404, "not_found")


async def test_upload_and_download(server: ServerProcess) -> None:
    async with People(server) as people:
        ann, bob = await people.people(2)
        image = png_bytes(40, 30)
        media = await ann.api.upload(image, filename="dot.png")
        assert (media.content_type, media.size, media.width, media.height) == (
            "image/png", len(image), 40, 30,
        )  # fmt: skip
        assert media.filename == "dot.png" and media.url.startswith("/api/v1/media/")

        status, body, headers = await ann.api.download(media.id)
        assert (status, body, headers["content-type"]) == (200, image, "image/png")
        status, body, _ = await ann.api.download(media.id, etag=headers["etag"])
        assert (status, body) == (304, b"")
        status, thumb, headers = await ann.api.download(media.id, thumbnail=64)
        assert status == 200 and headers["content-type"] == "image/png" and thumb

        hidden = await error_of(bob.api.download(media.id))  # not shared with bob
        assert (hidden.status, hidden.code) == (404, "not_found")
        html = await error_of(ann.api.upload(b"<html>hello</html>", filename="x.html"))
        assert (html.status, html.code) == (415, "unsupported_media_type")


async def test_push_devices(server: ServerProcess) -> None:
    async with People(server) as people:
        ann, bob = await people.people(2)
        # No push adapter is configured on this server: registering is still allowed.
        hook = await ann.api.add_push_device("webhook", endpoint="https://push.example/ann")
        assert (hook.platform, hook.endpoint, hook.token) == (
            "webhook", "https://push.example/ann", None,
        )  # fmt: skip
        phone = await ann.api.add_push_device("fcm", token="fcm-token-123")
        assert await ann.api.add_push_device("fcm", token="fcm-token-123") == phone  # same one
        assert {d.id for d in await ann.api.push_devices()} == {hook.id, phone.id}

        mixed = await error_of(ann.api.add_push_device("webhook", token="t", endpoint="https://x"))
        assert (mixed.status, mixed.code) == (400, "bad_request")
        not_bobs = await error_of(bob.api.remove_push_device(hook.id))
        assert (not_bobs.status, not_bobs.code) == (404, "not_found")
        await ann.api.remove_push_device(hook.id)
        assert [d.id for d in await ann.api.push_devices()] == [phone.id]
        twice = await error_of(ann.api.remove_push_device(hook.id))
        assert twice.code == "not_found"


# --- no server, or something else answering --------------------------------------------------


async def test_a_server_nobody_runs_is_unavailable(server: ServerProcess) -> None:
    async with People(server) as people:
        ann = await people.person()
        log = TokenLog()
        gone = people.api(server_url=f"http://127.0.0.1:{free_port()}", tokens=ann.tokens, log=log)
        for call in (gone.info(), gone.login("ann", PASSWORD), gone.me(), gone.refresh()):
            with pytest.raises(ApiUnavailable, match="Cannot reach the server"):
                await call
        assert gone.tokens == ann.tokens and log.calls == [], "an unreachable server ends no login"


async def test_a_hanging_server_times_out(server: ServerProcess) -> None:
    async with People(server) as people:
        with PushReceiver() as receiver, receiver.outage("/api/v1/auth/login"):
            api = people.api(server_url=receiver.url(""), timeout=0.3)
            with pytest.raises(ApiUnavailable, match="did not answer POST /auth/login"):
                await api.login("ann", PASSWORD)


async def test_answers_outside_the_contract(server: ServerProcess) -> None:
    """A proxy's 503 without a body, a server without the route: still an ApiError with a
    code and a sentence; a 2xx that is not the contract's JSON is no chatcore server."""
    async with People(server) as people:
        with PushReceiver() as receiver:
            api = people.api(server_url=receiver.url(""))
            receiver.answer("/api/v1/auth/register", 503)
            down = await error_of(api.register("someone", PASSWORD))
            assert (down.status, down.code) == (503, "unavailable") and "503" in down.message
            no_route = await error_of(api.info())  # GET: the receiver answers 501, in HTML
            assert (no_route.status, no_route.code) == (501, "internal") and no_route.message
            receiver.answer("/api/v1/auth/login", 200)  # an empty 200
            with pytest.raises(ApiUnavailable, match="answer"):
                await api.login("someone", PASSWORD)


# --- tokens ----------------------------------------------------------------------------------


def near_expiry(tokens: Tokens, in_ms: int = 5_000) -> Tokens:
    """The same tokens, as a client holds them when the access token expires in `in_ms`."""
    return tokens.model_copy(update={"access_expires_ts": now_ms() + in_ms})


def refresh_tokens_sent(transport: RecordingTransport) -> list[str]:
    return [
        orjson.loads(s.body or b"{}")["refresh_token"]
        for s in transport.sent
        if s.path == "/api/v1/auth/refresh"
    ]


async def test_a_token_near_expiry_is_refreshed_before_the_request(server: ServerProcess) -> None:
    async with People(server) as people:
        ann = await people.person()
        transport, log = RecordingTransport(), TokenLog()
        old = near_expiry(ann.tokens)
        api = people.api(tokens=old, log=log, transport=transport)

        assert await api.me() == ann.user
        assert transport.paths() == ["POST /auth/refresh", "GET /me"]
        assert len(log.calls) == 1 and log.calls[0] == api.tokens
        new = api.tokens
        assert new is not None and new.refresh_token != old.refresh_token
        assert new.access_expires_ts >= now_ms() + TTL_MS - 60_000

        # The next refresh presents the new refresh token: were the used one presented again,
        # the server would end the whole login.
        newer = await api.refresh()
        assert refresh_tokens_sent(transport) == [old.refresh_token, new.refresh_token]
        assert log.calls == [new, newer]
        assert await api.me() == ann.user
        assert await api.access_token() == newer.access_token
        assert transport.count("POST", "/auth/refresh") == 2


async def test_a_401_refreshes_once_and_retries(server: ServerProcess) -> None:
    async with People(server) as people:
        ann = await people.person()
        transport, log = RecordingTransport(), TokenLog()
        # The device's clock says the token is good for an hour; the server says it expired.
        stale = ann.tokens.model_copy(
            update={
                "access_token": expired_access_token(server, ann.tokens),
                "access_expires_ts": now_ms() + 3_600_000,
            }
        )
        api = people.api(tokens=stale, log=log, transport=transport)
        assert await api.me() == ann.user
        assert transport.paths() == ["GET /me", "POST /auth/refresh", "GET /me"]
        assert [s.status for s in transport.sent] == [401, 200, 200]
        assert len(log.calls) == 1 and api.tokens == log.calls[0]


@pytest.mark.parametrize("why", ["near expiry", "rejected"])
async def test_concurrent_requests_share_one_refresh(server: ServerProcess, why: str) -> None:
    async with People(server) as people:
        ann = await people.person()
        transport, log = RecordingTransport(), TokenLog()
        if why == "near expiry":
            tokens = near_expiry(ann.tokens)
        else:
            expired = expired_access_token(server, ann.tokens)
            tokens = ann.tokens.model_copy(update={"access_token": expired})
        api = people.api(tokens=tokens, log=log, transport=transport)

        users = await asyncio.gather(*(api.me() for _ in range(10)))
        assert users == [ann.user] * 10
        assert transport.count("POST", "/auth/refresh") == 1
        assert len(log.calls) == 1 and log.calls[0] == api.tokens
        assert transport.count("GET", "/me") == (10 if why == "near expiry" else 20)


async def test_a_refresh_outlives_a_cancelled_caller(server: ServerProcess) -> None:
    """The caller that started a refresh gives up while it is on the wire: the exchange goes
    on and its new tokens are kept (the old refresh token may already be used up)."""
    async with People(server) as people:
        ann = await people.person()
        transport, log = RecordingTransport(), TokenLog()
        refreshing = asyncio.Event()
        transport.on_request = lambda r: (
            refreshing.set() if r.url.path.endswith("/refresh") else None
        )
        api = people.api(tokens=near_expiry(ann.tokens), log=log, transport=transport)

        caller = asyncio.create_task(api.me())
        async with asyncio.timeout(10):
            await refreshing.wait()
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        assert await api.me() == ann.user
        assert transport.count("POST", "/auth/refresh") == 1
        assert len(log.calls) == 1 and log.calls[0] == api.tokens


async def test_logout_ends_the_login(server: ServerProcess) -> None:
    async with People(server) as people:
        ann = await people.person()
        ended = ann.tokens
        await ann.api.logout()
        assert ann.api.tokens is None and ann.log.calls[-1] is None
        await ann.api.logout()  # without a login: nothing happens
        assert ann.log.calls.count(None) == 1

        sent_before = len(ann.transport.sent)
        with pytest.raises(LoggedOut):
            await ann.api.me()
        assert len(ann.transport.sent) == sent_before, "no request without a login"

        # The ended login's tokens: the access token is refused, and so is its refresh.
        transport, log = RecordingTransport(), TokenLog()
        api = people.api(tokens=ended, log=log, transport=transport)
        with pytest.raises(LoggedOut):
            await api.me()
        assert transport.paths() == ["GET /me", "POST /auth/refresh"]
        assert [s.status for s in transport.sent] == [401, 401]
        assert api.tokens is None and log.calls == [None]


async def test_without_tokens_every_authenticated_call_is_logged_out(
    server: ServerProcess,
) -> None:
    async with People(server) as people:
        transport = RecordingTransport()
        api = people.api(transport=transport)
        for call in (api.me(), api.rooms(), api.access_token(), api.refresh()):
            with pytest.raises(LoggedOut) as caught:
                await call
            assert (caught.value.status, caught.value.code) == (401, "unauthorized")
        assert transport.sent == []


def test_a_server_url_that_is_no_url_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="server URL"):
        Api("http://[::1")
