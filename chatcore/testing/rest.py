"""Assertions on REST replies, shared by the REST test modules."""

from __future__ import annotations

from typing import Any

import httpx


def ok(reply: httpx.Response, status: int = 200) -> Any:
    """The reply has `status`; its JSON body (None for 204, whose body must be empty)."""
    assert reply.status_code == status, reply.text
    if status == 204:
        assert reply.content == b""
        return None
    assert reply.headers["content-type"].startswith("application/json")
    return reply.json()


def assert_error(reply: httpx.Response, status: int, code: str) -> str:
    """The reply is the contract's error, exactly: `{"error": {"code", "message"}}`, with a
    message a person can read and no stack trace. Returns the message."""
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    body = reply.json()
    assert list(body) == ["error"], body
    assert sorted(body["error"]) == ["code", "message"], body
    assert body["error"]["code"] == code, body
    message = body["error"]["message"]
    assert isinstance(message, str) and message.strip()
    assert "Traceback" not in reply.text and 'File "' not in reply.text
    return str(message)
