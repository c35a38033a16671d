"""Media metadata, sticker packs and profile changes in SQL: functions on a connection the
caller (`SqlStorage`) opened, a write transaction for the changes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import and_, delete, exists, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from chatcore.models import Media, Sticker, StickerPack
from chatcore_sql.rooms import dialect_insert
from chatcore_sql.tables import media, messages, room_members, rooms, sticker_packs, stickers, users

MEDIA_COLUMNS = (
    media.c.id,
    media.c.uploader_id,
    media.c.content_type,
    media.c.size,
    media.c.sha256,
    media.c.width,
    media.c.height,
    media.c.filename,
    media.c.created_ts,
)
STICKER_COLUMNS = (
    stickers.c.id,
    stickers.c.pack_id,
    stickers.c.emoji,
    stickers.c.media_id,
)


def _media(row: Any) -> Media:
    return Media(**row._mapping)


def _sticker(row: Any) -> Sticker:
    return Sticker(**row._mapping)


async def create_media(conn: AsyncConnection, item: Media) -> Media:
    values = {column.name: getattr(item, column.name) for column in MEDIA_COLUMNS}
    # An id that exists already (a sticker image imported again) keeps its first row.
    await conn.execute(
        dialect_insert(conn, media).values(**values).on_conflict_do_nothing(index_elements=["id"])
    )
    found = await get_media(conn, item.id)
    assert found is not None
    return found


async def get_media(conn: AsyncConnection, media_id: str) -> Media | None:
    row = (await conn.execute(select(*MEDIA_COLUMNS).where(media.c.id == media_id))).first()
    return _media(row) if row else None


async def shared_with(conn: AsyncConnection, media_id: str, user_id: str) -> bool:
    """One statement: a live media message in one of the user's rooms, a sticker, an avatar."""
    in_a_room = (
        select(messages.c.id)
        .join(
            room_members,
            and_(room_members.c.room_id == messages.c.room_id, room_members.c.user_id == user_id),
        )
        .where(
            messages.c.media_id == media_id,
            messages.c.kind == "media",
            messages.c.deleted.is_(False),
        )
    )
    a_sticker = select(stickers.c.id).where(stickers.c.media_id == media_id)
    an_avatar = select(users.c.id).where(users.c.avatar_media_id == media_id)
    # A group room's avatar (room administration): readable by the room's members.
    a_room_avatar = (
        select(rooms.c.id)
        .join(
            room_members,
            and_(room_members.c.room_id == rooms.c.id, room_members.c.user_id == user_id),
        )
        .where(rooms.c.avatar_media_id == media_id)
    )
    stmt = select(
        or_(exists(in_a_room), exists(a_sticker), exists(an_avatar), exists(a_room_avatar))
    )
    return bool((await conn.execute(stmt)).scalar())


async def put_pack(conn: AsyncConnection, pack: StickerPack, now_ts: int) -> StickerPack:
    stmt = dialect_insert(conn, sticker_packs).values(id=pack.id, name=pack.name, updated_ts=now_ts)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["id"],
            set_={"name": stmt.excluded.name, "updated_ts": stmt.excluded.updated_ts},
        )
    )
    await conn.execute(delete(stickers).where(stickers.c.pack_id == pack.id))
    if pack.stickers:
        await conn.execute(
            insert(stickers),
            [
                {
                    "id": sticker.id,
                    "pack_id": pack.id,
                    "position": position,
                    "emoji": sticker.emoji,
                    "media_id": sticker.media_id,
                }
                for position, sticker in enumerate(pack.stickers)
            ],
        )
    found = await packs(conn, pack.id)
    return found[0]


async def packs(conn: AsyncConnection, pack_id: str | None = None) -> list[StickerPack]:
    """Every pack (or the one with `pack_id`), by name, each with its stickers in order."""
    pack_stmt = select(sticker_packs.c.id, sticker_packs.c.name).order_by(
        sticker_packs.c.name, sticker_packs.c.id
    )
    sticker_stmt = select(*STICKER_COLUMNS).order_by(stickers.c.pack_id, stickers.c.position)
    if pack_id is not None:
        pack_stmt = pack_stmt.where(sticker_packs.c.id == pack_id)
        sticker_stmt = sticker_stmt.where(stickers.c.pack_id == pack_id)
    found = (await conn.execute(pack_stmt)).all()
    by_pack: dict[str, list[Sticker]] = {}
    for row in await conn.execute(sticker_stmt):
        by_pack.setdefault(row.pack_id, []).append(_sticker(row))
    return [
        StickerPack(id=row.id, name=row.name, stickers=tuple(by_pack.get(row.id, ())))
        for row in found
    ]


async def get_sticker(conn: AsyncConnection, sticker_id: str) -> Sticker | None:
    row = (await conn.execute(select(*STICKER_COLUMNS).where(stickers.c.id == sticker_id))).first()
    return _sticker(row) if row else None


async def update_profile(
    conn: AsyncConnection, user_id: str, changes: Mapping[str, str | None]
) -> bool:
    """Apply `display_name` / `avatar_media_id` changes; False when the user does not exist."""
    values: dict[str, Any] = {}
    if "display_name" in changes:
        name = changes["display_name"]
        if name is None:
            raise ValueError("display_name cannot be None")
        values.update(display_name=name, display_name_lower=name.lower())
    if "avatar_media_id" in changes:
        values["avatar_media_id"] = changes["avatar_media_id"]
    if not values:
        found = await conn.execute(select(users.c.id).where(users.c.id == user_id))
        return found.first() is not None
    result = await conn.execute(update(users).where(users.c.id == user_id).values(**values))
    return result.rowcount == 1
