"""Whom each user is blocked with (either way), kept in memory for the fan-out.

Typing and read receipts never cross a block, in any room (see `chatcore.server.contacts`), and the
fan-out reads no storage per event: the node where such an event starts puts the ids its author
is blocked with in the envelope (`Hub.publish_room(hide_from=...)`), and every node leaves those
users' sessions out. That set is read from storage once, when first needed while the user has a
session on this node, and kept while they do; every block and unblock publishes a note on both
users' channels (`Hub.block_changed`) that updates the sets kept on every node. A node that
misses a note (the broker is at most once) reads the set again at the user's next session there;
blocks themselves (sends, direct rooms) are enforced by storage, never by these sets.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

Read = Callable[[str], Awaitable[list[str]]]


class BlockSets:
    """`of(user)`: the ids of the users `user` blocks or is blocked by.

    `read` is `Storage.blocks_involving`; `keep(user)` says whether the user has a session on
    this node (only then is a set kept, and only then do notes about it arrive here).
    """

    def __init__(self, read: Read, keep: Callable[[str], bool]) -> None:
        self._read = read
        self._keep = keep
        self._sets: dict[str, frozenset[str]] = {}
        # Notes heard per kept user: a read that overlapped one may predate its change, so it
        # is read again.
        self._heard: dict[str, int] = {}

    async def of(self, user_id: str) -> frozenset[str]:
        found = self._sets.get(user_id)
        while found is None:
            heard = self._heard.get(user_id, 0)
            ids = frozenset(await self._read(user_id))
            if not self._keep(user_id):
                return ids
            if self._heard.get(user_id, 0) == heard:
                found = self._sets[user_id] = ids
        return found

    def changed(self, user_id: str, other_id: str, blocked: bool) -> None:
        """A note: the two users are now blocked (either way), or no longer."""
        if not self._keep(user_id):
            return
        self._heard[user_id] = self._heard.get(user_id, 0) + 1
        found = self._sets.get(user_id)
        if found is not None:
            self._sets[user_id] = found | {other_id} if blocked else found - {other_id}

    def forget(self, user_id: str) -> None:
        """The user's last session on this node closed."""
        self._sets.pop(user_id, None)
        self._heard.pop(user_id, None)
