"""JSON in and out with orjson: Quart's JSON provider and the response builder every view uses.

Views build their responses with `json_response` instead of returning dicts, so a reply is
encoded once, by orjson, without Quart's or quart-schema's conversion passes.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel
from quart import Response
from quart.json.provider import JSONProvider

__all__ = ["JSON_TYPE", "OrjsonProvider", "dumps", "empty_response", "json_response"]

JSON_TYPE = "application/json"
_OPTIONS = orjson.OPT_NON_STR_KEYS


def _default(value: Any) -> Any:
    # Domain models serialize as the contract shows them; other pydantic models plainly.
    wire = getattr(value, "wire", None)
    if callable(wire):
        return wire()
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, set | frozenset):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_default, option=_OPTIONS)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON reply encoded by orjson."""
    return Response(dumps(body), status=status, headers=headers, content_type=JSON_TYPE)


def empty_response(status: int = 204, headers: dict[str, str] | None = None) -> Response:
    return Response(b"", status=status, headers=headers)


class OrjsonProvider(JSONProvider):
    """Quart's `app.json`: request bodies are parsed and JSON replies encoded with orjson."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return dumps(obj).decode()

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return orjson.loads(s)

    def response(self, *args: Any, **kwargs: Any) -> Response:
        value = args[0] if len(args) == 1 else (list(args) if args else kwargs)
        return json_response(value)
