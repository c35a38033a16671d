"""The storage contract: what every `chatcore.interfaces.Storage` backend must do.

One module, and one test class, per area of `Storage` (each area is a protocol of
`chatcore.interfaces`): `UsersContract`, `LoginsContract`, `ProfileContract`, `RoomsContract`,
`MessagesContract`, `ContactsContract`, `MediaContract`, `StickersContract`, `DevicesContract`,
`PushQueueContract` and `RateLimitsContract`. `StorageContract` combines them all and adds the
check that the backend is a whole `Storage`.

A backend runs the whole suite by subclassing `StorageContract` and providing a fixture
`storage` that yields a started, empty storage (and closes it afterwards)::

    import pytest
    from chatcore.testing.storage_contract import StorageContract

    class TestMyStorage(StorageContract):
        @pytest.fixture
        async def storage(self):
            storage = MyStorage(...)
            await storage.start()
            yield storage
            await storage.close()

A backend (or a test module) that wants only some areas combines their classes instead, with
the same fixture::

    from chatcore.testing.storage_contract import MessagesContract, RoomsContract

    class TestMyRoomsAndMessages(RoomsContract, MessagesContract):
        ...  # the same `storage` fixture

Every area's tests create the users and rooms they need through `create_user` and
`create_group_room`/`create_direct_room`, so every class needs those two areas to work.

A backend whose data several instances can share (one database, several server nodes) also
overrides `other_node`: a second started storage on the same data as `storage`. The tests of
guarantees between nodes (gapless seqs, idempotency, one direct room per pair) then run across
the two; without it they are skipped.

The tests are async and run on anyio's pytest plugin (the `anyio_backend` fixture comes with
every class). Times passed to the storage are explicit, so no test depends on the clock. The
helpers the tests use (`make_user`, `draft`, `created`, ...) live in `base` and are exported
here for a backend's own tests.
"""

from __future__ import annotations

import pytest

from chatcore.interfaces import Storage
from chatcore.testing.storage_contract.admin import AdminContract
from chatcore.testing.storage_contract.base import (
    FAR,
    HASH,
    KEYS,
    ContractBase,
    created,
    device,
    draft,
    gather,
    make_user,
    make_users,
    queued,
    seqs,
    store,
)
from chatcore.testing.storage_contract.contacts import ContactsContract
from chatcore.testing.storage_contract.devices import DevicesContract
from chatcore.testing.storage_contract.logins import LoginsContract
from chatcore.testing.storage_contract.media import MediaContract
from chatcore.testing.storage_contract.messages import MessagesContract
from chatcore.testing.storage_contract.moderation import ModerationContract
from chatcore.testing.storage_contract.profile import ProfileContract
from chatcore.testing.storage_contract.push_queue import PushQueueContract
from chatcore.testing.storage_contract.rate_limits import RateLimitsContract
from chatcore.testing.storage_contract.retention import RetentionContract
from chatcore.testing.storage_contract.rooms import RoomsContract
from chatcore.testing.storage_contract.search import ReportsContract, SearchContract
from chatcore.testing.storage_contract.stickers import StickersContract
from chatcore.testing.storage_contract.users import UsersContract

__all__ = [
    "FAR",
    "HASH",
    "KEYS",
    "AdminContract",
    "ContactsContract",
    "ContractBase",
    "DevicesContract",
    "LoginsContract",
    "MediaContract",
    "MessagesContract",
    "ModerationContract",
    "ProfileContract",
    "PushQueueContract",
    "RateLimitsContract",
    "ReportsContract",
    "RetentionContract",
    "RoomsContract",
    "SearchContract",
    "StickersContract",
    "StorageContract",
    "UsersContract",
    "created",
    "device",
    "draft",
    "gather",
    "make_user",
    "make_users",
    "queued",
    "seqs",
    "store",
]


class StorageContract(
    UsersContract,
    LoginsContract,
    ProfileContract,
    RoomsContract,
    MessagesContract,
    ContactsContract,
    MediaContract,
    StickersContract,
    DevicesContract,
    PushQueueContract,
    RateLimitsContract,
    AdminContract,
    ModerationContract,
    RetentionContract,
    SearchContract,
    ReportsContract,
):
    """The whole contract suite; subclasses provide the `storage` fixture (and `other_node`)."""

    @pytest.mark.anyio
    async def test_is_a_storage_and_answers_ping(self, storage: Storage) -> None:
        assert isinstance(storage, Storage)
        await storage.ping()
