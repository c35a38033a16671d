"""Running the real `chatcore` command in tests, and the config of a node for it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from chatcore.testing.server import FAST_AUTH, to_toml


def chatcore_cli(
    *args: str, cwd: Path | None = None, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m chatcore ARGS...` in a fresh process, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "chatcore", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        input=stdin,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


def node_config(tmp_path: Path, name: str = "node.toml", **extra: Any) -> Path:
    """A server config in `tmp_path`: SQLite and media there, fast password hashing; `extra`
    sections replace the defaults'."""
    config = {
        "role": "server",
        "storage": {"url": f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}"},
        "media": {"url": f"file://{tmp_path / 'media'}"},
        "auth": {"secret": "s" * 40, **FAST_AUTH},
        **extra,
    }
    path = tmp_path / name
    path.write_text(to_toml(config))
    return path


#: A line of the text log format (`chatcore.logs`) below ERROR: `serve` logs INFO.
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING) ")


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single line a failed command printed: exit status not 0, no traceback, nothing
    on stderr but that line (log messages below ERROR aside)."""
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = [line for line in result.stderr.splitlines() if not LOG_LINE.match(line)]
    assert len(lines) == 1, result.stderr
    return lines[0]
