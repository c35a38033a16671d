"""How senders hear back from the group commit (`chatcore.server.writer`): every reply after its
batch is stored and published, in the order the sends were queued, with the message's encoding
when the batch created it; a failing batch answers every sender; one broken reply spoils no
other. And a session's acks (`chatcore.server.realtime.session`) follow those replies."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from chatcore.errors import ChatError, ErrorCode
from chatcore.models import Draft, Message, Stored
from chatcore.protocol.frames import encode, message_json
from chatcore.server.realtime.session import Session
from chatcore.server.writer import MessageWriter

pytestmark = pytest.mark.anyio

WAIT = 5.0


def draft(n: int, room: str = "room-1") -> Draft:
    return Draft(room_id=room, sender_id="u-1", ref=f"r{n}", body=f"message {n}", ts=n)


class FakeStorage:
    """Stores drafts in memory: refs starting with "dup" were stored before, "bad" is refused;
    `fail` makes the whole batch fail."""

    def __init__(self) -> None:
        self.seq = 0
        self.fail = False
        self.log: list[str] = []

    async def store_messages(self, drafts: Sequence[Draft]) -> list[Stored | ChatError]:
        await asyncio.sleep(0)  # a commit takes a turn of the loop at least
        if self.fail:
            raise OSError("disk gone")
        results: list[Stored | ChatError] = []
        for d in drafts:
            self.log.append(f"stored {d.ref}")
            if d.ref.startswith("bad"):
                results.append(ChatError(ErrorCode.NOT_FOUND, "This room is not visible to you."))
                continue
            self.seq += 1
            message = Message(id=f"m{self.seq}", seq=self.seq, **d.model_dump())
            results.append(Stored(message=message, created=not d.ref.startswith("dup")))
        return results


@pytest.fixture
async def setup() -> Any:
    storage = FakeStorage()

    async def publish(created: Sequence[Stored]) -> list[bytes]:
        storage.log.extend(f"published {s.message.ref}" for s in created)
        return [message_json(s.message) for s in created]

    writer = MessageWriter(storage, publish)  # type: ignore[arg-type]
    await writer.start()
    yield storage, writer
    await writer.close()


async def test_replies_come_after_the_commit_and_publish_in_queue_order(setup: Any) -> None:
    storage, writer = setup
    replies: list[tuple[str, Stored | ChatError, bytes | None]] = []
    everyone = asyncio.Event()

    def reply(ref: str) -> Any:
        def answer(result: Stored | ChatError, encoded: bytes | None) -> None:
            storage.log.append(f"replied {ref}")
            replies.append((ref, result, encoded))
            if len(replies) == 4:
                everyone.set()

        return answer

    for ref in ("r1", "dup2", "bad3", "r4"):
        writer.enqueue_reply(
            Draft(room_id="room-1", sender_id="u", ref=ref, body="b", ts=1), reply(ref)
        )
    await asyncio.wait_for(everyone.wait(), WAIT)

    assert [ref for ref, _, _ in replies] == ["r1", "dup2", "bad3", "r4"]
    first_reply = storage.log.index("replied r1")
    assert storage.log.index("published r4") < first_reply, "replies follow the publish"
    (_, created, encoded), (_, repeated, none), (_, refused, _), _ = replies
    assert isinstance(created, Stored) and encoded == message_json(created.message)
    assert isinstance(repeated, Stored) and not repeated.created and none is None
    assert isinstance(refused, ChatError) and refused.code is ErrorCode.NOT_FOUND


async def test_a_failed_batch_answers_every_sender_unavailable(setup: Any) -> None:
    storage, writer = setup
    storage.fail = True
    futures = [writer.enqueue(draft(n)) for n in range(3)]
    for future in futures:
        with pytest.raises(ChatError) as caught:
            await asyncio.wait_for(future, WAIT)
        assert caught.value.code is ErrorCode.UNAVAILABLE


async def test_a_reply_that_raises_spoils_no_other(setup: Any) -> None:
    _, writer = setup

    def broken(result: Stored | ChatError, encoded: bytes | None) -> None:
        raise RuntimeError("a bug in one sender's reply")

    writer.enqueue_reply(draft(1), broken)
    stored = await asyncio.wait_for(writer.enqueue(draft(2)), WAIT)
    assert stored.created and stored.message.ref == "r2"
    assert (await asyncio.wait_for(writer.submit(draft(3)), WAIT)).message.ref == "r3"


def test_a_trusted_draft_equals_the_validated_one() -> None:
    values = {
        "room_id": "room-1",
        "sender_id": "u-1",
        "ref": "r-1",
        "kind": "media",
        "body": "",
        "media_id": "media-1",
        "sticker_id": None,
        "reply_to": "m-0",
        "ts": 5,
    }
    trusted, validated = Draft.trusted(dict(values)), Draft(**values)
    assert trusted == validated
    assert trusted.wire() == validated.wire()
    assert trusted.model_dump() == validated.model_dump()


class RecordingConnection:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send(self, data: bytes) -> None:
        self.sent.append(data)


async def test_a_sessions_acks_follow_its_sends_and_drain_waits_for_them(setup: Any) -> None:
    _, writer = setup
    conn = RecordingConnection()
    session = Session(SimpleNamespace(writer=writer), conn)  # type: ignore[arg-type]
    for ref in ("r1", "dup2", "bad3"):
        session.commit(ref, Draft(room_id="room-1", sender_id="u", ref=ref, body="b", ts=1))
    assert conn.sent == [], "no ack before its commit"
    await asyncio.wait_for(session.drain(), WAIT)

    events = [orjson.loads(data) for data in conn.sent]
    assert [e["type"] for e in events] == ["ack", "ack", "error"]
    assert [e["ref"] for e in events] == ["r1", "dup2", "bad3"]
    assert events[2]["code"] == "not_found"
    # The ack reusing the published encoding is the ack encoded from scratch.
    first = events[0]["message"]
    assert conn.sent[0] == encode({"type": "ack", "ref": "r1", "message": first})
    await asyncio.wait_for(session.drain(), WAIT)  # nothing pending: returns at once
