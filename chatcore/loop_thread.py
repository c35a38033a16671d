"""An event loop of its own, in a thread: for work that must not queue on the server's loop.

The server's loop serves every session; work that comes in floods (a batch's database round
trips, a thousand pushes) would wait for its turns there, and make everything else wait for
its own. On a second loop it runs at its own pace; the interpreter lock's switch interval
shares the CPU between the two, so neither starves the other.

    thread = LoopThread("chatcore-push")
    await thread.start()
    result = await thread.call(some_coroutine())   # runs there, awaited here
    thread.call_soon(callback)                       # from any thread
    await thread.close()
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["LoopThread", "call_on"]


async def call_on(loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` on `loop` (another thread's); await its result on the running loop."""
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, loop))


class LoopThread:
    """An event loop running in a daemon thread of its own (see the module docstring)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError(f"{self.name}: the loop thread is not started")
        return self._loop

    async def start(self) -> None:
        # Made here, not in __init__: a loop made and never run or closed warns when collected.
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=self.name, daemon=True)
        self._thread.start()

    async def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` on this thread's loop; await it from the caller's."""
        return await call_on(self.loop, coroutine)

    def call_soon(self, callback: Callable[[], Any]) -> None:
        """Call `callback` on this thread's loop (safe from any thread)."""
        self.loop.call_soon_threadsafe(callback)

    async def close(self) -> None:
        """Stop the loop and its thread (what runs there should be finished first)."""
        loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join)
        loop.close()
