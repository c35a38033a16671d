"""Configuration: one TOML file, overridden by `CHATCORE_SECTION__KEY` environment variables.

Loading happens in two steps, because plugins bring their own sections:
1. `read_config_file` reads the raw TOML, from which the engine learns the role it assembles
   (`role`, `config_role`), which extra plugins to load (`plugins`) and which to block
   (`disabled_plugins`);
2. `build_settings` validates the whole file against the core's sections plus every section
   contributed through `chatcore_settings_models`. Unknown keys are errors, and so are the
   sections of the other role (`ROLE_SECTIONS`: a client config has no `[storage]`).
Every failure is a `ConfigError` listing one line per bad key: `file: dotted.key: expected ...`.
"""

from __future__ import annotations

import os
import tomllib
import warnings
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Literal, TypeVar, cast, get_args
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretBytes,
    SecretStr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from chatcore.roles import Role

ENV_PREFIX = "CHATCORE_"
S = TypeVar("S", bound=BaseModel)


class ConfigError(Exception):
    """A config that cannot be used; `problems` holds one line per bad key."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {p}" for p in problems))


class ConfigWarning(UserWarning):
    """Advice on a config that works but should change (e.g. a short auth secret).

    A section's validator raises it with `warnings.warn(ConfigWarning("key: advice"))`;
    `build_settings` collects them into `Settings.advice` instead of letting them escape, so
    `chatcore check-config` prints them and a starting node logs them.
    """


class Section(BaseModel):
    """Base of every config section: unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


class ServerSettings(Section):
    """`[server]`: the node's HTTP listener (the REST API)."""

    host: str = Field("127.0.0.1", description="Address the REST API listens on.")
    port: int = Field(8080, ge=0, le=65535, description="Port of the REST API; 0 picks a free one.")
    public_url: str | None = Field(
        None,
        pattern=r"^https?://[^/\s]+/?$",
        description="Origin clients reach this node at (behind a proxy), e.g. https://chat.example.",
    )

    @property
    def origin(self) -> str:
        """`public_url` without a trailing slash, else `http://host:port`."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


class LimitsSettings(Section):
    """`[limits]`: sizes reported by /api/v1/info and enforced by every transport."""

    max_message_bytes: int = Field(
        16 * 1024, ge=1, le=16 * 1024 * 1024, description="Largest message body (UTF-8 bytes)."
    )
    max_frame_bytes: int | None = Field(
        None,
        description="Largest WebSocket frame either way (over it: close 1009). "
        "At least, and by default, max_message_bytes + 16 KiB.",
    )
    max_upload_bytes: int = Field(25 * 1024 * 1024, ge=1, description="Largest media upload.")
    max_sync_messages: int = Field(
        1000, ge=1, le=100_000, description="Messages per room in one catch-up `sync`."
    )

    @model_validator(mode="after")
    def _frame_fits_message(self) -> LimitsSettings:
        floor = self.max_message_bytes + 16 * 1024
        if self.max_frame_bytes is None:
            self.max_frame_bytes = floor
        elif self.max_frame_bytes < floor:
            raise ValueError(
                f"max_frame_bytes must be at least max_message_bytes + 16384 ({floor})"
            )
        return self

    @property
    def frame_bytes(self) -> int:
        return cast(int, self.max_frame_bytes)


class LoggingSettings(Section):
    """`[logging]`."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO",
        description="Log level of `chatcore serve` (any case). One-shot commands log warnings "
        "and errors only, unless run as `chatcore -v ...`.",
    )
    format: Literal["text", "json"] = Field(
        "text", description="`text` for people, `json` (one object a line) for log collectors."
    )

    @field_validator("level", mode="before")
    @classmethod
    def _any_case(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


class BackendSection(Section):
    """Base of the sections whose `url` picks a backend: `[storage]`, `[broker]`, `[media]`.

    A backend plugin's subclass names the URL schemes its backend serves in `url_schemes`, so
    that a URL no loaded plugin serves is a config error (`chatcore.server.backend_urls`) found
    without importing any backend; None (the default) says nothing, and turns that check off
    for the section. The subclass checks the rest of its URLs' form in its own validators.
    """

    url_schemes: ClassVar[tuple[str, ...] | None] = None


def names_host(url: str) -> bool:
    """True when `url` names a host, and a valid port if any: for `url` validators."""
    parts = urlsplit(url.strip())
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        return False
    return bool(parts.hostname)


class StorageSettings(BackendSection):
    """`[storage]`: base model; storage plugins subclass it to add their keys."""

    url: str = Field(
        "sqlite+aiosqlite:///./data/chat.db",
        description="SQLAlchemy URL: sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER@HOST/DB.",
    )


class BrokerSettings(BackendSection):
    """`[broker]`: base model; broker plugins subclass it to add their keys."""

    url: str = Field(
        "memory://", description="memory:// (one node), or redis://, nats:// for several nodes."
    )


class MediaSettings(BackendSection):
    """`[media]`: base model; media plugins subclass it to add their keys."""

    url: str = Field(
        "file://./data/media", description="An fsspec URL: file://, memory://, s3://BUCKET/PREFIX."
    )


class ClientSettings(Section):
    """`[client]`: the client role (the chat app): its server, and how it stays in touch."""

    server_url: str = Field(
        "http://127.0.0.1:8080",
        pattern=r"^https?://[^\s]+$",
        description="The chatcore server this app talks to.",
    )
    request_timeout_seconds: float = Field(
        30.0, gt=0, le=600, description="How long one REST request may take before it fails."
    )
    ping_interval_seconds: float = Field(
        15.0, gt=0, le=3600, description="How often the WebSocket is checked with a ping."
    )
    ping_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="A ping unanswered this long means the connection is dead: reconnect.",
    )
    reconnect_min_seconds: float = Field(
        0.5, gt=0, le=600, description="The first wait before a reconnect (doubled each failure)."
    )
    reconnect_max_seconds: float = Field(
        30.0, gt=0, le=3600, description="The longest wait between two reconnects."
    )
    send_window: int = Field(
        64, ge=1, le=10_000, description="Outbox sends in flight at once on one connection."
    )
    push_webhook_secret: SecretStr | None = Field(
        None,
        description="The server's [push_webhook] secret, when this app receives webhook pushes: "
        "their signature is checked with it.",
    )


class DeviceStoreSettings(Section):
    """`[device_store]`: the client's store on the device (offline history, outbox, settings)."""

    path: str = Field(
        "./data/client.db", min_length=1, description="File of the device store (SQLite)."
    )


class MediaCacheSettings(Section):
    """`[media_cache]`: where the client keeps the media it has downloaded, and how much."""

    path: str = Field(
        "./data/media-cache", min_length=1, description="Folder of the cached media files."
    )
    max_bytes: int = Field(
        512 * 1024 * 1024,
        ge=0,
        description="Total size of the cache; the least recently viewed files go first.",
    )
    max_file_bytes: int = Field(
        64 * 1024 * 1024, ge=0, description="A larger file is shown but not kept in the cache."
    )
    revalidate_after_seconds: float = Field(
        86_400.0,
        ge=0,
        description="A cached file older than this is checked with the server (ETag) when viewed.",
    )


class PresenceSettings(Section):
    """`[presence]`: how nodes of a cluster tell each other who is online."""

    heartbeat_seconds: float = Field(
        5.0, gt=0, le=3600, description="How often a node sends the others its online users."
    )
    ttl_seconds: float = Field(
        15.0,
        gt=0,
        le=86400,
        description="A node not heard from for this long is dead: its users count as offline.",
    )

    @model_validator(mode="after")
    def _ttl_outlasts_heartbeat(self) -> PresenceSettings:
        if self.ttl_seconds <= self.heartbeat_seconds:
            raise ValueError("ttl_seconds must be longer than heartbeat_seconds")
        return self


class PushSettings(Section):
    """`[push]`: pushes to the devices of members with no live session (docs/push.md)."""

    enabled: bool = Field(
        True,
        description="Send pushes when a push adapter is configured; false turns them off.",
    )
    send: bool = Field(
        True,
        description="This node sends pushes from the queue. False: it only queues them, for "
        "nodes that send (a push node beside the chat nodes; docs/deploy.md).",
    )
    privacy: Literal["preview", "id_only"] = Field(
        "preview",
        description="`preview`: pushes carry the sender, room name and the start of the text; "
        "`id_only`: only room id, message id and seq (the app fetches the message).",
    )
    preview_chars: int = Field(
        100, ge=0, le=1000, description="Characters of the text a preview push carries."
    )
    max_attempts: int = Field(8, ge=1, le=100, description="Tries per push before it is dropped.")
    retry_base_seconds: float = Field(
        2.0,
        gt=0,
        le=3600,
        description="Wait before the first retry; each further retry waits twice as long.",
    )
    retry_max_seconds: float = Field(
        600.0, gt=0, le=86400, description="Longest wait between two tries of a push."
    )
    expire_seconds: float = Field(
        86400.0,
        gt=0,
        le=30 * 86400,
        description="A push not sent this long after its message is dropped (stale news).",
    )
    concurrency: int = Field(32, ge=1, le=1024, description="Pushes a node sends at once.")
    poll_seconds: float = Field(
        1.0,
        gt=0,
        le=60,
        description="How often a node looks for due pushes (retries, pushes of a node that "
        "died); a node sends what it queued itself at once.",
    )
    lease_seconds: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="A push being sent by a node that died is sent again after this long; "
        "keep it above every adapter's timeout.",
    )


class RetentionSettings(Section):
    """`[retention]`: how long messages are kept (docs/protocol.md, Retention)."""

    default_days: int = Field(
        0,
        ge=0,
        le=36500,
        description="Messages older than this many days are deleted, in every room without a "
        "setting of its own; 0 keeps them forever.",
    )
    interval_seconds: float = Field(
        3600.0,
        gt=0,
        le=7 * 86400,
        description="How often the retention job runs (on one node of a cluster at a time).",
    )
    batch_size: int = Field(
        500,
        ge=1,
        le=10_000,
        description="Messages (or media) deleted per transaction: each batch is one short "
        "transaction, so sends are never held up for long.",
    )


#: Sections every config has a model for, whatever plugins are loaded.
CORE_SECTIONS: dict[str, type[BaseModel]] = {
    "server": ServerSettings,
    "limits": LimitsSettings,
    "logging": LoggingSettings,
    "storage": StorageSettings,
    "broker": BrokerSettings,
    "media": MediaSettings,
    "client": ClientSettings,
    "device_store": DeviceStoreSettings,
    "media_cache": MediaCacheSettings,
    "presence": PresenceSettings,
    "push": PushSettings,
    "retention": RetentionSettings,
}

#: The core's sections only one role reads: a config (or the environment) giving one of the
#: other role's is an error, so a client config never selects the server's backends. The rest
#: (`[limits]`, `[logging]`) are both roles'. Plugins' sections need no entry: a plugin of the
#: other role is not loaded, so its section is an unknown key.
ROLE_SECTIONS: dict[Role, tuple[str, ...]] = {
    "server": ("server", "storage", "broker", "media", "presence", "push", "retention"),
    "client": ("client", "device_store", "media_cache"),
}


class _EnvOverFile(BaseSettings):
    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's content arrives as init arguments; the environment wins over it.
        return (env_settings, init_settings)


class Settings(_EnvOverFile):
    """The validated configuration. Plugin sections are fields of a subclass made at load time;
    read them with `settings.section(name, Model)`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        case_sensitive=False,
        validate_default=True,
    )

    role: Role = "server"
    plugins: list[str] = Field(default_factory=list)
    disabled_plugins: list[str] = Field(default_factory=list)
    server: ServerSettings = Field(default_factory=ServerSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    media: MediaSettings = Field(default_factory=MediaSettings)
    client: ClientSettings = Field(default_factory=ClientSettings)
    device_store: DeviceStoreSettings = Field(default_factory=DeviceStoreSettings)
    media_cache: MediaCacheSettings = Field(default_factory=MediaCacheSettings)
    presence: PresenceSettings = Field(default_factory=PresenceSettings)
    push: PushSettings = Field(default_factory=PushSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)

    _advice: tuple[str, ...] = PrivateAttr(default=())

    @property
    def advice(self) -> tuple[str, ...]:
        """What `ConfigWarning`s validation raised, one line each (`key: advice`)."""
        return self._advice

    def section(self, name: str, model: type[S]) -> S:
        """The section `name`, checked to be (a subclass of) `model`."""
        value = getattr(self, name, None)
        if not isinstance(value, model):
            raise LookupError(f"config section [{name}] is not a {model.__name__}")
        return value


def read_config_file(path: str | os.PathLike[str] | None) -> dict[str, Any]:
    """The raw TOML of `path` (an empty config for None); ConfigError when unreadable."""
    if path is None:
        return {}
    source = str(path)
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(source, ["no such file"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [f"not valid TOML: {exc}"]) from None
    except OSError as exc:
        raise ConfigError(source, [f"cannot be read: {exc.strerror}"]) from None


def plugin_lists(raw: Mapping[str, Any], source: str) -> tuple[list[str], list[str]]:
    """`plugins` and `disabled_plugins` from the raw file, overridden by the environment."""
    given = {k: raw[k] for k in ("plugins", "disabled_plugins") if k in raw}
    try:
        lists = _PluginLists(**given)
    except ValidationError as exc:
        raise ConfigError(source, _problems(exc)) from None
    return lists.plugins, lists.disabled_plugins


class _PluginLists(_EnvOverFile):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")
    plugins: list[str] = Field(default_factory=list)
    disabled_plugins: list[str] = Field(default_factory=list)


def config_role(raw: Mapping[str, Any], source: str) -> Role:
    """`role` from the raw file, overridden by the environment: what the plugin host loads."""
    given = {"role": raw["role"]} if "role" in raw else {}
    try:
        return _RoleOnly(**given).role
    except ValidationError as exc:
        raise ConfigError(source, _problems(exc)) from None


class _RoleOnly(_EnvOverFile):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")
    role: Role = "server"


def settings_class(contributed: Iterable[tuple[str, type[BaseModel]]]) -> type[Settings]:
    """A Settings subclass with one field per section; models for one section are combined."""
    by_section: dict[str, list[type[BaseModel]]] = {}
    for name, model in [*CORE_SECTIONS.items(), *contributed]:
        models = by_section.setdefault(name, [])
        if model not in models:
            models.append(model)
    fields: dict[str, Any] = {}
    for name, models in by_section.items():
        model = models[0] if len(models) == 1 else _combine(name, models)
        fields[name] = (model, Field(default_factory=model))
    return create_model("ChatcoreSettings", __base__=Settings, **fields)


def _combine(name: str, models: list[type[BaseModel]]) -> type[BaseModel]:
    # Most derived first, so a plugin's subclass of a core base model comes before that base.
    bases = [m for m in models if not any(o is not m and issubclass(o, m) for o in models)]
    return cast(type[BaseModel], type(f"{name.title()}Section", tuple(bases), {}))


def build_settings(
    raw: Mapping[str, Any],
    contributed: Iterable[tuple[str, type[BaseModel]]] = (),
    source: str = "<config>",
) -> Settings:
    """Validate `raw` (the TOML) plus the environment against every known section."""
    cls = settings_class(contributed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConfigWarning)
        try:
            settings = cls(**raw)
        except ValidationError as exc:
            raise ConfigError(source, _problems(exc, cls)) from None
    others = _other_role_sections(settings)
    if others:
        raise ConfigError(source, others)
    advice = []
    for warning in caught:
        if issubclass(warning.category, ConfigWarning):
            advice.append(str(warning.message))
        else:  # not ours to keep: let it go on as it would have
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    settings._advice = tuple(advice)
    return settings


def _other_role_sections(settings: Settings) -> list[str]:
    """One problem per section given (in the file or the environment) of the other role."""
    return [
        f"{name}: a section of the {role} role, not of this config's role "
        f"({settings.role}: {', '.join(ROLE_SECTIONS[settings.role])} and the shared ones)"
        for role, names in ROLE_SECTIONS.items()
        if role != settings.role
        for name in names
        if name in settings.model_fields_set
    ]


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Load a config with only the core sections (no plugins): handy in scripts and tests."""
    return build_settings(read_config_file(path), source=str(path or "<defaults>"))


def _problems(exc: ValidationError, cls: type[BaseModel] | None = None) -> list[str]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err["loc"]]
        key = ".".join(loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(cls, loc[:-1]) if cls else []
            hint = f"; expected one of: {', '.join(allowed)}" if allowed else ""
            problems.append(f"{key}: unknown key{hint}")
            continue
        got = err.get("input")
        hidden = isinstance(got, dict) or got is None or (cls is not None and _secret(cls, loc))
        shown = "" if hidden else f" (got {_redacted(got)!r})"
        env = ENV_PREFIX + "__".join(loc).upper()
        origin = f" [from ${env}]" if env in os.environ else ""
        # A validator's ValueError reads "Value error, <its message>": the message is enough.
        message = err["msg"].removeprefix("Value error, ")
        problems.append(f"{key}: {message}{shown}{origin}")
    return problems


def _secret(cls: type[BaseModel], loc: list[str]) -> bool:
    """True when the key at `loc` holds a secret (SecretStr): its value is never shown."""
    model: Any = cls
    for part in loc:
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return False
        model = field.annotation
    kinds = get_args(model) or (model,)  # SecretStr | None: (SecretStr, NoneType)
    return any(isinstance(k, type) and issubclass(k, (SecretStr, SecretBytes)) for k in kinds)


def _redacted(value: Any) -> Any:
    """`value` with the password of a URL replaced: errors are printed and logged."""
    if isinstance(value, str) and "://" in value:
        try:
            password = urlsplit(value).password
        except ValueError:
            return value
        if password:
            return value.replace(f":{password}@", ":***@", 1)
    return value


def _allowed_keys(cls: type[BaseModel], path: list[str]) -> list[str]:
    model: Any = cls
    for part in path:
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        model = field.annotation
    return sorted(getattr(model, "model_fields", {}))
