"""The push handler's parsing and signature check: every wrapping a push arrives in."""

from __future__ import annotations

import hashlib
import hmac
import time

import orjson
import pytest

from chatcore.client.push import PushError, parse_push, verify_webhook

PUSH = {
    "type": "message",
    "room_id": "r1",
    "message_id": "m1",
    "seq": 7,
    "ts": 1700000000000,
    "sender_id": "u2",
    "sender_name": "Ann",
    "room_name": "Team",
    "preview": "see you at 5",
    "direct": False,
    "mention": False,
}
#: The same push as FCM data: every value a string.
FCM_DATA = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in PUSH.items()}


@pytest.mark.parametrize(
    "payload",
    [
        PUSH,
        orjson.dumps(PUSH),  # a webhook body, raw
        orjson.dumps(PUSH).decode(),  # a Web Push message after decryption
        {"message": {"token": "t", "data": FCM_DATA}},  # FCM HTTP v1, as sent
        FCM_DATA,  # FCM data as the SDK hands it over
        {"data": FCM_DATA},
        {"aps": {"alert": {"title": "Team", "body": "Ann: see you at 5"}}, "chatcore": PUSH},
    ],
    ids=["object", "webhook-bytes", "webpush-text", "fcm-message", "fcm-data", "data", "apns"],
)
def test_every_wrapping_gives_the_same_notice(payload: object) -> None:
    notice = parse_push(payload)  # type: ignore[arg-type]
    assert (notice.room_id, notice.message_id, notice.seq) == ("r1", "m1", 7)
    assert notice.ts == 1700000000000
    assert (notice.sender_name, notice.room_name, notice.preview) == ("Ann", "Team", "see you at 5")
    assert notice.direct is False
    assert notice.message is None


def test_an_id_only_push_is_enough() -> None:
    notice = parse_push({"type": "message", "room_id": "r1", "message_id": "m1", "seq": "3"})
    assert (notice.room_id, notice.message_id, notice.seq, notice.preview) == ("r1", "m1", 3, None)


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        ({"type": "call", "room_id": "r1"}, "not a message push"),
        ({"type": "message", "room_id": "r1", "seq": 1}, "message_id"),
        ({"type": "message", "room_id": "r1", "message_id": "m", "seq": "seven"}, "seq"),
    ],
)
def test_what_is_not_a_push_is_refused_with_a_reason(payload: object, says: str) -> None:
    with pytest.raises(PushError, match=says):
        parse_push(payload)  # type: ignore[arg-type]


def _signed(secret: bytes, body: bytes, timestamp: int) -> dict[str, str]:
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return {
        "X-Chatcore-Timestamp": str(timestamp),
        "X-Chatcore-Signature": "sha256=" + mac.hexdigest(),
    }


def test_a_webhook_signed_with_the_secret_is_accepted() -> None:
    body = orjson.dumps(PUSH)
    now = int(time.time())
    assert verify_webhook(b"s3cret", _signed(b"s3cret", body, now), body)
    lower = {k.lower(): v for k, v in _signed(b"s3cret", body, now).items()}
    assert verify_webhook(b"s3cret", lower, body)


def test_a_webhook_with_a_wrong_secret_body_or_age_is_refused() -> None:
    body = orjson.dumps(PUSH)
    now = int(time.time())
    assert not verify_webhook(b"s3cret", _signed(b"other", body, now), body)
    assert not verify_webhook(b"s3cret", _signed(b"s3cret", body, now), body + b" ")
    assert not verify_webhook(b"s3cret", _signed(b"s3cret", body, now - 301), body)
    assert not verify_webhook(b"s3cret", {"X-Chatcore-Timestamp": "soon"}, body)
    assert not verify_webhook(b"s3cret", {}, body)
