"""Configuration: the contract's minimal file, env overrides, and errors naming the key."""

from __future__ import annotations

import textwrap

import pytest
from pydantic import BaseModel

from chatcore.server.app import App
from chatcore.settings import (
    BrokerSettings,
    ConfigError,
    Section,
    build_settings,
    read_config_file,
)

# The minimal file of docs/protocol.md ("Running a server"), verbatim.
MINIMAL = textwrap.dedent(
    """
    role = "server"
    [server]
    host = "127.0.0.1"
    port = 8080            # REST API
    [websocket]
    host = "127.0.0.1"
    port = 8081            # the WebSocket server; /api/v1/info reports its URL as ws_url
    [storage]
    url = "sqlite+aiosqlite:///./data/chat.db"    # or postgresql+asyncpg://...
    [media]
    url = "file://./data/media"                   # or memory://, s3://bucket/prefix, any fsspec URL
    [broker]
    url = "memory://"                             # or redis://..., nats://...
    [auth]
    secret = "..."                                # or the environment variable CHATCORE_AUTH__SECRET
    """  # noqa: E501
)


def write(tmp_path, text: str):
    path = tmp_path / "chat.toml"
    path.write_text(text)
    return path


def test_the_minimal_file_of_the_contract_works_as_written(tmp_path):
    app = App.from_config(write(tmp_path, MINIMAL))
    assert app.settings.server.port == 8080
    assert app.settings.storage.url == "sqlite+aiosqlite:///./data/chat.db"
    assert app.settings.broker.url == "memory://"
    assert app.settings.limits.frame_bytes >= app.settings.limits.max_message_bytes + 16 * 1024


def test_environment_overrides_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("CHATCORE_SERVER__PORT", "9123")
    monkeypatch.setenv("CHATCORE_STORAGE__URL", "sqlite+aiosqlite:///other.db")
    app = App.from_config(write(tmp_path, MINIMAL))
    assert app.settings.server.port == 9123
    assert app.settings.storage.url == "sqlite+aiosqlite:///other.db"


def test_a_bad_environment_value_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("CHATCORE_SERVER__PORT", "eighty")
    with pytest.raises(ConfigError) as err:
        App.from_config(write(tmp_path, MINIMAL))
    assert "server.port" in str(err.value)
    assert "$CHATCORE_SERVER__PORT" in str(err.value)


def test_errors_name_the_file_the_dotted_key_and_the_expectation(tmp_path):
    path = write(tmp_path, MINIMAL.replace("port = 8080", 'port = "x"').replace(
        "[broker]", "[broker]\nurll = 1"
    ) + "\n[nosuch]\na = 1\n")
    with pytest.raises(ConfigError) as err:
        App.from_config(path)
    lines = str(err.value).splitlines()
    assert any(line.startswith(f"{path}: server.port: ") and "integer" in line for line in lines)
    assert any(f"{path}: broker.urll: unknown key; expected one of: " in line for line in lines)
    assert any(f"{path}: nosuch: unknown key" in line for line in lines)


def test_out_of_range_values_are_rejected():
    with pytest.raises(ConfigError, match=r"server\.port: Input should be less than or equal"):
        build_settings({"server": {"port": 70000}})
    with pytest.raises(ConfigError, match="max_frame_bytes must be at least"):
        build_settings({"limits": {"max_message_bytes": 1000, "max_frame_bytes": 2000}})


def test_unreadable_files_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        read_config_file(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        read_config_file(write(tmp_path, "role = \n"))


def test_plugin_sections_for_one_area_are_combined():
    class RedisBroker(BrokerSettings):
        presence_ttl: int = 30

    class NatsBroker(BrokerSettings):
        subject_prefix: str = "chat"

    contributed = [("broker", RedisBroker), ("broker", NatsBroker)]
    settings = build_settings({"broker": {"url": "redis://x", "presence_ttl": 5}}, contributed)
    assert settings.broker.url == "redis://x"
    assert settings.broker.presence_ttl == 5  # type: ignore[attr-defined]
    assert settings.broker.subject_prefix == "chat"  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=r"broker\.nope: unknown key"):
        build_settings({"broker": {"nope": 1}}, contributed)


def test_a_plugin_section_is_validated_by_its_model():
    class Greeter(Section):
        greeting: str = "hi"
        times: int = 1

    settings = build_settings({"greeter": {"times": 3}}, [("greeter", Greeter)])
    assert settings.section("greeter", Greeter).times == 3
    with pytest.raises(ConfigError, match=r"greeter\.times: Input should be a valid integer"):
        build_settings({"greeter": {"times": "many"}}, [("greeter", Greeter)])
    with pytest.raises(LookupError):
        settings.section("greeter", BaseModel.__class__)  # type: ignore[arg-type]
