"""The test harness itself: a first start whose port was taken meanwhile moves to fresh ports."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx

from chatcore.testing.server import ServerProcess, server_config


def test_a_first_start_moves_to_fresh_ports_when_its_port_is_taken(tmp_path: Path) -> None:
    """The race `free_port` cannot rule out: the port the harness picked is taken before the
    server binds it."""
    config = server_config(tmp_path)
    picked = config["server"]["port"]
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", picked))
        squatter.listen()
        server = ServerProcess(tmp_path, config)
        try:
            server.start()
            assert server.config["server"]["port"] != picked
            assert httpx.get(server.base_url + "/healthz", timeout=5).status_code == 200
            assert "address in use" in server.output()  # the first try did meet the squatter
        finally:
            server.stop()
