"""chatcore with its message storage switched off: the "storage off" contender of `make bench`.

A config-module plugin (`plugins = ["volatile_storage"]`, with bench/ on PYTHONPATH). It is the
SQL storage of `[storage] url` in every respect but one: `store_messages` keeps messages in this
process's memory instead of the database, with the same checks (the room exists, the sender is a
member, a repeated ref answers the first message) and the same per-room seqs. The difference
between chatcore with this plugin and without it is what durable storage costs a send.

Never use it to serve users: a restart forgets every message.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chatcore.errors import ChatError, ErrorCode
from chatcore.hookspecs import hookimpl
from chatcore.models import Draft, Message, Room, Stored
from chatcore_sql.settings import SqlStorageSettings, async_url
from chatcore_sql.storage import SqlStorage

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from chatcore.server.app import App


def load_in(overrides: dict[str, Any]) -> dict[str, str]:
    """Make a server of config `overrides` load this plugin: it joins `plugins`, and the
    environment returned lets the server process import it (bench/ on PYTHONPATH)."""
    overrides["plugins"] = [*overrides.get("plugins", []), "volatile_storage"]
    here = str(Path(__file__).resolve().parent)
    return {"PYTHONPATH": os.pathsep.join([here, os.environ.get("PYTHONPATH", "")])}


class VolatileMessageStorage(SqlStorage):
    """SqlStorage whose sends never reach the database (see the module docstring)."""

    def __init__(self, url: URL, settings: SqlStorageSettings) -> None:
        super().__init__(url, settings)
        self._rooms: dict[str, Room] = {}
        self._seqs: dict[str, int] = {}
        self._by_key: dict[tuple[str, str, str], Message] = {}

    async def store_messages(self, drafts: Sequence[Draft]) -> list[Stored | ChatError]:
        results: list[Stored | ChatError] = []
        for draft in drafts:
            room = self._rooms.get(draft.room_id)
            if room is None:
                room = await self.get_room(draft.room_id)
                if room is not None:
                    self._rooms[room.id] = room
                    self._seqs.setdefault(room.id, room.last_seq)
            key = (draft.sender_id, draft.room_id, draft.ref)
            if room is None or draft.sender_id not in room.member_ids:
                results.append(ChatError(ErrorCode.NOT_FOUND, "This room is not visible to you."))
            elif (existing := self._by_key.get(key)) is not None:
                results.append(Stored(message=existing, created=False))
            else:
                seq = self._seqs[room.id] = self._seqs[room.id] + 1
                message = Message(id=uuid.uuid4().hex, seq=seq, **draft.model_dump())
                self._by_key[key] = message
                results.append(Stored(message=message, created=True))
        return results


@hookimpl
def chatcore_storage(app: App) -> SqlStorage | None:
    settings = app.settings.section("storage", SqlStorageSettings)
    url = async_url(settings.url)
    return VolatileMessageStorage(url, settings) if url is not None else None
