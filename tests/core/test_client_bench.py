"""bench/client_bench.py runs end to end (tiny sizes): every scenario prints a figure.

No timing is asserted here: the benchmark's figures are read by people, in
docs/performance.md. This only keeps the benchmark, its idle-client process and what they use
of the engine and the test server working.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e

#: The start of each scenario's row, and the unit its figure is in.
SCENARIOS = {
    "1 catch-up of": "ms",
    "2 newest page of": "ms",
    "3 outbox of 100 flushed, send_window 32": "messages/s",
    "3 outbox of 100 flushed, send_window 64": "messages/s",
    "3 outbox of 100 flushed, send_window 256": "messages/s",
    "4 idle client in": "MB RSS",
    "4 reference:": "MB RSS",
}


def test_quick_client_bench_measures_every_scenario() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "client_bench.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [
        [cell.strip() for cell in line.split("|")[1:-1]]
        for line in done.stdout.splitlines()
        if line.startswith("| ")
    ]
    assert rows[0] == ["scenario", "figure", "detail", "target", "met"], done.stdout
    for start, unit in SCENARIOS.items():
        figures = [row[1] for row in rows[1:] if row[0].startswith(start)]
        assert len(figures) == 1, f"no single row for {start!r}:\n{done.stdout}"
        assert re.search(rf"\d {re.escape(unit)}$", figures[0]), f"{start!r}: {figures[0]!r}"
