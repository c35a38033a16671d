"""People's names for the screens: the client's `users()` answers, kept for the session.

Rows render with what is known at once (a name seen before, else the id) and are rendered
again when `resolve` learns more (`on_learned`): a name never waits for the network.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from chatcore.client.errors import ClientError
from chatcore.client.models import User
from chatcore_tui.format import display_name


class UserNames:
    """Display names by user id, filled from `client.users` (device store first)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._users: dict[str, User] = {}
        self._asked: set[str] = set()  # asked already this session (found or not)
        #: Called after `resolve` learned new names (the screen paints them).
        self.on_learned: Callable[[], None] | None = None

    @property
    def users(self) -> Mapping[str, User]:
        return self._users

    def name(self, user_id: str) -> str:
        """The display name when known, else the id."""
        return display_name(user_id, self._users)

    def remember(self, *users: User | None) -> None:
        """Users that came with an event (a contact, an invitation): newest wins."""
        for user in users:
            if user is not None:
                self._users[user.id] = user

    def forget_misses(self) -> None:
        """Ask again for ids not found before (after a reconnect the server may answer)."""
        self._asked = set(self._users)

    async def resolve(self, user_ids: Iterable[str]) -> bool:
        """Learn the names of `user_ids` not asked for yet; whether any new one was found."""
        wanted = [i for i in dict.fromkeys(user_ids) if i and i not in self._asked]
        if not wanted:
            return False
        self._asked.update(wanted)
        try:
            found = await self._client.users(wanted)
        except ClientError:
            self._asked.difference_update(wanted)  # asked again next time
            return False
        self._users.update(found)
        if found and self.on_learned is not None:
            self.on_learned()
        return bool(found)
