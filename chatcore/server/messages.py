"""Messages: send (one path for REST and WebSocket), history, edits, deletes, read receipts.

A send is checked, shown to the `chatcore_check_message` plugins, then stored by the group
commit writer, which also starts its delivery; the caller acknowledges once it returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from chatcore.clock import now_ms
from chatcore.errors import ChatError, ErrorCode, bad_request, not_found
from chatcore.hooks import call_filter, call_observers
from chatcore.models import Draft, Message, Stored
from chatcore.protocol.frames import encode, message_event_of, message_json
from chatcore.server import audit, media, room_log
from chatcore.server.moderation import room_role
from chatcore.server.push import routing as push_routing
from chatcore.server.rooms import member_room

if TYPE_CHECKING:
    from chatcore.server.app import App

REF_MAX = 128
HISTORY_LIMIT_DEFAULT = 50
HISTORY_LIMIT_MAX = 500
SENDABLE_KINDS = ("text", "media", "sticker")


def updated_event(message: Message) -> bytes:
    return encode({"type": "message_updated", "message": message.wire()})


def _check_body(app: App, body: object) -> str:
    if not isinstance(body, str):
        raise bad_request("body must be a string.")
    if "\x00" in body:
        raise bad_request("body cannot contain the NUL character.")
    limit = app.settings.limits.max_message_bytes
    # UTF-8 takes at most 4 bytes a character: most bodies need no encoding to be measured.
    if len(body) * 4 > limit and len(body.encode()) > limit:
        raise ChatError(ErrorCode.TOO_LARGE, f"A message body is at most {limit} bytes of UTF-8.")
    return body


def _check_draft(app: App, draft: dict[str, Any]) -> dict[str, Any]:
    """Validate what a client (or a rewriting plugin) asks to store; `draft`, a dict of the
    caller's own, comes back with its kind and body set (the defaults filled in)."""
    kind = draft.get("kind") or "text"
    if kind not in SENDABLE_KINDS:
        raise bad_request(f"kind must be one of: {', '.join(SENDABLE_KINDS)}.")
    body = draft.get("body")
    body = _check_body(app, body if body is not None else "")
    if kind == "text" and not body.strip():
        raise bad_request("A text message needs a non-empty body.")
    # A message shares its media with the room (readers of the room may then read it), so only
    # the field of its kind may be set, and it is checked in `_check_attachment`.
    for field, wanted in (("media_id", "media"), ("sticker_id", "sticker")):
        value = draft.get(field)
        if kind == wanted:
            if not isinstance(value, str) or not value:
                raise bad_request(f"A {kind} message needs its {field}.")
        elif value is not None:
            raise bad_request(f"{field} belongs only to a {wanted} message.")
    draft["kind"], draft["body"] = kind, body
    return draft


async def _check_attachment(app: App, sender_id: str, draft: dict[str, Any]) -> None:
    """The media of a media message must be readable by its sender; the sticker of a sticker
    message must exist. Either answers `not_found` (visibility: the sender learns nothing of
    media they may not read)."""
    if draft["kind"] == "media":
        await media.readable(app, sender_id, draft["media_id"])
    elif draft["kind"] == "sticker" and await app.storage.get_sticker(draft["sticker_id"]) is None:
        raise not_found("This sticker")


def check_ref(ref: object) -> str:
    if not isinstance(ref, str) or not 1 <= len(ref) <= REF_MAX or "\x00" in ref:
        raise bad_request(f"ref must be a string of 1 to {REF_MAX} characters (no NUL).")
    return ref


async def send(app: App, sender_id: str, room_id: str, fields: dict[str, Any]) -> Stored:
    """Store a message once per (sender, room, ref) and start its delivery.

    `fields` holds the client's `ref`, `kind`, `body`, `media_id`, `sticker_id`, `reply_to`.
    A repeated ref returns the stored message unchanged (`created=False`), whatever the new
    content; an error stores nothing and leaves the ref unused.
    """
    prepared = await prepare(app, sender_id, room_id, fields)
    if isinstance(prepared, Stored):
        return prepared
    return await app.writer.submit(prepared)


async def prepare(app: App, sender_id: str, room_id: str, fields: dict[str, Any]) -> Draft | Stored:
    """Everything a send does before storage: the draft to store, or the stored message
    when this is a retry that can be answered without storing (see `send`)."""
    ref = check_ref(fields.get("ref"))
    try:
        draft = _check_draft(
            app,
            {
                "kind": fields.get("kind"),
                "body": fields.get("body"),
                "media_id": fields.get("media_id"),
                "sticker_id": fields.get("sticker_id"),
                "reply_to": fields.get("reply_to"),
                "room_id": room_id,
            },
        )
        if draft["kind"] != "text":
            await _check_attachment(app, sender_id, draft)
        # A send into a direct room across a block is refused by `store_messages`, inside its
        # transaction (after the retry check): no storage call per send here.
    except ChatError:
        # A retry is answered with the original whatever it carries now (even invalid
        # content): only a send that was never stored is refused.
        if existing := await app.storage.find_message_by_ref(sender_id, room_id, ref):
            return Stored(message=existing, created=False)
        raise
    if app.hook.chatcore_check_message.get_hookimpls():
        # Plugins see neither outsiders' messages nor retries; without plugins these checks
        # are left to `store_messages`, which makes both inside its transaction anyway.
        await member_room(app, sender_id, room_id)
        if existing := await app.storage.find_message_by_ref(sender_id, room_id, ref):
            return Stored(message=existing, created=False)
        checked = draft
        draft = await _moderate(app, sender_id, draft)
        if any(draft.get(k) != checked.get(k) for k in ("kind", "media_id", "sticker_id")):
            await _check_attachment(app, sender_id, draft)  # a plugin changed what is shared
    values = {
        "room_id": room_id,
        "sender_id": sender_id,
        "ref": ref,
        "kind": draft["kind"],
        "body": draft["body"],
        "media_id": draft.get("media_id"),
        "sticker_id": draft.get("sticker_id"),
        "reply_to": draft.get("reply_to"),
        "ts": now_ms(),
    }
    # `_check_draft` checked every field but `reply_to` (a frame's is a checked string); any
    # other reply_to is left to the model's validation, as before.
    reply_to = values["reply_to"]
    if reply_to is None or type(reply_to) is str:
        return Draft.trusted(values)
    return Draft(**values)


async def _moderate(app: App, sender_id: str, draft: dict[str, Any]) -> dict[str, Any]:
    """Run `chatcore_check_message` plugins in order; each may rewrite (the next one sees the
    rewrite) or reject by raising ChatError. The result is validated like the client's draft."""
    hook = app.hook.chatcore_check_message
    if not hook.get_hookimpls():
        return draft
    sender = await app.storage.get_user(sender_id)
    checked = await call_filter(hook, "draft", dict(draft), app=app, sender=sender)
    if not isinstance(checked, dict):
        raise TypeError("chatcore_check_message must return a dict or None")
    return _check_draft(app, {**checked, "room_id": draft["room_id"]})


async def publish_new(app: App, stored: Sequence[Stored]) -> list[bytes]:
    """The writer's fan-out step: deliver each new message, then route its pushes and tell
    the observers, both in the background. Returns each message encoded (`message_json`),
    for the acks."""
    encoded = []
    for item in stored:
        message = item.message
        data = message_json(message)
        encoded.append(data)
        await app.hub.publish_room(message.room_id, message_event_of(data), seq=message.seq)
    if app.push is not None:
        app.spawn(push_routing.route(app, app.push, [item.message for item in stored]))
    if app.hook.chatcore_message_stored.get_hookimpls():
        app.spawn(_observe([item.message for item in stored], app))
    return encoded


async def _observe(messages: list[Message], app: App) -> None:
    for message in messages:
        await call_observers(app.hook.chatcore_message_stored, app=app, message=message)


async def history(
    app: App,
    user_id: str,
    room_id: str,
    after_seq: int | None = None,
    before_seq: int | None = None,
    limit: int | None = None,
) -> tuple[list[Message], bool]:
    """A page of messages and whether more exist in that direction (docs/protocol.md, Messages)."""
    if after_seq is not None and before_seq is not None:
        raise bad_request("Give after_seq or before_seq, not both.")
    for name, value in (("after_seq", after_seq), ("before_seq", before_seq)):
        if value is not None and value < 0:
            raise bad_request(f"{name} must be 0 or more.")
    size = HISTORY_LIMIT_DEFAULT if limit is None else max(1, min(limit, HISTORY_LIMIT_MAX))
    await member_room(app, user_id, room_id)
    if after_seq is not None:
        page = await app.storage.messages_after(room_id, after_seq, size + 1)
    else:
        page = await app.storage.messages_before(room_id, before_seq, size + 1)
    return page[:size], len(page) > size


async def _own_message(app: App, user_id: str, room_id: str, message_id: str) -> Message:
    await member_room(app, user_id, room_id)
    message = await app.storage.get_message(room_id, message_id)
    if message is None:
        raise not_found("This message")
    return message


async def edit(app: App, user_id: str, room_id: str, message_id: str, body: object) -> Message:
    """The sender replaces a message's body; members receive `message_updated`."""
    message = await _own_message(app, user_id, room_id, message_id)
    if message.sender_id != user_id:
        raise ChatError(ErrorCode.FORBIDDEN, "Only the sender may edit a message.")
    if message.deleted:
        raise ChatError(ErrorCode.CONFLICT, "This message was deleted and cannot be edited.")
    if message.kind != "text":
        raise bad_request("Only text messages can be edited.")
    draft = _check_draft(app, {"room_id": room_id, "kind": "text", "body": body})
    draft = await _moderate(app, user_id, draft)
    updated = await app.storage.edit_message(room_id, message_id, draft["body"], now_ms())
    if updated is None:
        raise ChatError(ErrorCode.CONFLICT, "This message was deleted and cannot be edited.")
    await app.hub.publish_room(room_id, updated_event(updated))
    return updated


async def delete(app: App, user_id: str, room_id: str, message_id: str) -> None:
    """The sender, or a group room's owner or admin, deletes a message; it keeps its seq.
    A deletion by a moderator is also an entry of the room log and of the audit log."""
    message = await _own_message(app, user_id, room_id, message_id)
    room = None
    if message.sender_id != user_id:
        room = await member_room(app, user_id, room_id)
        if room_role(room, user_id) not in ("owner", "admin") or room.kind != "group":
            raise ChatError(
                ErrorCode.FORBIDDEN,
                "Only the sender or the group's owner or an admin may delete a message.",
            )
    if message.deleted:
        return
    deleted = await app.storage.delete_message(room_id, message_id, now_ms())
    if deleted is not None:
        await app.hub.publish_room(room_id, updated_event(deleted))
        if room is not None:
            await room_log.record(
                app,
                room,
                actor_id=user_id,
                action="message.delete",
                target_id=message_id,
                details={"sender_id": message.sender_id, "seq": message.seq},
            )
            await audit.record(
                app,
                actor_id=user_id,
                action="message.delete",
                target_kind="message",
                target_id=message_id,
                room_id=room_id,
                details={"sender_id": message.sender_id},
            )


async def mark_read(app: App, user_id: str, room_id: str, seq: object) -> None:
    """Move the user's read seq forward (clamped); every member's sessions get `receipt`,
    except those of anyone on the other side of a block with the reader."""
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise bad_request("seq must be an integer, 0 or more.")
    await member_room(app, user_id, room_id)
    moved = await app.storage.mark_read(room_id, user_id, seq)
    if moved is not None:
        event = encode({"type": "receipt", "room_id": room_id, "user_id": user_id, "seq": moved})
        # A receipt tells when someone reads: not across a block
        # (chatcore.server.realtime.blocklist).
        await app.hub.publish_room(room_id, event, hide_from=await app.hub.blocks.of(user_id))
