"""Start `chatcore serve` as a real process on free loopback ports and wait until it serves.

    with start_server(tmp_path, overrides={"limits": {"max_message_bytes": 1000}}) as server:
        httpx.get(server.api + "/info")

Every start writes a config file into its own folder (storage, media and auth secret live
there too), so tests never share state unless they share a folder on purpose.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

#: Cheap password hashing for tests (production defaults are far higher), and no per-address
#: login limit, since every test client logs in from 127.0.0.1.
FAST_AUTH = {
    "hash_time_cost": 1,
    "hash_memory_kib": 1024,
    "hash_parallelism": 1,
    "login_attempts_per_address": 1_000_000,
}
#: First starts that may move to fresh ports when theirs was taken meanwhile (see `start`).
PORT_ATTEMPTS = 3
TIMEOUT_SCALE = float(os.environ.get("CHATCORE_TEST_TIMEOUT_SCALE", "1"))


#: Where test servers listen: below the ephemeral range, so that no outgoing connection (a test's
#: HTTP client, a node's Redis connection) can take a killed server's port before its restart.
LISTEN_PORTS = range(20_000, 32_768)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, outside the ephemeral range
    (`LISTEN_PORTS`) when one is free there."""
    lowest_ephemeral = _lowest_ephemeral_port()
    candidates = [p for p in LISTEN_PORTS if p < lowest_ephemeral]
    for port in random.sample(candidates, min(50, len(candidates))):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # crowded: any port the system gives
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _lowest_ephemeral_port() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default; elsewhere 49152, above LISTEN_PORTS anyway


#: Ports `server_config` picked (not a test's own choice): a first start may move off them.
_PICKED: set[int] = set()


def picked_port() -> int:
    """`free_port`, remembered as picked by the harness (see `ServerProcess.start`)."""
    port = free_port()
    _PICKED.add(port)
    return port


def to_toml(data: Mapping[str, Any]) -> str:
    """A small TOML writer for configs: tables of scalars and lists of scalars."""
    lines: list[str] = []
    tables: list[tuple[str, Mapping[str, Any]]] = []
    for key, value in data.items():
        if isinstance(value, Mapping):
            tables.append((key, value))
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    for name, table in tables:
        lines.append(f"\n[{name}]")
        for key, value in table.items():
            if isinstance(value, Mapping):
                raise ValueError("nested tables below a section are not supported")
            lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def server_config(folder: Path, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A config for a test node whose state lives in `folder`, on fresh loopback ports."""
    config: dict[str, Any] = {
        "role": "server",
        "server": {"host": "127.0.0.1", "port": picked_port()},
        "websocket": {"host": "127.0.0.1", "port": picked_port()},
        "storage": {"url": f"sqlite+aiosqlite:///{folder / 'chat.db'}"},
        "media": {"url": f"file://{folder / 'media'}"},
        "broker": {"url": "memory://"},
        "auth": {"secret": "test-secret-" + "x" * 40, **FAST_AUTH},
    }
    for key, value in (overrides or {}).items():
        if isinstance(value, Mapping) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


class ServerProcess:
    """A running `chatcore serve` process and where to reach it."""

    def __init__(self, folder: Path, config: dict[str, Any], env: Mapping[str, str] | None = None):
        self.folder = folder
        self.config = config
        self.config_path = folder / "server.toml"
        self.config_path.write_text(to_toml(config))
        self._address()
        self.log_path = folder / "server.log"
        self._env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None
        self._started_once = False

    def _address(self) -> None:
        server = self.config["server"]
        self.base_url = f"http://{server['host']}:{server['port']}"
        self.api = self.base_url + "/api/v1"
        ws = self.config.get("websocket", {})
        self.ws_url = f"ws://{ws.get('host', '127.0.0.1')}:{ws.get('port', 8081)}"

    def start(self, timeout: float = 30) -> ServerProcess:
        """Start the process and wait until it serves.

        `free_port` can only say a port was free a moment ago: another process (any client's
        outgoing connection takes a port from the same range) may take it before the server
        binds it. A first start that finds its port taken therefore moves to fresh ports and
        tries again; a restart keeps its ports (clients come back to the same address).
        """
        for attempt in range(PORT_ATTEMPTS):
            log = open(self.log_path, "ab")  # the child gets its own copy of the descriptor
            self.process = subprocess.Popen(
                [sys.executable, "-m", "chatcore", "serve", "--config", str(self.config_path)],
                cwd=self.folder,
                env=self._env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            log.close()
            try:
                self.wait_ready(timeout * TIMEOUT_SCALE)
            except RuntimeError as exc:
                lost_port = "address in use" in str(exc) or "Address already in use" in str(exc)
                ours = [
                    section
                    for section in ("server", "websocket")
                    if self.config.get(section, {}).get("port") in _PICKED
                ]
                if self._started_once or not lost_port or not ours:
                    raise
                if attempt == PORT_ATTEMPTS - 1:
                    raise
                for section in ours:
                    self.config[section]["port"] = picked_port()
                self.config_path.write_text(to_toml(self.config))
                self._address()
                continue
            self._started_once = True
            return self
        raise AssertionError("unreachable")

    def wait_ready(self, timeout: float) -> None:
        """Poll /healthz until 200; fail with the server's log if it exits or times out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                code = self.process.returncode
                raise RuntimeError(f"server exited with {code}:\n{self.output()}")
            try:
                if httpx.get(self.base_url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)  # polling a process we do not control; bounded by the deadline
        self.kill()
        raise TimeoutError(f"server not ready after {timeout}s:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        """Send `sig` and wait for the exit; return the exit code."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout * TIMEOUT_SCALE)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def kill(self) -> int:
        return self.stop(signal.SIGKILL)


@contextmanager
def start_server(
    folder: Path,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[ServerProcess]:
    """Run a node for the duration of a `with` block; it is stopped (SIGTERM) at the end."""
    folder.mkdir(parents=True, exist_ok=True)
    server = ServerProcess(folder, server_config(folder, overrides), env).start()
    try:
        yield server
    finally:
        server.stop()
