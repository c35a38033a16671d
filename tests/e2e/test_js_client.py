"""A client in another language, written only from docs/protocol.md, works against a real server:
`examples/js-client/chat.mjs` (Node, no dependencies)."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from chatcore.testing.server import TIMEOUT_SCALE, ServerProcess

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "js-client" / "chat.mjs"
NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="node is not installed (needs Node 20+ on PATH)")
async def test_the_javascript_client_passes_every_check(server: ServerProcess) -> None:
    """chat.mjs registers, opens a direct room, exchanges messages, retries a ref, syncs after
    a reconnect, and exits 0 with every check passed."""
    assert NODE is not None
    process = await asyncio.create_subprocess_exec(
        NODE,
        "--experimental-websocket",
        str(SCRIPT),
        server.base_url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60 * TIMEOUT_SCALE)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    output = stdout.decode(errors="replace")
    try:
        summary = json.loads(output)
    except ValueError:
        pytest.fail(f"chat.mjs printed no JSON summary:\n{output}\n{stderr.decode()}")
    assert process.returncode == 0 and summary["ok"] is True, json.dumps(summary, indent=2)
    assert summary["failed"] == [] and summary["passed"] >= 20
