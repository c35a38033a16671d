"""The `chatcore` command line, run as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import chatcore
from chatcore.testing.server import FAST_AUTH, to_toml

PLUGIN_DIR = Path(__file__).parent / "plugins"


def chatcore_cli(*args: str, cwd: Path | None = None, stdin: str | None = None, env=None):
    return subprocess.run(
        [sys.executable, "-m", "chatcore", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        input=stdin,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


def node_config(tmp_path: Path, **extra) -> Path:
    config = {
        "role": "server",
        "storage": {"url": f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}"},
        "media": {"url": f"file://{tmp_path / 'media'}"},
        "auth": {"secret": "s" * 40, **FAST_AUTH},
        **extra,
    }
    path = tmp_path / "node.toml"
    path.write_text(to_toml(config))
    return path


def test_version():
    result = chatcore_cli("--version")
    assert result.returncode == 0
    assert chatcore.__version__ in result.stdout


def test_check_config_accepts_the_shipped_configs():
    root = Path(__file__).parent.parent
    for name in ("server.toml", "client.toml", "cluster.toml"):
        result = chatcore_cli("check-config", str(root / "config" / name))
        assert result.returncode == 0, result.stderr
        assert "ok" in result.stdout


def test_check_config_names_each_bad_key_without_a_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('role = "server"\n[server]\nport = "x"\nhots = "a"\n')
    result = chatcore_cli("check-config", str(bad))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert any(line.startswith(f"{bad}: server.port: ") for line in lines), lines
    assert any(line.startswith(f"{bad}: server.hots: unknown key") for line in lines), lines
    assert "Traceback" not in result.stderr + result.stdout


def test_serve_with_a_broken_config_exits_before_listening(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('role = "server"\n[storage]\nurl = 5\n')
    result = chatcore_cli("serve", "--config", str(bad))
    assert result.returncode != 0
    assert f"{bad}: storage.url: " in result.stderr
    assert "Traceback" not in result.stderr


def test_plugins_lists_a_config_plugin_with_its_hooks(tmp_path):
    config = node_config(tmp_path, plugins=["sample_plugin"])
    result = chatcore_cli("plugins", "--config", str(config), env={"PYTHONPATH": str(PLUGIN_DIR)})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "sample_plugin  [config]" in out
    assert "chatcore_register_routes" in out
    assert "chatcore_sql  [entry point" in out


def test_a_plugin_adds_a_command_that_reads_its_config_section(tmp_path):
    config = node_config(tmp_path, plugins=["sample_plugin"], sample={"greeting": "ahoy"})
    env = {"PYTHONPATH": str(PLUGIN_DIR)}
    result = chatcore_cli("sample-hello", "--config", str(config), env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ahoy"


def test_user_create_and_list(tmp_path):
    config = node_config(tmp_path)
    created = chatcore_cli(
        "user", "create", "Alice", "--password-stdin", "--config", str(config),
        stdin="correct horse battery\n",
    )
    assert created.returncode == 0, created.stderr
    assert "created Alice" in created.stdout
    again = chatcore_cli(
        "user", "create", "alice", "--password-stdin", "--config", str(config), stdin="x" * 9
    )
    assert again.returncode != 0
    assert "taken" in again.stderr.lower() or "exists" in again.stderr.lower()
    short = chatcore_cli(
        "user", "create", "bob", "--password-stdin", "--config", str(config), stdin="short\n"
    )
    assert short.returncode != 0
    assert "8 to 1024" in short.stderr
    listed = chatcore_cli("user", "list", "--config", str(config))
    assert listed.returncode == 0, listed.stderr
    assert "Alice" in listed.stdout and "bob" not in listed.stdout
