"""`pip install chatcore` without extras, in a fresh venv: every command works, a server runs on
the embedded defaults, and a config selecting a backend whose extra is missing stops with one
line naming the extra.

One venv for the module, shared by the pytest-xdist workers that run its tests: the wheel built
from this tree, installed with the versions the lock (requirements/serve.txt) pins. About 10 s
with pip's cache warm, most of it pip.
"""

from __future__ import annotations

import fcntl
import os
import queue
import re
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

import chatcore
from chatcore.testing.server import to_toml

pytestmark = pytest.mark.timeout(600)  # the venv is made in the first test's setup

ROOT = Path(__file__).resolve().parents[2]
#: What the extras bring; none of it may be in the base install, or these tests prove nothing.
OPTIONAL_MODULES = ("asyncpg", "redis", "nats", "s3fs", "pywebpush", "httpx", "cryptography")
SECRET = "s" * 40


def locked_pins(lock: Path) -> str:
    """The `name==version ; marker` lines of a pip-compile lock, without hashes or comments."""
    pins = []
    for line in lock.read_text().splitlines():
        if line and not line[0].isspace() and not line.startswith(("#", "-")):
            pins.append(line.removesuffix("\\").strip())
    return "\n".join(pins) + "\n"


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's directory, above each worker's own
    work = root / "base-install"
    with open(root / "base-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the first worker builds, the others wait for it
        if not (work / "ready").exists():
            _build_venv(work)
            (work / "ready").touch()
    return work / "venv"


def _build_venv(work: Path) -> None:
    work.mkdir(exist_ok=True)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    wheels = work / "wheels"
    build = [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(ROOT)]
    subprocess.run(build, check=True, timeout=300)
    (wheel,) = wheels.glob("chatcore-*.whl")
    constraints = work / "constraints.txt"
    constraints.write_text(locked_pins(ROOT / "requirements" / "serve.txt"))
    venv = work / "venv"
    # The venv gets no pip of its own: this pip installs into it (`--python`), and skips
    # byte-compiling (each module compiles on first import): 8 s instead of 30 s.
    venv_cmd = [sys.executable, "-m", "venv", "--without-pip", str(venv)]
    subprocess.run(venv_cmd, check=True, timeout=120)
    target = ["--python", str(venv / "bin" / "python"), "install", "--no-compile"]
    install = [*pip, *target, "-c", str(constraints)]
    subprocess.run([*install, str(wheel)], check=True, timeout=480, env=_clean_env())


def _clean_env() -> dict[str, str]:
    # Nothing of the test run's own environment: no config, no path to this source tree.
    return {k: v for k, v in os.environ.items() if not k.startswith(("CHATCORE_", "PYTHON"))}


def chatcore_cli(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [str(venv / "bin" / "chatcore"), *args]
    return subprocess.run(
        command, capture_output=True, text=True, cwd=cwd, env=_clean_env(), timeout=60
    )


def write_config(tmp_path: Path, **sections: object) -> Path:
    config = {
        "storage": {"url": f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}"},
        "media": {"url": f"file://{tmp_path / 'media'}"},
        "auth": {"secret": SECRET},
        **sections,
    }
    path = tmp_path / "node.toml"
    path.write_text(to_toml(config))
    return path


def test_the_base_install_has_none_of_the_optional_packages(venv, tmp_path):
    probe = "import importlib.util as u, sys; print([m for m in sys.argv[1:] if u.find_spec(m)])"
    found = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe, *OPTIONAL_MODULES],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env=_clean_env(),
    )
    assert found.stdout.strip() == "[]"


def test_version_and_help_list_every_command(venv, tmp_path):
    version = chatcore_cli(venv, "--version", cwd=tmp_path)
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"chatcore, version {chatcore.__version__}"
    usage = chatcore_cli(venv, "--help", cwd=tmp_path)
    assert usage.returncode == 0, usage.stderr
    for command in ("serve", "check-config", "plugins", "user", "db", "push", "stickers"):
        assert re.search(rf"^  {command}\s", usage.stdout, re.MULTILINE), usage.stdout
    # Plugin commands are there, though what they need is not installed.
    assert "vapid-keys" in chatcore_cli(venv, "push", "--help", cwd=tmp_path).stdout
    assert "upgrade" in chatcore_cli(venv, "db", "--help", cwd=tmp_path).stdout


def test_plugins_lists_each_backend_with_the_extra_it_needs(venv, tmp_path):
    result = chatcore_cli(venv, "plugins", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "chatcore_redis  [entry point (chatcore " in result.stdout  # loaded, all the same
    for plugin, extra in [
        ("chatcore_sql", "postgres"),
        ("chatcore_redis", "redis"),
        ("chatcore_nats", "nats"),
        ("chatcore_fsspec", "s3"),
        ("chatcore_webpush", "webpush"),
        ("chatcore_fcm", "fcm"),
        ("chatcore_apns", "apns"),
        ("chatcore_push_webhook", "push-webhook"),
    ]:
        line = re.search(rf"^  {plugin}: .* needs .*$", result.stdout, re.MULTILINE)
        assert line, result.stdout
        assert line.group().endswith(f"pip install 'chatcore[{extra}]'")
    assert "Skipped" not in result.stdout  # no built-in fails to import


def test_check_config_accepts_the_shipped_server_config(venv, tmp_path):
    result = chatcore_cli(venv, "check-config", str(ROOT / "config" / "server.toml"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


def test_a_config_selecting_redis_fails_with_one_line_naming_the_extra(venv, tmp_path):
    config = write_config(tmp_path, broker={"url": "redis://127.0.0.1:6379/0"})
    upgraded = chatcore_cli(venv, "db", "upgrade", "--config", str(config), cwd=tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr  # the storage needs no extra
    result = chatcore_cli(venv, "user", "list", "--config", str(config), cwd=tmp_path)
    assert result.returncode != 0
    assert result.stderr.splitlines() == [
        "error: the Redis broker needs the redis package: pip install 'chatcore[redis]'"
    ]
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("sections", "command", "extra"),
    [
        ({"broker": {"url": "nats://127.0.0.1:4222"}}, ["serve"], "nats"),
        (
            {"storage": {"url": "postgresql+asyncpg://postgres@127.0.0.1/test"}},
            ["db", "upgrade"],
            "postgres",
        ),
        ({"media": {"url": "s3://bucket/prefix"}}, ["serve"], "s3"),
        (
            {"webpush": {"vapid_private_key": "x", "vapid_subject": "mailto:ops@example.com"}},
            ["check-config"],
            "webpush",
        ),
        (
            {"apns": {"key": "x", "key_id": "ABCDE12345", "team_id": "TEAM123456", "topic": "a.b"}},
            ["check-config"],
            "apns",
        ),
        ({"fcm": {"service_account_json": "{}"}}, ["check-config"], "fcm"),
        ({"push_webhook": {"secret": SECRET}}, ["serve"], "push-webhook"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_each_backend_selected_without_its_extra_stops_with_one_line(
    venv, tmp_path, sections, command, extra
):
    config = write_config(tmp_path, server={"port": 0}, websocket={"port": 0}, **sections)
    where = [str(config)] if command == ["check-config"] else ["--config", str(config)]
    result = chatcore_cli(venv, *command, *where, cwd=tmp_path)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if " INFO " not in line]
    assert len(errors) == 1, result.stderr  # `serve` logs its start-up (INFO) before failing
    assert errors[0].lower().startswith("error: ")
    assert errors[0].endswith(f"pip install 'chatcore[{extra}]'")
    assert "Traceback" not in result.stderr


def test_the_vapid_keys_command_names_its_extra(venv, tmp_path):
    result = chatcore_cli(venv, "push", "vapid-keys", cwd=tmp_path)
    assert result.returncode != 0
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.strip().endswith("pip install 'chatcore[webpush]'")


def test_the_client_commands_name_their_extra(venv, tmp_path):
    result = chatcore_cli(venv, "client", "rooms", cwd=tmp_path)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "error: the client role needs the httpx package: pip install 'chatcore[client]'"
    ], result.stderr


def test_the_base_install_serves_on_the_embedded_defaults(venv, tmp_path):
    """SQLite, file media, the memory broker, no push: the defaults, but on free ports."""
    config = tmp_path / "node.toml"
    config.write_text(to_toml({"server": {"port": 0}, "websocket": {"port": 0}}))
    command = [str(venv / "bin" / "chatcore"), "serve", "--config", str(config)]
    lines: queue.Queue[str] = queue.Queue()
    with subprocess.Popen(
        command, cwd=tmp_path, env=_clean_env(), stderr=subprocess.PIPE, text=True
    ) as server:
        reader = threading.Thread(target=_read_lines, args=(server, lines), daemon=True)
        reader.start()
        try:
            url = _wait_for_rest_url(lines, server, timeout=60)
            with urllib.request.urlopen(f"{url}/healthz", timeout=10) as response:
                assert response.status == 200
            with urllib.request.urlopen(f"{url}/api/v1/info", timeout=10) as response:
                assert b'"ws_url":"ws://127.0.0.1:' in response.read()
        finally:
            server.terminate()
            stopped = server.wait(timeout=30)
            reader.join(timeout=30)  # it ends at the pipe's end, before the pipe is closed
    assert stopped == 0
    assert (tmp_path / "data" / "chat.db").is_file()


def _read_lines(server: subprocess.Popen[str], into: queue.Queue[str]) -> None:
    for line in server.stderr or ():
        into.put(line)


def _wait_for_rest_url(
    lines: queue.Queue[str], server: subprocess.Popen[str], timeout: float
) -> str:
    deadline = time.monotonic() + timeout
    seen = []
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        seen.append(line)
        found = re.search(r"rest listening on (http://\S+)", line)
        if found:
            return found.group(1)
    server.kill()
    pytest.fail("the server did not report its REST URL:\n" + "".join(seen))
