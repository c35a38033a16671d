"""Every REST error in the contract's shape: `{"error": {"code", "message"}}`.

`install_error_handlers` makes the Quart app answer every failure this way: a `ChatError` with
its own status, request validation (quart-schema) and malformed JSON as `bad_request`, unknown
paths and methods, bodies over the limit, any other HTTP exception by its status, and any
unexpected exception as a generic `internal` error that is logged with its traceback and never
shown to the client.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from pydantic import ValidationError
from quart import Quart, Response, request
from quart_schema import RequestSchemaValidationError
from werkzeug.exceptions import HTTPException

from chatcore.errors import ChatError, ErrorCode, validation_message
from chatcore_rest.jsonio import json_response

__all__ = ["code_for_status", "error_response", "install_error_handlers", "schema_error_message"]

log = logging.getLogger(__name__)

INTERNAL_MESSAGE = "Something went wrong on the server; try again later."
BEARER_CHALLENGE = "Bearer"

_CODES_BY_STATUS = {code.http_status: code for code in ErrorCode}
#: The contract keeps these statuses with the code bad_request.
_BAD_REQUEST_STATUSES = {405, 416}

_MESSAGES = {
    400: "The request cannot be understood; check its syntax.",
    401: "Sign in first: the access token is missing, invalid or expired.",
    403: "You are not allowed to do this.",
    404: "There is no such endpoint; see /api/v1/openapi.json for the API.",
    408: "The request took too long to arrive; send it again.",
    409: "This conflicts with the current state; reload and try again.",
    411: "Send a Content-Length header with the body.",
    413: "The request body is too large.",
    414: "The URL is too long.",
    415: "This media type is not supported here.",
    416: "The requested range cannot be served.",
    429: "Too many requests; slow down and try again later.",
    431: "The request headers are too large.",
    503: "The service is unavailable right now; try again later.",
}

#: Root-level pydantic errors meaning "the body is not an object".
_NOT_AN_OBJECT = {"model_type", "model_attributes_type", "dict_type"}


def code_for_status(status: int) -> ErrorCode:
    if status in _BAD_REQUEST_STATUSES:
        return ErrorCode.BAD_REQUEST
    code = _CODES_BY_STATUS.get(status)
    if code is not None:
        return code
    return ErrorCode.INTERNAL if status >= 500 else ErrorCode.BAD_REQUEST


def error_response(
    code: ErrorCode,
    message: str,
    status: int | None = None,
    headers: dict[str, str] | None = None,
    retry_after_ms: int | None = None,
) -> Response:
    """The contract's error reply, with the headers its status calls for."""
    status = status or code.http_status
    headers = dict(headers or {})
    if status == 401:
        headers.setdefault("WWW-Authenticate", BEARER_CHALLENGE)
    if code is ErrorCode.RATE_LIMITED:
        seconds = math.ceil(retry_after_ms / 1000) if retry_after_ms else 1
        headers.setdefault("Retry-After", str(max(1, seconds)))
    body = {"error": {"code": code.value, "message": message}}
    return json_response(body, status, headers)


def chat_error_response(exc: ChatError) -> Response:
    return error_response(exc.code, exc.message, exc.status, retry_after_ms=exc.retry_after_ms)


def schema_error_message(error: Exception) -> str:
    """A readable sentence for a failed request-model validation."""
    if isinstance(error, ValidationError):
        errors: list[dict[str, Any]] = list(error.errors(include_url=False))  # type: ignore[arg-type]
        if any(not e.get("loc") and e.get("type") in _NOT_AN_OBJECT for e in errors):
            return "The request body must be a JSON object."
        return validation_message(errors)
    return "Invalid input: the request does not match what this endpoint expects."


def _http_error_response(exc: HTTPException) -> Response:
    status = exc.code or 500
    code = code_for_status(status)
    headers: dict[str, str] = {}
    if status == 405:
        allowed = sorted(getattr(exc, "valid_methods", None) or [])
        if allowed:
            headers["Allow"] = ", ".join(allowed)
        message = f"{request.method} is not allowed here" + (
            f"; use {', '.join(allowed)}." if allowed else "."
        )
    elif status == 413:
        limit = request.max_content_length
        message = (
            f"The request body is too large: at most {limit} bytes here."
            if limit
            else _MESSAGES[413]
        )
    elif status >= 500:
        message = _MESSAGES.get(status, INTERNAL_MESSAGE)
    else:
        message = _MESSAGES.get(status, "The request cannot be served as sent.")
    return error_response(code, message, status, headers)


def install_error_handlers(app: Quart) -> None:
    """Route every failure of `app` to the contract's error shape."""

    @app.errorhandler(ChatError)
    async def _chat_error(exc: ChatError) -> Response:
        return chat_error_response(exc)

    @app.errorhandler(RequestSchemaValidationError)
    async def _schema_error(exc: RequestSchemaValidationError) -> Response:
        return error_response(ErrorCode.BAD_REQUEST, schema_error_message(exc.validation_error))

    @app.errorhandler(HTTPException)
    async def _http_error(exc: HTTPException) -> Response | HTTPException:
        if exc.code is not None and exc.code < 400:  # redirects are answers, not errors
            return exc
        if exc.code == 500:
            # Quart turns an exception no handler took into InternalServerError; it has
            # already logged the original with its traceback.
            return error_response(ErrorCode.INTERNAL, INTERNAL_MESSAGE, 500)
        return _http_error_response(exc)

    @app.errorhandler(Exception)
    async def _unexpected(exc: Exception) -> Response:
        log.error("unexpected error answering %s %s", request.method, request.path, exc_info=exc)
        return error_response(ErrorCode.INTERNAL, INTERNAL_MESSAGE, 500)
