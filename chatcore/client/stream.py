"""The client's event stream: one ordered sequence of events, to every subscriber and plugin.

`publish(event)` never waits: it appends the event to the queue of every `events()` iterator
alive (each an unbounded `asyncio.Queue` of its own, so a slow reader delays nobody else) and
to the queue of one dispatcher task, which awaits the `chatcore_client_event` hook for each
event in turn. A failing hook implementation is logged and the stream goes on.

An iterator ends once the client closes (after the events queued before that); leaving its
`async for` unsubscribes it (the subscription is held weakly: an iterator nobody references
any more receives nothing). It subscribes when it is made, not at its first `__anext__`, so
`it = client.events()` followed by an action sees every event the action causes.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from chatcore.client.events import ClientEvent

__all__ = ["EventStream", "Subscription"]

log = logging.getLogger(__name__)

#: How long closing waits for the hook to see the events published before.
DRAIN_SECONDS = 10.0
#: What a queue holds after the last event: the stream has ended.
_END: Any = object()

Dispatch = Callable[[ClientEvent], Awaitable[None]]


class Subscription:
    """An async iterator over the events published from its creation until the stream ends."""

    def __init__(self, stream: EventStream) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._done = False
        stream._subscribe(self)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> ClientEvent:
        if self._done:
            raise StopAsyncIteration
        event = await self._queue.get()
        if event is _END:
            self._done = True
            raise StopAsyncIteration
        return event  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        """Stop receiving events (the iterator then ends)."""
        self._done = True

    def _put(self, event: Any) -> None:
        if not self._done:
            self._queue.put_nowait(event)


class EventStream:
    """Publishes events to `Subscription`s and, through `dispatch`, to the plugins' hook."""

    def __init__(self, dispatch: Dispatch) -> None:
        self._dispatch = dispatch
        self._subscribers: weakref.WeakSet[Subscription] = weakref.WeakSet()
        self._hook_queue: asyncio.Queue[Any] = asyncio.Queue()
        self._dispatcher: asyncio.Task[None] | None = None
        self._ended = False

    def start(self) -> None:
        """Start the task that hands events to the hook (events published before are kept)."""
        if self._dispatcher is None:
            self._ended = False
            self._dispatcher = asyncio.create_task(self._run_dispatcher(), name="client-events")

    async def close(self) -> None:
        """End every subscription and let the hook see the events already published."""
        if self._ended:
            return
        self._ended = True
        for subscription in list(self._subscribers):
            subscription._put(_END)
        self._hook_queue.put_nowait(_END)
        dispatcher, self._dispatcher = self._dispatcher, None
        if dispatcher is None or dispatcher is asyncio.current_task():
            return  # a hook that closes the client: its own events end with it
        done, _ = await asyncio.wait([dispatcher], timeout=DRAIN_SECONDS)
        if not done:
            log.warning("the chatcore_client_event hook is still busy after %ss", DRAIN_SECONDS)
            dispatcher.cancel()
            await asyncio.gather(dispatcher, return_exceptions=True)

    @property
    def subscribers(self) -> int:
        """How many iterators receive events now."""
        return len(self._subscribers)

    def subscribe(self) -> Subscription:
        """A new iterator over the events from now on (it ends at once when the stream has)."""
        return Subscription(self)

    def _subscribe(self, subscription: Subscription) -> None:
        if self._ended:
            subscription._put(_END)
        else:
            self._subscribers.add(subscription)

    def publish(self, event: ClientEvent) -> None:
        """Deliver `event` to every subscriber and to the hook, in publishing order."""
        if self._ended:
            log.debug("event after the client closed, dropped: %r", event)
            return
        for subscription in list(self._subscribers):
            subscription._put(event)
        self._hook_queue.put_nowait(event)

    async def _run_dispatcher(self) -> None:
        while True:
            event = await self._hook_queue.get()
            if event is _END:
                return
            try:
                await self._dispatch(event)
            except Exception:  # the dispatch logs each plugin's failure; this is a last guard
                log.exception("dispatching %s failed", type(event).__name__)
