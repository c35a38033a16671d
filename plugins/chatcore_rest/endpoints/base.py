"""What the endpoint areas share: the URL prefix, the `Area` each exports, and request helpers.

Authentication (`chatcore_rest.auth`), JSON replies (`chatcore_rest.jsonio`), error replies
(`chatcore_rest.errors`) and the OpenAPI notes (`chatcore_rest.openapi`) have modules of their
own, used by plugin routes too; this module holds only what the built-in views need on top.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError
from quart import request
from quart_schema import RequestSchemaValidationError

from chatcore.errors import bad_request

if TYPE_CHECKING:
    from chatcore.server.app import App
    from chatcore.settings import LimitsSettings
    from chatcore_rest.request import BodyLimit, ChatRequest

__all__ = ["API_PREFIX", "Area", "RouteTable", "client_address", "json_object", "validated"]

API_PREFIX = "/api/v1"

#: (method, Quart rule, view); each view's name is its endpoint and its OpenAPI operation id.
RouteTable = list[tuple[str, str, Callable[..., Any]]]

M = TypeVar("M", bound=BaseModel)


def _always(app: App) -> bool:
    return True


def _no_body_limits(limits: LimitsSettings) -> list[BodyLimit]:
    return []


@dataclass(frozen=True)
class Area:
    """One area of the built-in endpoints, as the application mounts it.

    `features` are what /api/v1/info reports while the area is mounted; `available` says
    whether a node mounts it at all; `body_limits` are its routes whose body may exceed the
    app's JSON limit.
    """

    routes: RouteTable
    features: tuple[str, ...] = ()
    available: Callable[[App], bool] = _always
    body_limits: Callable[[LimitsSettings], list[BodyLimit]] = _no_body_limits


def client_address() -> str | None:
    """The address of the current request's client (behind trusted proxies, the forwarded one)."""
    req: ChatRequest = request  # type: ignore[assignment]
    return req.client_address


async def json_object() -> dict[str, Any]:
    """The current request's body, which must be a JSON object (`bad_request` otherwise)."""
    data = await request.get_json()
    if not isinstance(data, dict):
        raise bad_request("The request body must be a JSON object.")
    return data


def validated(model: type[M], data: Any) -> M:
    """`data` as `model`; answered like any body that fails its model (400 `bad_request`)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestSchemaValidationError(exc) from None
