"""The OpenAPI document at `/api/v1/openapi.json`: quart-schema's, plus what it cannot express.

quart-schema documents request and response models. `api_doc` adds, per view: the error
responses (in the contract's error shape, with their headers), replies without a JSON model (204,
Prometheus text, a plugin route's free-form JSON), and extra request media types.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from quart_schema import OpenAPIProvider
from werkzeug.routing.rules import Rule

from chatcore_rest.schemas import ErrorBody

__all__ = ["ChatOpenAPIProvider", "Reply", "api_doc"]

F = TypeVar("F", bound=Callable[..., Any])

_ATTRIBUTE = "_chatcore_api_doc"
#: Set on a view serving several methods: its operation ids get the method as a prefix.
PER_METHOD_IDS = "_chatcore_per_method_ids"
_REF = "#/components/schemas/{model}"
ERROR_SCHEMA = "Error"

_ERROR_DESCRIPTIONS = {
    400: "Bad request: the input is missing or invalid (code `bad_request`).",
    401: "Unauthorized: the access token is missing, invalid or expired (code `unauthorized`).",
    403: "Forbidden (code `forbidden`).",
    404: "Not found, or not visible to the caller (code `not_found`).",
    409: "Conflict (code `conflict`).",
    413: "The body or the resulting object is too large (code `too_large`).",
    415: "Unsupported media type (code `unsupported_media_type`).",
    429: "Rate limited: retry after the seconds in `Retry-After` (code `rate_limited`).",
    500: "Internal error; the details are in the server's log (code `internal`).",
    503: "Unavailable (code `unavailable`).",
}
_ERROR_HEADERS = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "`Bearer`"}},
    429: {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}},
}


@dataclass(frozen=True)
class Reply:
    """A documented reply without a quart-schema model."""

    description: str
    media_type: str | None = None  # None: no body
    schema: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Doc:
    errors: tuple[int, ...] = ()
    replies: Mapping[int, Reply] = field(default_factory=dict)
    request_types: tuple[str, ...] = ()


def api_doc(
    *,
    errors: Iterable[int] = (),
    replies: Mapping[int, Reply] | None = None,
    request_types: Iterable[str] = (),
) -> Callable[[F], F]:
    """Document error statuses (500 is always added), model-less replies, request media types."""

    def decorate(func: F) -> F:
        setattr(func, _ATTRIBUTE, _Doc(tuple(errors), dict(replies or {}), tuple(request_types)))
        return func

    return decorate


def _error_response(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": _ERROR_DESCRIPTIONS.get(status, "Error."),
        "content": {"application/json": {"schema": {"$ref": _REF.format(model=ERROR_SCHEMA)}}},
    }
    if status in _ERROR_HEADERS:
        response["headers"] = _ERROR_HEADERS[status]
    return response


def _reply(reply: Reply) -> dict[str, Any]:
    response: dict[str, Any] = {"description": reply.description}
    if reply.media_type is not None:
        response["content"] = {reply.media_type: {"schema": dict(reply.schema)}}
    return response


def _name_schemas(content: dict[str, Any], components: dict[str, Any]) -> None:
    """Move inline model schemas into components, by title, so clients get named types."""
    for media in content.values():
        schema = media.get("schema", {})
        title = schema.get("title")
        if not title or "$ref" in schema:
            continue
        if components.setdefault(title, schema) == schema:
            media["schema"] = {"$ref": _REF.format(model=title)}


class ChatOpenAPIProvider(OpenAPIProvider):
    """quart-schema's provider with the error model, error replies and model-less replies."""

    def schema(self) -> dict[str, Any]:
        schema = super().schema()
        error_schema = ErrorBody.model_json_schema(ref_template=_REF)
        components = schema["components"]["schemas"]
        components.update(error_schema.pop("$defs", {}))
        components[ERROR_SCHEMA] = error_schema
        schema["paths"] = dict(sorted(schema["paths"].items()))
        return schema

    def build_paths(self, rule: Rule) -> tuple[dict[str, Any], dict[str, Any]]:
        paths, components = super().build_paths(rule)
        func = self._app.view_functions[rule.endpoint]
        doc: _Doc = getattr(func, _ATTRIBUTE, _Doc())
        for path_item in paths.values():
            for operation in path_item.values():
                responses: dict[str, Any] = {
                    str(status): value for status, value in operation["responses"].items()
                }
                for response in responses.values():
                    _name_schemas(response.get("content", {}), components)
                if "requestBody" in operation:
                    _name_schemas(operation["requestBody"]["content"], components)
                for status, reply in doc.replies.items():
                    responses[str(status)] = _reply(reply)
                for status in (*doc.errors, 500):
                    responses.setdefault(str(status), _error_response(status))
                operation["responses"] = dict(sorted(responses.items()))
                body = operation.get("requestBody")
                if body is not None and doc.request_types:
                    schema = next(iter(body["content"].values()))
                    body["content"] = {media: dict(schema) for media in doc.request_types}
                if body is not None:
                    body["required"] = True
                if not operation["parameters"]:
                    del operation["parameters"]
                description = operation.get("description", "").strip()
                if description:
                    operation["description"] = description
                else:
                    operation.pop("description", None)
        return paths, components

    def operation_id(self, method: str, path: str, func: Callable[..., Any]) -> str | None:
        """The view's name (`get_me`, `login`); `post_<name>` for a view of several methods."""
        if getattr(func, PER_METHOD_IDS, False):
            return super().operation_id(method, path, func)
        return func.__name__
