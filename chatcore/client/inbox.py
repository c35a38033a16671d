"""Storing the messages that reach the device, then announcing them.

Live events, catch-up batches, acks and REST answers all end here: the messages are written to
the device store in one `add_messages` call (keyed by room and seq, so a message that arrives
twice is stored once), and only then announced. Each newly stored message is a
`MessageReceived`; an outbox entry the store removed because its message is now stored is an
`OutboxChanged(sent)`, announced just before its `MessageReceived`. Whoever waits for one of
the user's own refs (`Client.wait_sent`) gets the message even when it was stored before.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Container, Iterable, Sequence

from chatcore.client.api import Api
from chatcore.client.errors import ApiError, ApiUnavailable
from chatcore.client.events import MessageReceived, RoomChanged
from chatcore.client.interfaces import DeviceStore
from chatcore.client.models import Message
from chatcore.client.outbox import Outbox
from chatcore.client.stream import EventStream

__all__ = ["Inbox"]

log = logging.getLogger(__name__)

#: Messages remembered as stored (by room and seq), the newest.
REMEMBERED_MESSAGES = 10_000


class Inbox:
    """Writes arriving messages to the device store and announces what it stored.

    It remembers the rooms it saw in the store and the messages it stored lately, so that a
    message that arrives twice (its ack, then its own event) costs no second write, and a
    busy room no read per message. `forget` drops that memory: whenever the store may have
    dropped rooms or messages (a room forgotten, another account).
    """

    def __init__(
        self,
        store: DeviceStore,
        api: Api,
        stream: EventStream,
        outbox: Outbox,
        me: Callable[[], str],
    ) -> None:
        self.store = store
        self.api = api
        self.stream = stream
        self.outbox = outbox
        self._me = me
        self._rooms: set[str] = set()
        self._stored: OrderedDict[tuple[str, int], None] = OrderedDict()

    def forget(self) -> None:
        """The store may have dropped rooms or messages: trust nothing remembered."""
        self._rooms.clear()
        self._stored.clear()

    async def add(
        self, messages: Sequence[Message], *, live: bool, live_ids: Container[str] = ()
    ) -> None:
        """Store `messages` (rooms the device does not know yet are fetched first), announce
        the new ones in the order given, as live when `live` or when their id is in
        `live_ids`."""
        seen: set[tuple[str, int]] = set()
        unique: list[Message] = []
        for message in messages:  # the first of each (room, seq) not stored lately, in order
            key = (message.room_id, message.seq)
            if key not in seen and key not in self._stored:
                seen.add(key)
                unique.append(message)
        me = self._me()
        if unique:
            await self.ensure_rooms({m.room_id for m in unique})
            batch = await self.store.add_messages(unique, me)
            self._remember(unique)
            acked = {message.id: (entry, message) for entry, message in batch.acked}
            for message in batch.new:
                pair = acked.pop(message.id, None)
                if pair is not None:
                    self.outbox.acked([pair])
                is_live = live or message.id in live_ids
                self.stream.publish(MessageReceived(message, live=is_live))
            self.outbox.acked(list(acked.values()))
        for message in messages:
            if message.sender_id == me:
                self.outbox.resolve(message)

    def _remember(self, messages: Sequence[Message]) -> None:
        for message in messages:
            self._stored[(message.room_id, message.seq)] = None
        while len(self._stored) > REMEMBERED_MESSAGES:
            self._stored.popitem(last=False)

    async def ensure_rooms(self, room_ids: Iterable[str]) -> None:
        """Fetch and save the rooms the device store does not hold yet (a room made while
        its `room` event was on the way). Without an answer, the store keeps the messages
        under a room it knows only by id, completed at the next connect."""
        for room_id in sorted(set(room_ids) - self._rooms):
            if await self.store.get_room(room_id) is None:
                try:
                    room = await self.api.room(room_id)
                except (ApiError, ApiUnavailable) as exc:
                    log.info("room %s unknown on the device, not fetched: %s", room_id, exc)
                    continue
                await self.store.save_rooms([room])
                self.stream.publish(RoomChanged(room))
            self._rooms.add(room_id)
