"""The `chatcore` command line, run as a real process."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import chatcore_cli, node_config

import chatcore

PLUGIN_DIR = Path(__file__).resolve().parents[1] / "plugins"


def test_version():
    result = chatcore_cli("--version")
    assert result.returncode == 0
    assert chatcore.__version__ in result.stdout


def test_check_config_accepts_the_shipped_configs():
    root = Path(__file__).resolve().parents[2]
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
    upgraded = chatcore_cli("db", "upgrade", "--config", str(config))
    assert upgraded.returncode == 0, upgraded.stderr
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


# --- check-config: what can be known without connecting ------------------------------------


@pytest.mark.parametrize(
    ("toml", "key", "expected"),
    [
        ('[broker]\nurl = "redis:/oops"\n', "broker.url", "expected redis://HOST"),
        ('[broker]\nurl = "nats://a:4222,nats:/b"\n', "broker.url", "expected nats://HOST"),
        ('[broker]\nurl = "kafka://k:9092"\n', "broker.url", "no loaded plugin serves kafka://"),
        ('[storage]\nurl = "mysql://chat@db/chat"\n', "storage.url", "no loaded plugin serves"),
        ('[storage]\nurl = "postgresql://chat@db:x/chat"\n', "storage.url", "expected"),
    ],
)
def test_check_config_refuses_what_would_fail_at_start(tmp_path, toml, key, expected):
    bad = tmp_path / "bad.toml"
    bad.write_text(toml)
    result = chatcore_cli("check-config", str(bad))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{bad}: {key}: "), lines
    assert expected in lines[0]


def test_check_config_warns_of_a_short_secret_and_accepts_it(tmp_path):
    """Advice, not a refusal: the protocol's minimal file starts nodes with a placeholder."""
    config = tmp_path / "short.toml"
    config.write_text('[auth]\nsecret = "hunter2"\n')
    result = chatcore_cli("check-config", str(config))
    assert result.returncode == 0, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"{config}: warning: auth.secret: 7 bytes;"), line
    assert "at least 32" in line and "hunter2" not in line


def test_config_errors_show_no_secret(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[auth]\nsecret = ""\n[storage]\nurl = "postgresql://u:pw9@h:x/db"\n')
    result = chatcore_cli("check-config", str(bad))
    assert result.returncode == 2
    assert "auth.secret" in result.stderr and "storage.url" in result.stderr
    assert "pw9" not in result.stderr


def test_check_config_accepts_a_log_level_in_any_case(tmp_path):
    config = node_config(tmp_path, logging={"level": "debug"})
    result = chatcore_cli("check-config", str(config))
    assert result.returncode == 0, result.stderr


# --- one-shot commands are quiet; `chatcore -v` is not --------------------------------------


def test_one_shot_commands_log_warnings_only_unless_verbose(tmp_path):
    config = node_config(tmp_path)
    upgraded = chatcore_cli("db", "upgrade", "--config", str(config))
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stderr == ""
    quiet = chatcore_cli("user", "list", "--config", str(config))
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    verbose = chatcore_cli("-v", "user", "list", "--config", str(config))
    assert verbose.returncode == 0, verbose.stderr
    assert " INFO chatcore" in verbose.stderr


# --- finding the config (and the commands of the plugins it names) ----------------------------


def test_config_before_the_command_names_plugin_commands(tmp_path):
    config = node_config(tmp_path, plugins=["sample_plugin"], sample={"greeting": "ahoy"})
    env = {"PYTHONPATH": str(PLUGIN_DIR)}
    listed = chatcore_cli("--config", str(config), "--help", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "sample-hello" in listed.stdout
    helped = chatcore_cli("--config", str(config), "sample-hello", "--help", env=env)
    assert helped.returncode == 0, helped.stderr
    assert "Print the configured greeting" in helped.stdout
    ran = chatcore_cli("--config", str(config), "sample-hello", env=env)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "ahoy"
    from_env = chatcore_cli("sample-hello", env={**env, "CHATCORE_CONFIG": str(config)})
    assert from_env.returncode == 0, from_env.stderr
    assert from_env.stdout.strip() == "ahoy"


def test_config_before_the_command_reaches_core_and_plugin_commands(tmp_path):
    config = node_config(tmp_path)
    upgraded = chatcore_cli("--config", str(config), "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert (tmp_path / "chat.db").exists()
    listed = chatcore_cli("--config", str(config), "user", "list")
    assert listed.returncode == 0, listed.stderr


def test_a_config_after_the_command_wins_over_one_before(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = node_config(tmp_path / "a", sample={"greeting": "from a"}, plugins=["sample_plugin"])
    second = node_config(tmp_path / "b", sample={"greeting": "from b"}, plugins=["sample_plugin"])
    env = {"PYTHONPATH": str(PLUGIN_DIR)}
    result = chatcore_cli("--config", str(first), "sample-hello", "--config", str(second), env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "from b"


def test_an_unknown_command_says_how_plugin_commands_are_found(tmp_path):
    result = chatcore_cli("sample-hello", env={"PYTHONPATH": str(PLUGIN_DIR)})
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert lines[-2] == "Error: No such command 'sample-hello'."
    assert lines[-1] == (
        "(commands from plugins named in a config need: chatcore --config FILE CMD, "
        "or CHATCORE_CONFIG=FILE)"
    )
