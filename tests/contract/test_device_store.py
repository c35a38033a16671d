"""The device store contract on chatcore_device_sqlite: a SQLite file in a temporary folder,
and a second store (its own engine, like a second process) on the same file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chatcore.testing.device_store_contract import DeviceStoreContract
from chatcore_device_sqlite import SqliteDeviceStore


class TestSqliteDeviceStore(DeviceStoreContract):
    @pytest.fixture
    def path(self, tmp_path: Path) -> Path:
        return tmp_path / "device" / "client.db"

    @pytest.fixture
    async def store(self, path: Path) -> AsyncIterator[SqliteDeviceStore]:
        store = SqliteDeviceStore(path)
        await store.open()
        try:
            yield store
        finally:
            await store.close()

    @pytest.fixture
    async def other_instance(
        self, store: SqliteDeviceStore, path: Path
    ) -> AsyncIterator[SqliteDeviceStore]:
        other = SqliteDeviceStore(path)
        await other.open()
        try:
            yield other
        finally:
            await other.close()
