"""The REST client: every call of the server's API, with the login's tokens kept fresh.

    api = Api("http://127.0.0.1:8080")
    tokens = await api.login("ann", "secret-pass")
    rooms = await api.rooms()
    await api.aclose()

Errors are `ApiError` (the server's `code` and `message`, the HTTP status, `retry_after` for
`rate_limited`) or `ApiUnavailable` (no answer: the network or the server is down). The access
token is refreshed once shortly before it expires, and once after a 401; only one refresh
runs at a time (a refresh token works once). A refresh the server refuses ends the login:
`on_tokens(None)` is called and `LoggedOut` raised.

SKELETON: signatures are the contract; bodies arrive with the implementation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from chatcore.client.errors import ApiError, ApiUnavailable, LoggedOut
from chatcore.client.models import (
    Contact,
    Invitation,
    Media,
    Message,
    MessagePage,
    PushDevice,
    Room,
    ServerInfo,
    StickerPack,
    Tokens,
    User,
)

#: Called with the new tokens after a login or refresh, and with None when the login ended.
TokenListener = Callable[[Tokens | None], Awaitable[None]]
#: Upload progress: (bytes sent, total bytes).
Progress = Callable[[int, int], None]


__all__ = ["Api", "ApiError", "ApiUnavailable", "LoggedOut", "Progress", "TokenListener"]


class Api:
    """The REST API of one server, for one login at a time."""

    def __init__(
        self,
        server_url: str,
        *,
        tokens: Tokens | None = None,
        on_tokens: TokenListener | None = None,
        timeout: float = 30.0,
        transport: Any = None,
    ) -> None:
        raise NotImplementedError

    @property
    def tokens(self) -> Tokens | None:
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError

    # --- discovery and accounts ------------------------------------------------------------

    async def info(self) -> ServerInfo:
        raise NotImplementedError

    async def register(self, username: str, password: str, display_name: str | None = None) -> User:
        raise NotImplementedError

    async def login(self, username: str, password: str) -> Tokens:
        raise NotImplementedError

    async def refresh(self) -> Tokens:
        raise NotImplementedError

    async def logout(self) -> None:
        raise NotImplementedError

    async def access_token(self) -> str:
        """A valid access token (refreshed first when it expires soon), for the WebSocket."""
        raise NotImplementedError

    # --- users and settings ----------------------------------------------------------------

    async def me(self) -> User:
        raise NotImplementedError

    async def update_profile(
        self, *, display_name: str | None = None, avatar_media_id: str | None = None
    ) -> User:
        raise NotImplementedError

    async def settings(self) -> dict[str, Any]:
        raise NotImplementedError

    async def patch_settings(self, patch: Mapping[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    async def search_users(self, q: str, limit: int = 20) -> list[User]:
        raise NotImplementedError

    async def user(self, user_id: str) -> User:
        raise NotImplementedError

    # --- contacts and blocks ---------------------------------------------------------------

    async def invite(
        self, *, user_id: str | None = None, username: str | None = None
    ) -> Invitation:
        raise NotImplementedError

    async def invitations(self) -> tuple[list[Invitation], list[Invitation]]:
        """Pending (incoming, outgoing)."""
        raise NotImplementedError

    async def accept_invitation(self, invitation_id: str) -> Contact:
        raise NotImplementedError

    async def decline_invitation(self, invitation_id: str) -> None:
        raise NotImplementedError

    async def contacts(self) -> list[Contact]:
        raise NotImplementedError

    async def remove_contact(self, user_id: str) -> None:
        raise NotImplementedError

    async def block(self, user_id: str) -> None:
        raise NotImplementedError

    async def unblock(self, user_id: str) -> None:
        raise NotImplementedError

    async def blocks(self) -> list[User]:
        raise NotImplementedError

    # --- rooms and messages ----------------------------------------------------------------

    async def create_direct(self, user_id: str) -> Room:
        raise NotImplementedError

    async def create_group(self, name: str, member_ids: Sequence[str] = ()) -> Room:
        raise NotImplementedError

    async def rooms(self) -> list[Room]:
        raise NotImplementedError

    async def room(self, room_id: str) -> Room:
        raise NotImplementedError

    async def add_member(self, room_id: str, user_id: str) -> None:
        raise NotImplementedError

    async def remove_member(self, room_id: str, user_id: str) -> None:
        raise NotImplementedError

    async def messages(
        self,
        room_id: str,
        *,
        after_seq: int | None = None,
        before_seq: int | None = None,
        limit: int = 50,
    ) -> MessagePage:
        raise NotImplementedError

    async def send_message(self, room_id: str, fields: Mapping[str, Any]) -> Message:
        """`POST /rooms/{id}/messages` with `fields` (`ref`, `kind`, `body`, ...)."""
        raise NotImplementedError

    async def edit_message(self, room_id: str, message_id: str, body: str) -> Message:
        raise NotImplementedError

    async def delete_message(self, room_id: str, message_id: str) -> None:
        raise NotImplementedError

    async def mark_read(self, room_id: str, seq: int) -> None:
        raise NotImplementedError

    # --- media and stickers ----------------------------------------------------------------

    async def upload(
        self,
        source: Path | bytes,
        *,
        filename: str | None = None,
        progress: Progress | None = None,
    ) -> Media:
        raise NotImplementedError

    async def download(
        self, media_id: str, *, thumbnail: int | None = None, etag: str | None = None
    ) -> tuple[int, bytes, Mapping[str, str]]:
        """`GET /media/{id}` (or its `/thumbnail?size=N`) with the Bearer token: (status, body,
        headers). With `etag`, an unchanged file answers 304 with an empty body."""
        raise NotImplementedError

    async def sticker_packs(self) -> list[StickerPack]:
        raise NotImplementedError

    async def sticker_pack(self, pack_id: str) -> StickerPack:
        raise NotImplementedError

    # --- push devices ----------------------------------------------------------------------

    async def push_devices(self) -> list[PushDevice]:
        raise NotImplementedError

    async def add_push_device(
        self,
        platform: str,
        *,
        token: str | None = None,
        endpoint: str | None = None,
        keys: Mapping[str, str] | None = None,
    ) -> PushDevice:
        raise NotImplementedError

    async def remove_push_device(self, device_id: str) -> None:
        raise NotImplementedError
