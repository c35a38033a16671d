"""Request and response models of the built-in endpoints (validation and the OpenAPI document).

Request bodies are lenient where the contract's rules live in `chatcore.accounts` (usernames,
passwords, display names): the models only demand an object with the right fields of the right
JSON types, and the account rules answer with their own messages. The constraints still appear
in the document, as `json_schema_extra`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, RootModel

from chatcore.accounts import DISPLAY_NAME_MAX, PASSWORD_MAX, PASSWORD_MIN, SEARCH_LIMIT_MAX
from chatcore.errors import ErrorCode
from chatcore.models import TokenPair, User

#: What pydantic accepts as `json_schema_extra`.
JsonDict = dict[str, JsonValue]

__all__ = [
    "ErrorBody",
    "Health",
    "Info",
    "LoginRequest",
    "RefreshRequest",
    "RegisterRequest",
    "Registered",
    "TokenPair",
    "User",
    "UserSearch",
    "UserSettings",
    "Users",
]

_USERNAME_DOC: JsonDict = {"pattern": "^[A-Za-z0-9_.-]{3,32}$"}
_PASSWORD_DOC: JsonDict = {"minLength": PASSWORD_MIN, "maxLength": PASSWORD_MAX}


# --- requests ---------------------------------------------------------------------------------


class RegisterRequest(BaseModel):
    """A new account."""

    username: str = Field(
        json_schema_extra=_USERNAME_DOC,
        description="Unique, matched case-insensitively; keeps the case given here.",
    )
    password: str = Field(json_schema_extra=_PASSWORD_DOC)
    display_name: str | None = Field(
        None,
        json_schema_extra={"maxLength": DISPLAY_NAME_MAX},
        description="Shown instead of the username; defaults to it.",
    )


class LoginRequest(BaseModel):
    """A username and its password."""

    username: str
    password: str


class RefreshRequest(BaseModel):
    """A refresh token; each works once."""

    refresh_token: str


class UserSearch(BaseModel):
    """Query of `GET /users`."""

    q: str = Field(description="Prefix of a username or display name, case-insensitive.")
    limit: int | None = Field(
        None, description=f"At most this many users; clamped to 1..{SEARCH_LIMIT_MAX}."
    )


# --- responses --------------------------------------------------------------------------------


class Registered(BaseModel):
    """The new user."""

    user: User


class Users(BaseModel):
    """Users ordered by username."""

    users: list[User]


class Limits(BaseModel):
    max_message_bytes: int
    max_frame_bytes: int
    max_upload_bytes: int
    max_sync_messages: int


class Info(BaseModel):
    """What a client needs to know before it connects."""

    name: Literal["chatcore"]
    version: str
    ws_url: str | None = Field(description="The absolute URL of the WebSocket server.")
    limits: Limits
    features: list[str]


class Health(BaseModel):
    """The node can serve."""

    status: Literal["ok"]


class UserSettings(RootModel[dict[str, Any]]):
    """The caller's settings: one JSON object, shaped by the clients."""


class ErrorDetail(BaseModel):
    code: ErrorCode
    message: str = Field(description="A sentence a person can act on.")


class ErrorBody(BaseModel):
    """An error."""

    model_config = ConfigDict(title="Error")

    error: ErrorDetail
