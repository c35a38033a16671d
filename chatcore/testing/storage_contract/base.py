"""What the storage contract's area modules share: helpers that build users, drafts and
devices, and `ContractBase`, the fixtures every area class needs."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import anyio
import pytest

from chatcore.errors import ChatError
from chatcore.interfaces import Storage
from chatcore.models import Device, Draft, Message, QueuedPush, Room, Stored, User, WebPushKeys

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"  # the stored form of some password
FAR = 10**13  # an expiry far in the future (ms)


async def make_user(storage: Storage, username: str, display_name: str | None = None) -> User:
    return await storage.create_user(username, HASH, display_name or username)


async def gather(*calls: Any) -> list[Any]:
    """Run coroutines concurrently; return each one's result or the exception it raised."""
    results: list[Any] = [None] * len(calls)

    async def run(i: int, call: Any) -> None:
        try:
            results[i] = await call
        except Exception as exc:
            results[i] = exc

    async with anyio.create_task_group() as tg:
        for i, call in enumerate(calls):
            tg.start_soon(run, i, call)
    return results


async def make_users(storage: Storage, *names: str) -> list[User]:
    return [await make_user(storage, name) for name in names]


def draft(room: Room | str, sender: User | str, ref: str, **fields: Any) -> Draft:
    """A text draft (`fields` override kind, body, media_id, sticker_id, reply_to, ts)."""
    return Draft(
        room_id=room if isinstance(room, str) else room.id,
        sender_id=sender if isinstance(sender, str) else sender.id,
        ref=ref,
        **{"body": f"body of {ref}", "ts": 5_000, **fields},
    )


def created(results: Sequence[Stored | ChatError]) -> list[Message]:
    """The messages of a store_messages answer, each of which must be newly created."""
    assert not isinstance(results, BaseException), results  # an answer, not a raised error
    assert all(isinstance(r, Stored) and r.created for r in results), results
    return [r.message for r in results if isinstance(r, Stored)]


async def store(storage: Storage, *drafts: Draft) -> list[Message]:
    """Store drafts in one batch; every one must be created."""
    return created(await storage.store_messages(drafts))


def seqs(found: Sequence[Message]) -> list[int]:
    return [m.seq for m in found]


#: Web Push keys of the right sizes (65 and 16 bytes, base64url).
KEYS = WebPushKeys(p256dh="B" + "A" * 86, auth="A" * 22)
_device_ids = itertools.count()


_push_ids = itertools.count()


def queued(target: Device | str, due_ts: int, **push: Any) -> QueuedPush:
    """A push for a device (or a device id), due at `due_ts`."""
    device_id = target if isinstance(target, str) else target.id
    body = {"type": "message", "room_id": "r", "message_id": "m", "seq": 1, **push}
    return QueuedPush(
        id=f"push{next(_push_ids):028d}",
        device_id=device_id,
        push=body,
        due_ts=due_ts,
        created_ts=1,
    )


def device(user: User | str, platform: Any, ts: int = 1_000, **fields: Any) -> Device:
    """A new Device of `user` (`fields`: token, endpoint, keys)."""
    return Device(
        id=f"device{next(_device_ids):026d}",
        user_id=user if isinstance(user, str) else user.id,
        platform=platform,
        created_ts=ts,
        **fields,
    )


class ContractBase:
    """The fixtures of every area's class; subclasses provide `storage` (and `other_node`)."""

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    @pytest.fixture
    def other_node(self) -> Storage:
        """A second started storage on the same data as `storage` (another server node)."""
        pytest.skip("this backend provides no second node on the same data (other_node)")
