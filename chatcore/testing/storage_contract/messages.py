"""The storage contract, storing, reading, editing and deleting messages: `MessageStorage`."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from chatcore.errors import ChatError, ErrorCode
from chatcore.interfaces import Storage
from chatcore.models import Message, Room, Stored
from chatcore.protocol.frames import message_event
from chatcore.server.contacts import NOT_ACCEPTED, YOU_BLOCKED
from chatcore.testing.storage_contract.base import (
    ContractBase,
    created,
    draft,
    gather,
    make_users,
    seqs,
    store,
)


class MessagesContract(ContractBase):
    """Storing, reading, editing and deleting messages: `MessageStorage`."""

    # --- storing messages ----------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_store_gives_gapless_seqs_in_draft_order(self, storage: Storage) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        room, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=1)
        first = await store(
            storage,
            draft(room, alice, "t", body="hello", ts=100),
            draft(room, bob, "m", kind="media", body="", media_id="media-1", ts=101),
            draft(room, alice, "s", kind="sticker", body="", sticker_id="st-1", ts=102),
        )
        assert seqs(first) == [1, 2, 3]
        assert len({m.id for m in first}) == 3
        text, media, sticker = first
        assert (text.room_id, text.sender_id, text.ref, text.kind, text.body, text.ts) == (
            room.id,
            alice.id,
            "t",
            "text",
            "hello",
            100,
        )
        assert (text.edited_ts, text.deleted, text.reply_to, text.media_id) == (
            None,
            False,
            None,
            None,
        )
        assert (media.kind, media.media_id, media.sender_id) == ("media", "media-1", bob.id)
        assert (sticker.kind, sticker.sticker_id) == ("sticker", "st-1")
        reply = await store(storage, draft(room, bob, "r", reply_to=text.id, ts=200))
        assert seqs(reply) == [4] and reply[0].reply_to == text.id
        assert await storage.messages_after(room.id, 0, 10) == [*first, *reply]
        for message in [*first, *reply]:
            assert await storage.get_message(room.id, message.id) == message
        after = await storage.get_room(room.id)
        assert after is not None and (after.last_seq, after.last_ts) == (4, 200)
        assert await storage.store_messages([]) == []

    @pytest.mark.anyio
    async def test_messages_returned_are_plain_models_on_the_wire(self, storage: Storage) -> None:
        """Every way a message comes back (stored, repeated, read, listed) gives a Message
        equal to its validated copy, whose `message` event is what the contract shows: the
        fields as JSON, those that are None left out."""
        alice, bob = await make_users(storage, "alice", "bob")
        room, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=1)
        (text,) = await store(storage, draft(room, alice, "t", body="héllo", ts=5))
        (media,) = await store(storage, draft(room, bob, "m", kind="media", media_id="md", ts=6))
        (reply,) = await store(storage, draft(room, bob, "r", reply_to=text.id, ts=7))
        deleted = await storage.delete_message(room.id, media.id, now_ts=8)
        edited = await storage.edit_message(room.id, text.id, "edited", now_ts=9)
        (again,) = await storage.store_messages([draft(room, bob, "r")])
        view = await storage.room_view(room.id, alice.id)
        assert view is not None and view.last_message is not None
        found = [
            text,
            media,
            reply,
            deleted,
            edited,
            again.message if isinstance(again, Stored) else None,
            view.last_message,
            *await storage.messages_after(room.id, 0, 10),
            *await storage.messages_before(room.id, None, 10),
            *await storage.updated_since(room.id, 0, 10),
            await storage.get_message(room.id, reply.id),
            await storage.find_message_by_ref(bob.id, room.id, "m"),
        ]
        for message in found:
            assert isinstance(message, Message)
            validated = Message.model_validate(message.model_dump())
            assert message == validated and message.model_fields_set == validated.model_fields_set
            shown = orjson.loads(message_event(message))["message"]
            assert shown == validated.model_dump(mode="json", exclude_none=True)
            assert list(shown) == list(validated.model_dump(exclude_none=True))  # same order
            assert shown["deleted"] is message.deleted and type(message.deleted) is bool
        assert deleted is not None and deleted.deleted and "media_id" not in deleted.wire()
        assert edited is not None and edited.wire()["edited_ts"] == 9

    @pytest.mark.anyio
    async def test_same_key_in_one_batch_stores_one_message(self, storage: Storage) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        room, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=1)
        results = await storage.store_messages(
            [
                draft(room, alice, "k", body="first"),
                draft(room, alice, "k", body="second"),  # same key: the first's message
                draft(room, bob, "k", body="bob's"),  # another sender: another key
                draft(room, alice, "k2", body="next"),
            ]
        )
        assert all(isinstance(r, Stored) for r in results), results
        first, again, bobs, nxt = (r for r in results if isinstance(r, Stored))
        assert first.created and not again.created and bobs.created and nxt.created
        assert again.message == first.message and again.message.body == "first"
        assert (first.message.seq, bobs.message.seq, nxt.message.seq) == (1, 2, 3)  # no gap
        assert seqs(await storage.messages_after(room.id, 0, 10)) == [1, 2, 3]

    @pytest.mark.anyio
    async def test_same_key_again_returns_the_stored_message(self, storage: Storage) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        room, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=1)
        other = await storage.create_group_room(alice.id, "other", [], now_ts=1)
        (original,) = await store(storage, draft(room, alice, "k", body="original", ts=10))
        repeat = await storage.store_messages(
            [draft(room, alice, "k", body="changed", kind="sticker", sticker_id="x", ts=20)]
        )
        assert repeat == [Stored(message=original, created=False)]  # unchanged, whatever sent
        assert await storage.find_message_by_ref(alice.id, room.id, "k") == original
        assert await storage.find_message_by_ref(bob.id, room.id, "k") is None
        assert await storage.find_message_by_ref(alice.id, other.id, "k") is None
        # The same ref in another room is another key.
        (elsewhere,) = await store(storage, draft(other, alice, "k"))
        assert elsewhere.id != original.id and elsewhere.seq == 1
        after = await storage.get_room(room.id)
        assert after is not None and (after.last_seq, after.last_ts) == (1, 10)

    @pytest.mark.anyio
    async def test_refused_drafts_write_nothing_and_use_no_seq(self, storage: Storage) -> None:
        alice, bob, mallory = await make_users(storage, "alice", "bob", "mallory")
        room, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=1)
        other, _ = await storage.create_direct_room(alice.id, mallory.id, now_ts=1)
        (foreign,) = await store(storage, draft(other, alice, "elsewhere"))
        results = await storage.store_messages(
            [
                draft(room, alice, "ok1"),
                draft(room, mallory, "intruder"),  # not a member
                draft(room, bob, "ok2"),
                draft("no-such-room", alice, "lost"),
                draft(room, bob, "bad-reply", reply_to=foreign.id),  # another room's message
                draft(room, bob, "no-reply", reply_to="no-such-message"),
                draft(room, alice, "ok3"),
            ]
        )
        codes = [r.code if isinstance(r, ChatError) else r.message.seq for r in results]
        assert codes == [
            1,
            ErrorCode.NOT_FOUND,
            2,
            ErrorCode.NOT_FOUND,
            ErrorCode.BAD_REQUEST,
            ErrorCode.BAD_REQUEST,
            3,
        ]
        assert all(isinstance(r, Stored) and r.created for r in results[::2][:2]), results
        assert [m.ref for m in await storage.messages_after(room.id, 0, 10)] == [
            "ok1",
            "ok2",
            "ok3",
        ]
        # A refused send does not use up its ref.
        assert await storage.find_message_by_ref(bob.id, room.id, "bad-reply") is None
        (fixed,) = await store(storage, draft(room, bob, "bad-reply"))
        assert fixed.seq == 4
        # Membership is checked when storing: someone who left can no longer send.
        group = await storage.create_group_room(alice.id, "g", [bob.id], now_ts=1)
        await storage.remove_member(group.id, bob.id)
        (refused,) = await storage.store_messages([draft(group, bob, "late")])
        assert isinstance(refused, ChatError) and refused.code is ErrorCode.NOT_FOUND

    @pytest.mark.anyio
    async def test_a_batch_across_rooms_judges_each_draft_as_if_alone(
        self, storage: Storage
    ) -> None:
        """Drafts for several rooms, interleaved, with retries, replies, blocks and refusals:
        each answered as a batch of its own would be, each room's seqs gapless in draft order;
        the same batch again answers every stored draft with its message."""
        alice, bob, carol = await make_users(storage, "alice", "bob", "carol")
        direct, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=1)
        blocked, _ = await storage.create_direct_room(alice.id, carol.id, now_ts=1)
        group = await storage.create_group_room(alice.id, "g", [bob.id, carol.id], now_ts=1)
        (earlier,) = await store(storage, draft(direct, alice, "earlier", ts=2))
        (in_group,) = await store(storage, draft(group, carol, "earlier", ts=3))
        await storage.block(carol.id, alice.id, now_ts=4)
        batch = [
            draft(direct, alice, "x", reply_to=earlier.id, ts=10),
            draft(group, bob, "x", kind="media", body="", media_id="md", ts=11),
            draft(blocked, alice, "x"),  # carol blocks alice: alice is only "not accepted"
            draft(group, carol, "y", reply_to=earlier.id),  # another room's message
            draft(direct, alice, "earlier", body="again"),  # a retry: the original
            draft(group, alice, "z", reply_to=in_group.id, ts=12),
            draft(direct, bob, "x", kind="sticker", body="", sticker_id="st", ts=13),
            draft(blocked, carol, "y"),  # the blocker: told why
            draft(direct, alice, "x", body="twice"),  # the first draft's key
            draft("no-such-room", alice, "x"),
            draft(group, alice, "r" * 129),  # too long a ref
        ]
        results = await storage.store_messages(batch)
        answers = [
            r.code if isinstance(r, ChatError) else (r.message.seq, r.created) for r in results
        ]
        assert answers == [
            (2, True),
            (2, True),
            ErrorCode.FORBIDDEN,
            ErrorCode.BAD_REQUEST,
            (1, False),
            (3, True),
            (3, True),
            ErrorCode.FORBIDDEN,
            (2, False),
            ErrorCode.NOT_FOUND,
            ErrorCode.BAD_REQUEST,
        ]
        said = [r.message for r in results if isinstance(r, ChatError)][:3:2]
        assert said == [NOT_ACCEPTED, YOU_BLOCKED]
        stored = [r.message for r in results if isinstance(r, Stored)]
        assert stored[2] == earlier and stored[5] == stored[0]
        d1, g1, g2, d2 = stored[0], stored[1], stored[3], stored[4]
        assert (d1.reply_to, d1.body, d1.ts, d2.sticker_id, d2.kind) == (
            earlier.id,
            "body of x",
            10,
            "st",
            "sticker",
        )
        assert (g1.media_id, g1.body, g1.sender_id, g2.reply_to) == ("md", "", bob.id, in_group.id)
        assert await storage.messages_after(direct.id, 0, 10) == [earlier, d1, d2]
        assert await storage.messages_after(group.id, 0, 10) == [in_group, g1, g2]
        assert await storage.messages_after(blocked.id, 0, 10) == []
        rooms = [await storage.get_room(room.id) for room in (direct, group, blocked)]
        assert [(r.last_seq, r.last_ts) for r in rooms if r is not None] == [
            (3, 13),
            (3, 12),
            (0, 1),
        ]
        again = await storage.store_messages(batch)
        assert [r.message for r in again if isinstance(r, Stored)] == [
            d1,
            g1,
            earlier,
            g2,
            d2,
            d1,
        ]
        assert not any(r.created for r in again if isinstance(r, Stored))
        assert [r.code for r in again if isinstance(r, ChatError)] == [
            ErrorCode.FORBIDDEN,
            ErrorCode.BAD_REQUEST,
            ErrorCode.FORBIDDEN,
            ErrorCode.NOT_FOUND,
            ErrorCode.BAD_REQUEST,
        ]

    @pytest.mark.anyio
    async def test_concurrent_batches_keep_seqs_gapless(self, storage: Storage) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        room = await storage.create_group_room(alice.id, "busy", [bob.id], now_ts=1)
        batches = [
            [draft(room, (alice, bob)[(b + i) % 2], f"{b}-{i}") for i in range(5)]
            for b in range(20)
        ]
        results = await gather(*(storage.store_messages(batch) for batch in batches))
        answers = [created(r) for r in results]  # raises on an exception or a refusal
        for answer in answers:  # one batch's messages in its draft order
            assert seqs(answer) == sorted(seqs(answer))
        assert sorted(s for answer in answers for s in seqs(answer)) == list(range(1, 101))
        history = await storage.messages_after(room.id, 0, 500)
        assert seqs(history) == list(range(1, 101))
        assert {m.id for m in history} == {m.id for answer in answers for m in answer}
        after = await storage.get_room(room.id)
        assert after is not None and after.last_seq == 100

    @pytest.mark.anyio
    async def test_two_nodes_writing_one_room_keep_seqs_gapless(
        self, storage: Storage, other_node: Storage
    ) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        room = await other_node.create_group_room(alice.id, "busy", [bob.id], now_ts=1)
        nodes = (storage, other_node)
        calls = [
            nodes[b % 2].store_messages(
                [draft(room, (alice, bob)[i % 2], f"{b}-{i}") for i in range(5)]
            )
            for b in range(16)
        ]
        answers = [created(r) for r in await gather(*calls)]
        assert sorted(s for answer in answers for s in seqs(answer)) == list(range(1, 81))
        for node in nodes:
            assert seqs(await node.messages_after(room.id, 0, 500)) == list(range(1, 81))
            assert (await node.room_seqs(alice.id))[room.id] == 80

    @pytest.mark.anyio
    async def test_one_key_sent_concurrently_is_stored_once(self, storage: Storage) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        room, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=1)
        keys = [f"k{i}" for i in range(6)]
        calls = [
            storage.store_messages([draft(room, alice, key, body=f"try {n}")])
            for key in keys
            for n in range(3)
        ]
        await self._check_stored_once(storage, room, keys, await gather(*calls))

    @pytest.mark.anyio
    async def test_one_key_sent_to_two_nodes_at_once_is_stored_once(
        self, storage: Storage, other_node: Storage
    ) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        room, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=1)
        keys = [f"k{i}" for i in range(6)]
        calls = [
            node.store_messages([draft(room, alice, key, body=f"via node {n}")])
            for key in keys
            for n, node in enumerate((storage, other_node, storage))
        ]
        await self._check_stored_once(other_node, room, keys, await gather(*calls))

    async def _check_stored_once(
        self, storage: Storage, room: Room, keys: list[str], results: list[Any]
    ) -> None:
        """`results` holds, key after key, the answers to sending each key several times."""
        per_key = len(results) // len(keys)
        for k, key in enumerate(keys):
            answers = results[k * per_key : (k + 1) * per_key]
            assert all(isinstance(a, list) and isinstance(a[0], Stored) for a in answers), answers
            outcomes = [a[0] for a in answers]
            assert sorted(o.created for o in outcomes) == [False] * (per_key - 1) + [True]
            assert len({(o.message.id, o.message.seq, o.message.body) for o in outcomes}) == 1
            assert outcomes[0].message.ref == key
        history = await storage.messages_after(room.id, 0, 100)
        assert seqs(history) == list(range(1, len(keys) + 1))  # no seq burnt by a repeat
        assert sorted(m.ref for m in history) == keys

    # --- reading, editing and deleting -----------------------------------------------------------

    @pytest.mark.anyio
    async def test_history_pages(self, storage: Storage) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        room, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=1)
        noise = await storage.create_group_room(alice.id, "noise", [], now_ts=1)
        await store(storage, *(draft(room, alice, f"m{i}") for i in range(10)))
        await store(storage, *(draft(noise, alice, f"n{i}") for i in range(3)))

        async def after(seq: int, limit: int) -> list[int]:
            return seqs(await storage.messages_after(room.id, seq, limit))

        async def before(seq: int | None, limit: int) -> list[int]:
            return seqs(await storage.messages_before(room.id, seq, limit))

        assert await after(0, 3) == [1, 2, 3]  # oldest first
        assert await after(3, 3) == [4, 5, 6]
        assert await after(8, 5) == [9, 10]
        assert await after(10, 5) == []
        assert await after(-5, 2) == [1, 2]
        assert await after(0, 0) == []
        assert await after(0, 100) == list(range(1, 11))
        assert await before(None, 3) == [10, 9, 8]  # newest first
        assert await before(8, 3) == [7, 6, 5]
        assert await before(3, 5) == [2, 1]
        assert await before(1, 5) == []
        assert await before(100, 2) == [10, 9]
        assert await before(None, 0) == []
        assert [m.room_id for m in await storage.messages_after(room.id, 0, 100)] == [room.id] * 10

    @pytest.mark.anyio
    async def test_get_message_belongs_to_its_room(self, storage: Storage) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        room, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=1)
        other = await storage.create_group_room(alice.id, "other", [], now_ts=1)
        (message,) = await store(storage, draft(room, alice, "m"))
        assert await storage.get_message(room.id, message.id) == message
        assert await storage.get_message(other.id, message.id) is None
        assert await storage.get_message(room.id, "no-such-message") is None

    @pytest.mark.anyio
    async def test_edit_message(self, storage: Storage) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        room, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=1)
        other = await storage.create_group_room(alice.id, "other", [], now_ts=1)
        (message, keep) = await store(storage, draft(room, alice, "m"), draft(room, bob, "k"))
        edited = await storage.edit_message(room.id, message.id, "fixed", now_ts=1_000)
        assert edited == message.model_copy(update={"body": "fixed", "edited_ts": 1_000})
        assert await storage.get_message(room.id, message.id) == edited
        again = await storage.edit_message(room.id, message.id, "fixed twice", now_ts=2_000)
        assert again is not None and (again.body, again.edited_ts) == ("fixed twice", 2_000)
        assert await storage.get_message(room.id, keep.id) == keep  # only that one changed
        assert await storage.edit_message(other.id, message.id, "x", now_ts=3_000) is None
        assert await storage.edit_message(room.id, "no-such-message", "x", now_ts=3_000) is None
        await storage.delete_message(room.id, message.id, now_ts=4_000)
        assert await storage.edit_message(room.id, message.id, "x", now_ts=5_000) is None
        found = await storage.get_message(room.id, message.id)
        assert found is not None and (found.body, found.deleted) == ("", True)

    @pytest.mark.anyio
    async def test_delete_message_keeps_its_seq_and_clears_its_content(
        self, storage: Storage
    ) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        room, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=1)
        (text, media, sticker) = await store(
            storage,
            draft(room, alice, "t", body="secret"),
            draft(room, alice, "m", kind="media", body="caption", media_id="media-1"),
            draft(room, alice, "s", kind="sticker", sticker_id="st-1"),
        )
        for message in (text, media, sticker):
            deleted = await storage.delete_message(room.id, message.id, now_ts=1_000)
            assert deleted == message.model_copy(
                update={"body": "", "media_id": None, "sticker_id": None, "deleted": True}
            )
            assert await storage.get_message(room.id, message.id) == deleted
            # Deleting twice answers the deleted message.
            assert await storage.delete_message(room.id, message.id, now_ts=2_000) == deleted
        assert seqs(await storage.messages_after(room.id, 0, 10)) == [1, 2, 3]
        assert await storage.delete_message(room.id, "no-such-message", now_ts=1) is None
        # Its key stays used: a repeat answers the deleted message.
        repeat = await storage.store_messages([draft(room, alice, "t", body="secret")])
        assert isinstance(repeat[0], Stored) and repeat[0].created is False
        assert repeat[0].message.deleted is True and repeat[0].message.body == ""
        view = await storage.room_view(room.id, alice.id)
        assert view is not None and view.last_message is not None
        assert (view.last_message.seq, view.last_message.deleted) == (3, True)

    @pytest.mark.anyio
    async def test_updated_since(self, storage: Storage) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        room, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=1)
        other = await storage.create_group_room(alice.id, "other", [], now_ts=1)
        sent = await store(storage, *(draft(room, alice, f"m{i}") for i in range(6)))
        (elsewhere,) = await store(storage, draft(other, alice, "o"))
        await storage.edit_message(room.id, sent[1].id, "edited", now_ts=1_000)  # seq 2
        await storage.delete_message(room.id, sent[3].id, now_ts=2_000)  # seq 4
        await storage.edit_message(room.id, sent[4].id, "edited", now_ts=3_000)  # seq 5
        await storage.edit_message(other.id, elsewhere.id, "edited", now_ts=3_000)

        async def updated(since_ts: int, max_seq: int) -> list[int]:
            return seqs(await storage.updated_since(room.id, since_ts, max_seq))

        assert await updated(0, 100) == [2, 4, 5]  # in seq order; untouched ones never
        assert await updated(999, 100) == [2, 4, 5]
        assert await updated(1_000, 100) == [4, 5]  # after since_ts, not at it
        assert await updated(0, 4) == [2, 4]  # at most max_seq
        assert await updated(3_000, 100) == []
        found = await storage.updated_since(room.id, 0, 100)
        assert [(m.body, m.deleted) for m in found] == [
            ("edited", False),
            ("", True),
            ("edited", False),
        ]
        # Deleting an edited message later shows it once, as deleted.
        await storage.delete_message(room.id, sent[1].id, now_ts=4_000)
        assert await updated(3_500, 100) == [2]
