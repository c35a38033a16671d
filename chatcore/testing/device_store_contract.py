"""The device store contract: what every `chatcore.client.interfaces.DeviceStore` must do.

A device store runs the suite by subclassing `DeviceStoreContract` and providing a fixture
`store` that yields an opened, empty store (and closes it afterwards)::

    import pytest
    from chatcore.testing.device_store_contract import DeviceStoreContract

    class TestMyDeviceStore(DeviceStoreContract):
        @pytest.fixture
        async def store(self, tmp_path):
            store = MyDeviceStore(tmp_path / "device")
            await store.open()
            yield store
            await store.close()

A store that several processes of one device may open at once (the app and its push handler)
also overrides `other_instance`: a second opened store on the same data as `store`. The tests
of sharing (each instance sees the other's writes, concurrent writes all land) then run across
the two; without it they are skipped.

The tests are async and run on anyio's pytest plugin (the `anyio_backend` fixture comes with
the class). Every time is explicit, so no test depends on the clock. The helpers that build
messages, rooms, outbox entries and accounts (`message`, `room`, `entry`, `account`, ...) are
exported for a store's own tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio
import pytest

from chatcore.client.interfaces import DeviceStore
from chatcore.client.models import (
    Account,
    Contact,
    Invitation,
    Message,
    OutboxEntry,
    Room,
    Tokens,
    User,
)

__all__ = [
    "ME",
    "SERVER",
    "DeviceStoreContract",
    "account",
    "entry",
    "gather",
    "invitation",
    "message",
    "room",
    "seqs",
    "user",
]

#: The account's user in every test (the "own user" of add_messages), and its server.
ME = "u-me"
SERVER = "https://chat.example"


def user(user_id: str, username: str | None = None) -> User:
    name = username or user_id.removeprefix("u-")
    return User(id=user_id, username=name, display_name=name.title())


def account(user_id: str = ME, server_url: str = SERVER, *, logged_in: bool = True) -> Account:
    tokens = None
    if logged_in:
        tokens = Tokens(
            access_token=f"access-{user_id}",
            refresh_token=f"refresh-{user_id}",
            access_expires_ts=10**13,
            user=user(user_id),
        )
    return Account(server_url=server_url, user=user(user_id), tokens=tokens)


def room(room_id: str, *members: str, name: str | None = None, **fields: Any) -> Room:
    """A group room of `members` (ME and u-bob when none are given)."""
    return Room(
        id=room_id,
        kind=fields.pop("kind", "group"),
        name=name if name is not None else f"room {room_id}",
        member_ids=members or (ME, "u-bob"),
        **fields,
    )


def message(room_id: str, seq: int, sender: str = "u-bob", **fields: Any) -> Message:
    """The message at `seq` of `room_id` (`fields` override ref, body, ts, kind, ...)."""
    values: dict[str, Any] = {
        "ref": f"ref-{room_id}-{seq}",
        "body": f"message {seq} of {room_id}",
        "ts": 1_000_000 + seq,
        **fields,
    }
    return Message(room_id=room_id, sender_id=sender, id=f"m-{room_id}-{seq}", seq=seq, **values)


def entry(ref: str, room_id: str, **fields: Any) -> OutboxEntry:
    """A pending text send (its `position` is set by the store)."""
    return OutboxEntry(
        ref=ref,
        room_id=room_id,
        position=0,
        **{"body": f"send {ref}", "created_ts": 2_000_000, **fields},
    )


def invitation(invitation_id: str, from_id: str, to_id: str, ts: int) -> Invitation:
    return Invitation(
        id=invitation_id, from_user=user(from_id), to_user=user(to_id), status="pending", ts=ts
    )


def seqs(found: Sequence[Message]) -> list[int]:
    return [m.seq for m in found]


def refs(found: Sequence[OutboxEntry]) -> list[str]:
    return [e.ref for e in found]


async def gather(*calls: Any) -> list[Any]:
    """Run coroutines concurrently; their results in order (the first failure is raised)."""
    results: list[Any] = [None] * len(calls)

    async def run(i: int, call: Any) -> None:
        results[i] = await call

    async with anyio.create_task_group() as tg:
        for i, call in enumerate(calls):
            tg.start_soon(run, i, call)
    return results


class DeviceStoreContract:
    """The whole device store contract; subclasses provide `store` (and `other_instance`)."""

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    @pytest.fixture
    def other_instance(self) -> DeviceStore:
        """A second opened store on the same data as `store` (another process of the device)."""
        pytest.skip("this store provides no second instance on the same data (other_instance)")

    # --- lifecycle ---------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_is_a_device_store_and_starts_empty(self, store: DeviceStore) -> None:
        assert isinstance(store, DeviceStore)
        assert await store.get_account() is None
        assert await store.list_rooms() == []
        assert await store.cursors() == {}
        assert await store.outbox() == []
        assert await store.list_contacts() == []
        assert await store.list_invitations() == ([], [])
        assert await store.get_settings() == {}
        assert await store.history("nowhere") == []
        assert await store.search("anything") == []

    @pytest.mark.anyio
    async def test_open_again_keeps_data_and_close_is_safe_twice(self, store: DeviceStore) -> None:
        await store.save_rooms([room("r")])
        await store.add_messages([message("r", 1)], ME)
        await store.open()  # already open: nothing happens
        assert seqs(await store.history("r")) == [1]
        await store.close()
        await store.close()

    # --- account -----------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_account_round_trips_and_logout_keeps_history(self, store: DeviceStore) -> None:
        await store.save_account(account())
        assert await store.get_account() == account()
        await store.save_rooms([room("r")])
        await store.add_messages([message("r", 1)], ME)
        await store.save_account(account(logged_in=False))  # logged out: tokens forgotten
        found = await store.get_account()
        assert found is not None and found.tokens is None and found.user.id == ME
        assert seqs(await store.history("r")) == [1]
        await store.save_account(account())  # the same user logs in again: nothing is wiped
        assert seqs(await store.history("r")) == [1]

    @pytest.mark.parametrize("other", ["user", "server"])
    @pytest.mark.anyio
    async def test_another_account_wipes_the_device(self, store: DeviceStore, other: str) -> None:
        await store.save_account(account())
        await store.save_rooms([room("r")])
        await store.add_messages([message("r", 1, body="private words")], ME)
        await store.outbox_add(entry("e1", "r"))
        await store.save_contacts([Contact(user=user("u-bob"), since_ts=1)])
        await store.save_invitations([invitation("i1", "u-eve", ME, 5)], [])
        await store.patch_settings({"theme": "dark"})
        await store.save_users([user("u-bob")])
        newcomer = account("u-other") if other == "user" else account(server_url="https://b.ex")
        await store.save_account(newcomer)
        assert await store.get_account() == newcomer
        assert await store.list_rooms() == []
        assert await store.cursors() == {}
        assert await store.history("r") == []
        assert await store.search("private") == []
        assert await store.outbox() == []
        assert await store.list_contacts() == []
        assert await store.list_invitations() == ([], [])
        assert await store.get_settings() == {}
        assert await store.get_users(["u-bob"]) == {}

    # --- rooms -------------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_save_rooms_inserts_then_updates_keeping_device_positions(
        self, store: DeviceStore
    ) -> None:
        first = room("r", ME, "u-bob", name="before", owner_id=ME, last_seq=3)
        await store.save_rooms([first])
        found = await store.get_room("r")
        assert found is not None
        assert found.room == first
        assert (found.read_seq, found.synced_seq, found.unread, found.last_message) == (
            0,
            0,
            0,
            None,
        )
        await store.add_messages([message("r", 1), message("r", 2)], ME)
        assert await store.set_read("r", 1) == 1
        renamed = room("r", ME, "u-bob", "u-cy", name="after", owner_id="u-bob", last_seq=9)
        await store.save_rooms([renamed])
        found = await store.get_room("r")
        assert found is not None
        assert found.room == renamed
        assert (found.read_seq, found.synced_seq) == (1, 2)  # the device's own, kept
        assert await store.get_room("unknown") is None

    @pytest.mark.anyio
    async def test_a_direct_room_keeps_its_kind_and_null_name(self, store: DeviceStore) -> None:
        direct = Room(id="d", kind="direct", member_ids=(ME, "u-bob"))
        await store.save_rooms([direct])
        found = await store.get_room("d")
        assert found is not None and found.room == direct

    @pytest.mark.anyio
    async def test_complete_room_list_forgets_other_rooms(self, store: DeviceStore) -> None:
        await store.save_rooms([room("keep"), room("left"), room("gone")])
        await store.add_messages(
            [message("keep", 1, body="kept words"), message("left", 1, body="left words")], ME
        )
        await store.outbox_add(entry("to-keep", "keep"))
        await store.outbox_add(entry("to-left", "left"))
        await store.save_rooms([room("keep", name="renamed")], complete=True)
        assert [s.room.id for s in await store.list_rooms()] == ["keep"]
        assert await store.cursors() == {"keep": 1}
        assert await store.history("left") == []
        assert await store.search("words") == [message("keep", 1, body="kept words")]
        kept, failed = await store.outbox()
        assert (kept.ref, kept.state, kept.error_code) == ("to-keep", "pending", None)
        assert (failed.ref, failed.state, failed.error_code) == ("to-left", "failed", "not_found")
        assert failed.error_message, "a sentence saying why, for the person"
        await store.save_rooms([], complete=True)  # no room at all
        assert await store.list_rooms() == []

    @pytest.mark.anyio
    async def test_forget_room_removes_its_messages_and_fails_its_sends(
        self, store: DeviceStore
    ) -> None:
        await store.save_rooms([room("a"), room("b")])
        await store.add_messages([message("a", 1), message("a", 2), message("b", 1)], ME)
        await store.outbox_add(entry("e-a", "a"))
        sending = await store.outbox_add(entry("e-a2", "a"))
        await store.outbox_transmitted([sending.ref])
        await store.outbox_add(entry("e-b", "b"))
        await store.forget_room("a")
        await store.forget_room("a")  # twice: nothing more to do
        await store.forget_room("never-stored")
        assert await store.get_room("a") is None
        assert await store.history("a") == []
        assert await store.get_message("a", "m-a-1") is None
        assert await store.search("message") == [message("b", 1)]
        assert await store.cursors() == {"b": 1}
        states = {e.ref: (e.state, e.error_code) for e in await store.outbox()}
        assert states == {
            "e-a": ("failed", "not_found"),
            "e-a2": ("failed", "not_found"),
            "e-b": ("pending", None),
        }

    @pytest.mark.anyio
    async def test_rooms_are_listed_by_activity(self, store: DeviceStore) -> None:
        quiet_at = 1_000_500  # the server's newest message of a room nothing is stored of
        await store.save_rooms(
            [
                room("old"),
                room("new"),
                room("quiet", last_message=message("quiet", 7, ts=quiet_at), last_seq=7),
                room("empty"),
            ]
        )
        await store.add_messages(
            [message("old", 1, ts=1_000_100), message("new", 1, ts=1_000_900)], ME
        )
        summaries = await store.list_rooms()
        assert [s.room.id for s in summaries] == ["new", "quiet", "old", "empty"]
        assert [s.last_ts for s in summaries][:3] == [1_000_900, quiet_at, 1_000_100]
        # A new message moves its room to the top.
        await store.add_messages([message("old", 2, ts=1_001_000)], ME)
        assert [s.room.id for s in await store.list_rooms()] == ["old", "new", "quiet", "empty"]
        assert await store.get_room("old") == (await store.list_rooms())[0]

    @pytest.mark.anyio
    async def test_last_message_is_the_newest_stored(self, store: DeviceStore) -> None:
        await store.save_rooms([room("r")])
        await store.add_messages([message("r", 3), message("r", 1)], ME)
        found = await store.get_room("r")
        assert found is not None and found.last_message == message("r", 3)
        deleted = message("r", 3, body="", deleted=True, edited_ts=1_000_010)
        assert await store.update_message(deleted)
        found = await store.get_room("r")
        assert found is not None and found.last_message == deleted  # still the newest seq

    @pytest.mark.anyio
    async def test_unread_counts_others_messages_above_the_read_position(
        self, store: DeviceStore
    ) -> None:
        await store.save_account(account())
        await store.save_rooms([room("r"), room("s")])
        await store.add_messages(
            [
                message("r", 1),
                message("r", 2, sender=ME),  # own: never unread
                message("r", 3),
                message("r", 4, body="", deleted=True),  # deleted: nothing to read
                message("r", 5, sender="u-cy"),
                message("s", 1, sender=ME),
            ],
            ME,
        )
        by_id = {s.room.id: s for s in await store.list_rooms()}
        assert (by_id["r"].unread, by_id["s"].unread) == (3, 0)
        assert await store.set_read("r", 3) == 3
        found = await store.get_room("r")
        assert found is not None and (found.unread, found.read_seq) == (1, 3)
        assert await store.update_message(message("r", 5, sender="u-cy", body="", deleted=True))
        found = await store.get_room("r")
        assert found is not None and found.unread == 0

    @pytest.mark.anyio
    async def test_read_position_only_moves_forward(self, store: DeviceStore) -> None:
        await store.save_rooms([room("r")])
        assert await store.set_read("r", 5) == 5
        assert await store.set_read("r", 2) == 5
        assert await store.set_read("r", 5) == 5
        assert await store.set_read("r", 8) == 8
        found = await store.get_room("r")
        assert found is not None and found.read_seq == 8

    @pytest.mark.anyio
    async def test_a_message_for_an_unknown_room_is_kept_until_the_room_comes(
        self, store: DeviceStore
    ) -> None:
        batch = await store.add_messages([message("later", 1), message("later", 2)], ME)
        assert seqs(batch.new) == [1, 2]
        assert seqs(await store.history("later")) == [2, 1]
        assert await store.cursors() == {"later": 2}
        await store.save_rooms([room("later", ME, "u-bob", name="Later", last_seq=2)])
        found = await store.get_room("later")
        assert found is not None
        assert found.room == room("later", ME, "u-bob", name="Later", last_seq=2)
        assert (found.synced_seq, found.last_message) == (2, message("later", 2))

    # --- messages ----------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_add_messages_stores_them_and_says_which_are_new(
        self, store: DeviceStore
    ) -> None:
        await store.save_rooms([room("r")])
        batch = await store.add_messages([message("r", 2), message("r", 1)], ME)
        assert list(batch.new) == [message("r", 2), message("r", 1)]  # in the order given
        assert list(batch.acked) == []
        # Stored ones are left as they are (even with another body): update_message changes.
        again = await store.add_messages(
            [message("r", 1, body="changed"), message("r", 3), message("r", 3)], ME
        )
        assert list(again.new) == [message("r", 3)]  # repeated in the batch: stored once
        assert await store.history("r") == [message("r", 3), message("r", 2), message("r", 1)]
        empty = await store.add_messages([], ME)
        assert (list(empty.new), list(empty.acked)) == ([], [])

    @pytest.mark.anyio
    async def test_messages_come_back_as_they_went_in(self, store: DeviceStore) -> None:
        await store.save_rooms([room("r")])
        given = [
            message("r", 1, body="héllo wörld ✓", ts=5),
            message("r", 2, kind="media", body="", media_id="media-1", sender=ME),
            message("r", 3, kind="sticker", body="", sticker_id="st-1", reply_to="m-r-1"),
            message("r", 4, body="", deleted=True, edited_ts=9),
            message("r", 5, body="edited", edited_ts=10),
        ]
        await store.add_messages(given, ME)
        for found in (
            list(reversed(await store.history("r"))),
            [await store.get_message("r", m.id) for m in given],
        ):
            assert found == given
            for got in found:
                assert got is not None
                # Equal to its validated copy, with the declared types (a bool, not 0/1).
                assert Message.model_validate(got.model_dump()) == got
                assert type(got.deleted) is bool
                assert got.wire() == Message.model_validate(got.model_dump()).wire()

    @pytest.mark.anyio
    async def test_cursor_advances_over_contiguous_seqs_only(self, store: DeviceStore) -> None:
        await store.save_rooms([room("r"), room("s")])
        await store.add_messages([message("r", 1), message("r", 2), message("r", 4)], ME)
        assert await store.cursors() == {"r": 2, "s": 0}
        await store.add_messages([message("r", 3)], ME)  # fills the gap: up to 4
        assert await store.cursors() == {"r": 4, "s": 0}
        await store.add_messages([message("r", 7), message("r", 6)], ME)
        assert (await store.cursors())["r"] == 4
        await store.add_messages([message("r", 5), message("s", 2)], ME)
        assert await store.cursors() == {"r": 7, "s": 0}
        await store.add_messages([message("s", 1)], ME)
        assert await store.cursors() == {"r": 7, "s": 2}
        found = await store.get_room("r")
        assert found is not None and (found.synced_seq, found.room.last_seq) == (7, 7)

    @pytest.mark.anyio
    async def test_cursor_of_an_unordered_catch_up_batch(self, store: DeviceStore) -> None:
        await store.save_rooms([room("r")])
        batch = [message("r", seq) for seq in (5, 3, 1, 2, 4, 9, 8)]
        await store.add_messages(batch, ME)
        assert await store.cursors() == {"r": 5}
        # A page of older history stored later (below a gap) does not move it by itself.
        await store.save_rooms([room("h")])
        await store.add_messages([message("h", seq) for seq in range(50, 60)], ME)
        assert (await store.cursors())["h"] == 0
        await store.add_messages([message("h", seq) for seq in range(1, 50)], ME)
        assert (await store.cursors())["h"] == 59

    @pytest.mark.anyio
    async def test_skip_deleted_moves_the_cursor_past_seqs_the_server_deleted(
        self, store: DeviceStore
    ) -> None:
        await store.save_rooms([room("r"), room("s")])
        # Seqs 1..9 were deleted on the server; 10 and 11 came (a catch-up), 13 live.
        await store.add_messages([message("r", 10), message("r", 11), message("r", 13)], ME)
        assert (await store.cursors())["r"] == 0
        assert await store.skip_deleted("r", 10) == 11  # on over what is stored
        assert await store.cursors() == {"r": 11, "s": 0}
        assert await store.skip_deleted("r", 5) == 11  # never backwards
        await store.add_messages([message("r", 12)], ME)
        assert (await store.cursors())["r"] == 13
        # A room whose every message was deleted: the cursor reaches its last seq.
        assert await store.skip_deleted("s", 8) == 7
        # A room not stored yet is kept, like a room a message arrives for first.
        assert await store.skip_deleted("new", 3) == 2
        assert (await store.cursors())["new"] == 2
        found = await store.get_room("r")
        assert found is not None and found.room.last_seq == 13

    @pytest.mark.anyio
    async def test_history_pages_newest_first(self, store: DeviceStore) -> None:
        await store.save_rooms([room("r"), room("other")])
        await store.add_messages([message("r", seq) for seq in range(1, 11)], ME)
        await store.add_messages([message("other", 1)], ME)
        assert seqs(await store.history("r", limit=3)) == [10, 9, 8]
        assert seqs(await store.history("r", before_seq=8, limit=3)) == [7, 6, 5]
        assert seqs(await store.history("r", before_seq=3)) == [2, 1]
        assert await store.history("r", before_seq=1) == []
        assert seqs(await store.history("r", before_seq=10**12, limit=1)) == [10]
        assert await store.history("r", limit=0) == []
        assert len(await store.history("r")) == 10  # the default limit is larger

    @pytest.mark.anyio
    async def test_get_message_by_id_in_its_room(self, store: DeviceStore) -> None:
        await store.save_rooms([room("r"), room("s")])
        await store.add_messages([message("r", 1)], ME)
        assert await store.get_message("r", "m-r-1") == message("r", 1)
        assert await store.get_message("s", "m-r-1") is None
        assert await store.get_message("r", "m-nope") is None

    @pytest.mark.anyio
    async def test_update_message_replaces_edits_and_deletions(self, store: DeviceStore) -> None:
        await store.save_rooms([room("r")])
        await store.add_messages([message("r", 1), message("r", 2)], ME)
        edited = message("r", 1, body="new text", edited_ts=1_000_050)
        assert await store.update_message(edited)
        deleted = message("r", 2, body="", deleted=True, edited_ts=1_000_060)
        assert await store.update_message(deleted)
        assert await store.history("r") == [deleted, edited]
        assert await store.get_message("r", "m-r-1") == edited
        assert not await store.update_message(message("r", 3, body="not stored"))
        assert seqs(await store.history("r")) == [2, 1]  # nothing added

    # --- the outbox and acks -----------------------------------------------------------------

    @pytest.mark.anyio
    async def test_own_message_acks_its_outbox_entry(self, store: DeviceStore) -> None:
        await store.save_rooms([room("r")])
        sent = await store.outbox_add(entry("e1", "r", body="hello"))
        waiting = await store.outbox_add(entry("e2", "r"))
        echo = message("r", 1, sender=ME, ref="e1", body="hello")
        batch = await store.add_messages([message("r", 2, ref="e2"), echo], ME)
        # Another user's message with the same ref acks nothing (refs are per sender).
        assert [(e, m) for e, m in batch.acked] == [(sent, echo)]
        assert list(batch.new) == [message("r", 2, ref="e2"), echo]
        assert await store.outbox() == [waiting]
        assert await store.outbox_get("e1") is None

    @pytest.mark.anyio
    async def test_ack_needs_the_same_room_and_the_own_user(self, store: DeviceStore) -> None:
        await store.save_rooms([room("r"), room("s")])
        queued = await store.outbox_add(entry("e1", "r"))
        batch = await store.add_messages(
            [message("s", 1, sender=ME, ref="e1"), message("r", 1, sender="u-bob", ref="e1")],
            ME,
        )
        assert list(batch.acked) == []
        assert await store.outbox() == [queued]

    @pytest.mark.anyio
    async def test_an_already_stored_own_message_acks_too(self, store: DeviceStore) -> None:
        """The message came first (live, or through a REST send); the ack of the same send
        arrives later: the entry goes, and the message is not new."""
        await store.save_rooms([room("r")])
        echo = message("r", 1, sender=ME, ref="e1")
        await store.add_messages([echo], ME)
        queued = await store.outbox_add(entry("e1", "r"))
        batch = await store.add_messages([echo], ME)
        assert list(batch.new) == []
        assert [(e, m) for e, m in batch.acked] == [(queued, echo)]
        assert await store.outbox() == []

    @pytest.mark.anyio
    async def test_outbox_positions_order_the_sends(self, store: DeviceStore) -> None:
        added = [await store.outbox_add(entry(f"e{i}", "a" if i % 2 else "b")) for i in range(5)]
        positions = [e.position for e in added]
        assert positions == sorted(positions) and len(set(positions)) == 5
        assert await store.outbox() == added
        assert refs(await store.outbox(room_id="a")) == ["e1", "e3"]
        assert refs(await store.outbox(room_id="b")) == ["e0", "e2", "e4"]
        assert await store.outbox(room_id="c") == []
        assert await store.outbox_remove("e4") == added[4]
        later = await store.outbox_add(entry("e5", "b"))
        assert later.position > added[3].position  # after every other entry
        assert refs(await store.outbox()) == ["e0", "e1", "e2", "e3", "e5"]
        assert later == entry("e5", "b").model_copy(update={"position": later.position})

    @pytest.mark.anyio
    async def test_outbox_entry_keeps_every_field(self, store: DeviceStore) -> None:
        media = entry(
            "m1",
            "r",
            kind="media",
            body="",
            media_id=None,
            file_path="/photos/cat.png",
            reply_to="m-r-1",
            created_ts=7,
        )
        stored = await store.outbox_add(media)
        assert stored == media.model_copy(update={"position": stored.position})
        assert await store.outbox_get("m1") == stored
        assert await store.outbox_get("nope") is None

    @pytest.mark.anyio
    async def test_outbox_update_changes_allowed_fields_only(self, store: DeviceStore) -> None:
        queued = await store.outbox_add(entry("e1", "r"))
        failed = await store.outbox_update(
            "e1", state="failed", error_code="forbidden", error_message="Not allowed."
        )
        assert failed == queued.model_copy(
            update={"state": "failed", "error_code": "forbidden", "error_message": "Not allowed."}
        )
        assert await store.outbox_get("e1") == failed
        assert await store.outbox() == [failed]  # failed entries stay listed
        again = await store.outbox_update(
            "e1", state="pending", error_code=None, error_message=None, body="fixed"
        )
        assert again is not None and (again.state, again.error_code, again.body) == (
            "pending",
            None,
            "fixed",
        )
        uploaded = await store.outbox_update("e1", media_id="media-9", file_path=None)
        assert uploaded is not None and uploaded.media_id == "media-9"
        for refused in ({"room_id": "other"}, {"position": 1}, {"created_ts": 3}, {"kind": "x"}):
            with pytest.raises(ValueError):
                await store.outbox_update("e1", **refused)
        with pytest.raises(ValueError):
            await store.outbox_update("e1", state="not a state")
        assert await store.outbox_get("e1") == uploaded  # a refused update changed nothing
        assert await store.outbox_update("missing", state="failed") is None

    @pytest.mark.anyio
    async def test_outbox_head_without_the_failed(self, store: DeviceStore) -> None:
        for i in range(6):
            await store.outbox_add(entry(f"e{i}", "a" if i % 2 else "b"))
        await store.outbox_update("e1", state="failed", error_code="forbidden")
        await store.outbox_transmitted(["e0"])
        assert refs(await store.outbox(unsent_only=True)) == ["e0", "e2", "e3", "e4", "e5"]
        assert refs(await store.outbox(unsent_only=True, limit=3)) == ["e0", "e2", "e3"]
        assert refs(await store.outbox(limit=2)) == ["e0", "e1"]
        assert refs(await store.outbox(room_id="a", unsent_only=True)) == ["e3", "e5"]
        assert await store.outbox(limit=0) == []

    @pytest.mark.anyio
    async def test_outbox_transmitted_and_reset(self, store: DeviceStore) -> None:
        for ref in ("e1", "e2", "e3"):
            await store.outbox_add(entry(ref, "r"))
        await store.outbox_transmitted(["e1", "e2"])
        await store.outbox_transmitted([])
        found = {e.ref: (e.state, e.transmitted, e.attempts) for e in await store.outbox()}
        assert found == {
            "e1": ("sending", True, 1),
            "e2": ("sending", True, 1),
            "e3": ("pending", False, 0),
        }
        await store.outbox_update("e2", state="failed", error_code="internal")
        await store.outbox_reset_sending()  # the connection is gone
        await store.outbox_transmitted(["e1"])
        await store.outbox_reset_sending()
        found = {e.ref: (e.state, e.transmitted, e.attempts) for e in await store.outbox()}
        assert found == {
            "e1": ("pending", True, 2),
            "e2": ("failed", True, 1),  # a failed entry stays failed
            "e3": ("pending", False, 0),
        }

    @pytest.mark.anyio
    async def test_outbox_remove(self, store: DeviceStore) -> None:
        queued = await store.outbox_add(entry("e1", "r"))
        assert await store.outbox_remove("e1") == queued
        assert await store.outbox_remove("e1") is None
        assert await store.outbox() == []

    # --- search ------------------------------------------------------------------------------

    async def searchable(self, store: DeviceStore) -> None:
        await store.save_rooms([room("r"), room("s")])
        await store.add_messages(
            [
                message("r", 1, body="Lunch at noon, Bob?", ts=10),
                message("r", 2, body="the quarterly report is ready", ts=20),
                message("s", 1, body="lunch tomorrow instead", ts=30),
                message("s", 2, body="Café Crème at the corner", ts=40),
                message("s", 3, kind="media", body="", media_id="md", ts=50),
            ],
            ME,
        )

    @pytest.mark.anyio
    async def test_search_finds_words_newest_first(self, store: DeviceStore) -> None:
        await self.searchable(store)
        assert seqs(await store.search("lunch")) == [1, 1]  # s:1 (ts 30), then r:1 (ts 10)
        assert [m.room_id for m in await store.search("LUNCH")] == ["s", "r"]
        assert [m.body for m in await store.search("lunch noon")] == ["Lunch at noon, Bob?"]
        assert await store.search("lunch report") == []  # every word must occur
        assert [m.body for m in await store.search("report ready")] == [
            "the quarterly report is ready"
        ]
        assert [m.room_id for m in await store.search("lunch", limit=1)] == ["s"]
        assert await store.search("lunch", limit=0) == []

    @pytest.mark.anyio
    async def test_search_prefix_and_accents(self, store: DeviceStore) -> None:
        await self.searchable(store)
        assert [m.body for m in await store.search("quart*")] == ["the quarterly report is ready"]
        assert await store.search("quart") == []  # a whole word, without the star
        assert [m.body for m in await store.search("cafe creme")] == ["Café Crème at the corner"]

    @pytest.mark.anyio
    async def test_search_in_one_room(self, store: DeviceStore) -> None:
        await self.searchable(store)
        found = await store.search("lunch", room_id="r")
        assert found == [message("r", 1, body="Lunch at noon, Bob?", ts=10)]
        assert await store.search("lunch", room_id="nowhere") == []

    @pytest.mark.parametrize(
        "text",
        [
            "",
            "   ",
            "*",
            "?!?",
            "-- ...",
            '"',
            '"unbalanced',
            "(lunch",
            "lunch)",
            "NEAR(lunch noon)",
            "lunch AND",
            "OR",
            "NOT lunch",
            "body:lunch",
            "^lunch",
            "lunch*noon",
            "l'unch",
            "{body}: x",
            "'; DROP TABLE messages; --",
        ],
    )
    @pytest.mark.anyio
    async def test_search_never_fails_on_what_a_person_types(
        self, store: DeviceStore, text: str
    ) -> None:
        await self.searchable(store)
        found = await store.search(text)  # never an FTS syntax error
        assert all(isinstance(m, Message) for m in found)
        if not any(c.isalnum() for c in text):
            assert found == []
        assert len(await store.history("r")) == 2  # and nothing was harmed

    @pytest.mark.anyio
    async def test_search_words_typed_with_operators_are_plain_words(
        self, store: DeviceStore
    ) -> None:
        await store.save_rooms([room("r")])
        await store.add_messages(
            [message("r", 1, body="cats AND dogs"), message("r", 2, body="cats or dogs")], ME
        )
        assert seqs(await store.search("and")) == [1]
        assert seqs(await store.search("OR")) == [2]
        assert seqs(await store.search('"cats"')) == [2, 1]
        assert seqs(await store.search("(dogs)")) == [2, 1]

    @pytest.mark.anyio
    async def test_search_follows_edits_and_deletions(self, store: DeviceStore) -> None:
        await self.searchable(store)
        edited = message("r", 2, body="the annual summary is ready", ts=20, edited_ts=60)
        assert await store.update_message(edited)
        assert await store.search("quarterly") == []  # the old words are gone
        assert await store.search("annual") == [edited]
        assert await store.search("ready") == [edited]
        assert await store.update_message(
            message("s", 1, body="", deleted=True, ts=30, edited_ts=70)
        )
        assert [m.room_id for m in await store.search("lunch")] == ["r"]
        # A message that arrives deleted is never found; nor an empty media message.
        await store.add_messages(
            [message("r", 3, body="", deleted=True), message("r", 4, body="", kind="media")], ME
        )
        assert [m.room_id for m in await store.search("lunch")] == ["r"]

    # --- contacts and invitations ------------------------------------------------------------

    @pytest.mark.anyio
    async def test_contacts_are_replaced_and_listed_by_username(self, store: DeviceStore) -> None:
        zed = Contact(user=user("u-1", "zed"), since_ts=1, presence="online")
        amy = Contact(user=user("u-2", "amy"), since_ts=2)
        await store.save_contacts([zed, amy])
        assert await store.list_contacts() == [amy, zed]
        bo = Contact(user=user("u-3", "bo"), since_ts=3)
        await store.save_contacts([bo, zed])
        assert await store.list_contacts() == [bo, zed]
        await store.save_contacts([])
        assert await store.list_contacts() == []

    @pytest.mark.anyio
    async def test_presence_is_recorded_on_the_contact(self, store: DeviceStore) -> None:
        amy = Contact(user=user("u-2", "amy"), since_ts=2)
        await store.save_contacts([amy])
        await store.set_presence("u-2", "online")
        assert await store.list_contacts() == [amy.model_copy(update={"presence": "online"})]
        await store.set_presence("u-2", "offline")
        await store.set_presence("u-stranger", "online")  # not a contact: nothing to record
        assert await store.list_contacts() == [amy]

    @pytest.mark.anyio
    async def test_invitations_are_replaced_and_listed_newest_first(
        self, store: DeviceStore
    ) -> None:
        old_in = invitation("i1", "u-a", ME, 10)
        new_in = invitation("i2", "u-b", ME, 30)
        out = invitation("i3", ME, "u-c", 20)
        await store.save_invitations([old_in, new_in], [out])
        assert await store.list_invitations() == ([new_in, old_in], [out])
        await store.save_invitations([], [out])
        assert await store.list_invitations() == ([], [out])

    @pytest.mark.anyio
    async def test_users_seen_are_kept_by_id(self, store: DeviceStore) -> None:
        bob, eve = user("u-bob", "bob"), user("u-eve", "eve")
        assert await store.get_users(["u-bob"]) == {}
        await store.save_users([bob, eve])
        assert await store.get_users(["u-bob", "u-nobody", "u-eve", "u-bob"]) == {
            "u-bob": bob,
            "u-eve": eve,
        }
        renamed = bob.model_copy(update={"display_name": "Bob B."})
        await store.save_users([renamed])  # a newer copy replaces the kept one
        assert await store.get_users(["u-bob"]) == {"u-bob": renamed}
        assert await store.get_users([]) == {}
        many = [user(f"u-{i}") for i in range(1_200)]  # more ids than one statement binds
        await store.save_users(many)
        assert len(await store.get_users([u.id for u in many])) == 1_200

    # --- settings ----------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_settings_take_json_merge_patches(self, store: DeviceStore) -> None:
        assert await store.get_settings() == {}
        first = await store.patch_settings(
            {"theme": "dark", "ui": {"font": 12, "compact": True}, "server": {"push": "all"}}
        )
        assert first == {
            "theme": "dark",
            "ui": {"font": 12, "compact": True},
            "server": {"push": "all"},
        }
        patched = await store.patch_settings(
            {
                "theme": None,  # null removes
                "ui": {"font": 14, "compact": None, "lang": "fr"},  # objects merge
                "server": "replaced",  # anything else replaces
                "list": [1, {"a": None}],  # arrays are values, kept as given
                "absent": None,
            }
        )
        expected = {
            "ui": {"font": 14, "lang": "fr"},
            "server": "replaced",
            "list": [1, {"a": None}],
        }
        assert patched == expected
        assert await store.get_settings() == expected
        assert await store.patch_settings({"server": {"a": {"b": None, "c": 1}}}) == {
            **expected,
            "server": {"a": {"c": 1}},
        }
        assert await store.patch_settings({}) == await store.get_settings()

    # --- two instances on the same data ------------------------------------------------------

    @pytest.mark.anyio
    async def test_another_instance_sees_the_writes(
        self, store: DeviceStore, other_instance: DeviceStore
    ) -> None:
        await store.save_account(account())
        await store.save_rooms([room("r")])
        await store.add_messages([message("r", 1), message("r", 2)], ME)
        await store.outbox_add(entry("e1", "r"))
        await store.patch_settings({"theme": "dark"})
        assert await other_instance.get_account() == account()
        assert seqs(await other_instance.history("r")) == [2, 1]
        assert await other_instance.cursors() == {"r": 2}
        assert refs(await other_instance.outbox()) == ["e1"]
        assert seqs(await other_instance.search("message")) == [2, 1]
        # And the other way round: the push handler stores a message, the app sees it.
        batch = await other_instance.add_messages([message("r", 3), message("r", 2)], ME)
        assert seqs(batch.new) == [3]
        await other_instance.patch_settings({"ui": {"font": 12}})
        assert seqs(await store.history("r")) == [3, 2, 1]
        assert await store.get_settings() == {"theme": "dark", "ui": {"font": 12}}

    @pytest.mark.anyio
    async def test_concurrent_writes_of_two_instances_all_land(
        self, store: DeviceStore, other_instance: DeviceStore
    ) -> None:
        await store.save_rooms([room("r")])
        halves = (
            [message("r", s) for s in range(1, 101)],
            [message("r", s) for s in range(50, 151)],
        )
        first, second = await gather(
            store.add_messages(halves[0], ME), other_instance.add_messages(halves[1], ME)
        )
        assert sorted(seqs(first.new) + seqs(second.new)) == list(range(1, 151))  # each once
        assert await store.cursors() == {"r": 150}
        added = await gather(
            *(
                (store if i % 2 else other_instance).outbox_add(entry(f"e{i}", "r"))
                for i in range(20)
            )
        )
        assert len({e.position for e in added}) == 20  # no position given twice
        assert sorted(refs(await store.outbox())) == sorted(f"e{i}" for i in range(20))
        await gather(
            store.patch_settings({"a": 1}), other_instance.patch_settings({"b": 2})
        )  # read-merge-write: neither patch is lost
        assert await other_instance.get_settings() == {"a": 1, "b": 2}
