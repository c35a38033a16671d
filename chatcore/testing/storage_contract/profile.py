"""The storage contract, profiles and settings: `ProfileStorage`."""

from __future__ import annotations

from typing import Any

import pytest

from chatcore.errors import ChatError, ErrorCode
from chatcore.interfaces import Storage
from chatcore.testing.storage_contract.base import ContractBase, make_user, make_users


class ProfileContract(ContractBase):
    """Profiles and settings: `ProfileStorage`."""

    # --- settings --------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_settings_default_to_empty(self, storage: Storage) -> None:
        user = await make_user(storage, "mallory")
        assert await storage.get_settings(user.id) == {}

    @pytest.mark.anyio
    async def test_settings_round_trip(self, storage: Storage) -> None:
        user = await make_user(storage, "nina")
        other = await make_user(storage, "oscar")
        settings: dict[str, Any] = {
            "theme": {"name": "dark", "accent": "#ff8800", "sizes": [12, 14.5, 16]},
            "notifications": {"sound": True, "muted_rooms": [], "dnd": None},
            "greeting": 'Grüße, 世界! 👋 "quoted" \\ back\nslash',
            "big": 2**53 + 1,
            "negative": -7,
            "deep": {"a": {"b": {"c": {"d": ["e", {"f": False}]}}}},
            "ключ": "значение",
        }
        await storage.put_settings(user.id, settings)
        assert await storage.get_settings(user.id) == settings
        assert await storage.get_settings(other.id) == {}
        # A put replaces the whole object (merging is the caller's job).
        await storage.put_settings(user.id, {"theme": "light"})
        assert await storage.get_settings(user.id) == {"theme": "light"}
        await storage.put_settings(user.id, {})
        assert await storage.get_settings(user.id) == {}

    @pytest.mark.anyio
    async def test_settings_of_an_unknown_user_are_refused(self, storage: Storage) -> None:
        with pytest.raises(ChatError) as caught:
            await storage.put_settings("no-such-user", {"theme": "dark"})
        assert caught.value.code is ErrorCode.NOT_FOUND

    # --- profile ---------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_update_profile_changes_only_the_given_fields(self, storage: Storage) -> None:
        alice, bob = await make_users(storage, "Alice", "bob")
        renamed = await storage.update_profile(alice.id, {"display_name": "Ålice Ünder"})
        expected = alice.model_copy(update={"display_name": "Ålice Ünder"})
        assert renamed == expected
        assert await storage.get_user(alice.id) == expected
        with_avatar = await storage.update_profile(alice.id, {"avatar_media_id": "media-1"})
        expected = expected.model_copy(update={"avatar_media_id": "media-1"})
        assert with_avatar == expected  # the display name stays
        assert await storage.update_profile(alice.id, {}) == expected
        both = {"display_name": "A", "avatar_media_id": None}  # None clears the avatar
        expected = expected.model_copy(update={"display_name": "A", "avatar_media_id": None})
        assert await storage.update_profile(alice.id, both) == expected
        assert await storage.get_user(alice.id) == expected
        assert await storage.get_user(bob.id) == bob  # nobody else changes
        # The username stays, and logins keep finding the user by it.
        credentials = await storage.get_credentials("alice")
        assert credentials is not None and credentials.user == expected

    @pytest.mark.anyio
    async def test_a_new_display_name_is_searched(self, storage: Storage) -> None:
        (alice,) = await make_users(storage, "alice")
        await storage.update_profile(alice.id, {"display_name": "Zelda"})
        found = await storage.search_users("zel", 10)
        assert [user.id for user in found] == [alice.id]
        assert await storage.search_users("alice", 10) == found  # the username still matches

    @pytest.mark.anyio
    async def test_update_profile_of_an_unknown_user_is_none(self, storage: Storage) -> None:
        for unknown in ("no-such-user", "no-such-user\x00"):
            assert await storage.update_profile(unknown, {"display_name": "x"}) is None
            assert await storage.update_profile(unknown, {}) is None
