"""bench/webapp_bench.py runs end to end (tiny sizes): every scenario prints a figure.

No timing is asserted: the figures are read by people, in docs/performance.md. This only keeps
the benchmark (and the mark `chatcore:rooms-painted` it reads from the app) working.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from webapp_support import one_browser_at_a_time

ROOT = Path(__file__).resolve().parents[2]
ROWS = [
    "room list painted (2 loads)",
    "first contentful paint",
    "message sent over REST, on screen",
]


def test_a_tiny_run_measures_every_scenario(browser_path: str) -> None:
    bench = [sys.executable, str(ROOT / "bench" / "webapp_bench.py"), "--chromium", browser_path]
    sizes = ["--rooms", "3", "--per-room", "2", "--loads", "2", "--messages", "2"]
    with one_browser_at_a_time():
        done = subprocess.run([*bench, *sizes], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    for row in ROWS:
        assert re.search(rf"^\| {re.escape(row)} \| \d+\.\d ms \|", done.stdout, re.M), row
    assert re.search(r"^\| script, styles, HTML \| [\d.]+ KB \| [\d.]+ KB gzip", done.stdout, re.M)
