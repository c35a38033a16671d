"""The push message handler: whatever carried a push, one `PushReceived` event and a way to reply.

A push reaches an app in one of four wrappings (docs/push.md says what the server sends):

- a **webhook** request's JSON body, the push object itself, signed (`verify_webhook`);
- a **Web Push** message, which the browser or a Web Push library has decrypted: the push object;
- an **FCM** message (`{"message": {"data": {...}}}`, or `data` alone as the FCM SDK hands it
  over): the push object with every value a string;
- an **APNs** payload (`{"aps": {...}, "chatcore": {...}}`).

`parse_push` turns any of them into a `PushNotice`; `handle_push` (what `Client.handle_push`
runs) completes an id-only push with the message itself when the server answers, stores that
message in the device store, and publishes `PushReceived`. Answering the notification without
opening the dialog is `client.reply(notice.room_id, text, reply_to=notice.message_id)`.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import ValidationError

from chatcore.client.errors import ApiError, ApiUnavailable, ClientError, LoggedOut
from chatcore.client.events import PushReceived
from chatcore.client.models import Message, PushNotice

if TYPE_CHECKING:
    from chatcore.client.app import Client

#: Signed webhook requests older (or further in the future) than this are refused: replays.
WEBHOOK_MAX_AGE_SECONDS = 300

_INT_FIELDS = ("seq", "ts")
_BOOL_FIELDS = ("direct", "mention")


class PushError(ClientError):
    """A push that is not one of chatcore's (wrong shape, not a message push, bad signature)."""


def verify_webhook(
    secret: bytes,
    headers: Mapping[str, str],
    body: bytes,
    *,
    max_age: float = WEBHOOK_MAX_AGE_SECONDS,
    now: float | None = None,
) -> bool:
    """True when `body` was signed with `secret` by a chatcore server less than `max_age` ago.

    `headers` is case-insensitive or lower-case (`x-chatcore-timestamp`, `x-chatcore-signature`).
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    timestamp = lowered.get("x-chatcore-timestamp", "")
    signature = lowered.get("x-chatcore-signature", "")
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent) > max_age:
        return False
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest(signature, "sha256=" + mac.hexdigest())


def parse_push(payload: Mapping[str, Any] | bytes | str) -> PushNotice:
    """The notice a push carries, from any of the four wrappings; `PushError` when it is none."""
    if isinstance(payload, bytes | str):
        try:
            payload = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise PushError("the push is not JSON") from None
    if not isinstance(payload, Mapping):
        raise PushError("the push is not a JSON object")
    push = _unwrap(payload)
    if push.get("type") != "message":
        raise PushError(f"not a message push (type {push.get('type')!r})")
    values = dict(push)
    for name in _INT_FIELDS:  # FCM data values are strings
        if isinstance(values.get(name), str) and values[name].strip().lstrip("-").isdigit():
            values[name] = int(values[name])
    for name in _BOOL_FIELDS:
        if values.get(name) in ("true", "false"):
            values[name] = values[name] == "true"
    try:
        return PushNotice.model_validate(values)
    except ValidationError as exc:
        fields = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors())
        raise PushError(f"the push lacks or mistypes: {fields}") from None


def _unwrap(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    """The push object inside an FCM message, FCM data, an APNs payload, or the object itself."""
    message = payload.get("message")
    if isinstance(message, Mapping) and isinstance(message.get("data"), Mapping):
        return message["data"]  # an FCM HTTP v1 message as sent
    if isinstance(payload.get("data"), Mapping) and "type" not in payload:
        return payload["data"]  # FCM data, as some SDKs hand it over
    if isinstance(payload.get("chatcore"), Mapping):
        return payload["chatcore"]  # APNs
    return payload


async def handle_push(client: Client, payload: Mapping[str, Any] | bytes | str) -> PushNotice:
    """Understand a push, complete it with its message when possible, publish `PushReceived`.

    The message comes from the device store when it is there already, else from the server
    (and is then stored, so the dialog shows it at once). With the server out of reach, or the
    login ended, the notice goes out as the push carried it: a notification must not wait.
    """
    notice = parse_push(payload)
    message = await client.store.get_message(notice.room_id, notice.message_id)
    if message is None:
        message = await _fetch(client, notice)
    if message is not None:
        notice = notice.model_copy(update={"message": message})
        if notice.sender_id is None:
            notice = notice.model_copy(update={"sender_id": message.sender_id})
    await client.publish(PushReceived(notice))
    return notice


async def _fetch(client: Client, notice: PushNotice) -> Message | None:
    try:
        page = await client.api.messages(notice.room_id, after_seq=notice.seq - 1, limit=1)
        if await client.store.get_room(notice.room_id) is None:
            await client.store.save_rooms([await client.api.room(notice.room_id)])
    except (ApiUnavailable, LoggedOut):
        return None
    except ApiError as exc:
        if exc.code == "not_found":  # no longer in the room, or the message was removed
            return None
        raise
    found = [m for m in page.messages if m.id == notice.message_id]
    if not found:
        return None
    await client.store.add_messages(found, client.user.id)
    return found[0]
