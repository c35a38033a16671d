"""`make bench` runs end to end (tiny sizes): every scenario yields a figure for chatcore.

No timing is asserted here: the benchmark's figures are read by people, in bench/results/ and
docs/performance.md. This only keeps the harness, the relays and the load generator working.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / "bench" / "node"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("taskset") is None,
    reason="the benchmark needs node (its load generator) and taskset",
)


@pytest.fixture(scope="module")
def node_modules() -> None:
    if not (NODE_DIR / "node_modules" / "ws").is_dir():
        subprocess.run(
            ["npm", "ci", "--prefix", str(NODE_DIR), "--no-audit", "--no-fund"],
            check=True,
            capture_output=True,
            timeout=300,
        )


def test_quick_bench_measures_every_scenario(node_modules: None, tmp_path: Path) -> None:
    output = tmp_path / "bench.md"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "harness.py"),
            "--quick",
            "--no-postgres",
            "--output",
            str(output),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = output.read_text()
    rows = [line.split("|")[1:-1] for line in report.splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in rows[0]]
    assert header[:5] == ["scenario", "metric", "chatcore", "relay-py", "relay-node"]
    body = {(r[0].strip(), r[1].strip()): [cell.strip() for cell in r] for r in rows[1:]}
    chatcore = header.index("chatcore")
    for scenario in (
        "a 1:1 saturated",
        "a 1:1 at 2,000 msg/s, 20 idle",
        "c idle connections",
        "b fan-out, 10 members",
        "b fan-out, 20 members",
        "e catch-up of 200 (chatcore)",
    ):
        figures = [cells for (name, _), cells in body.items() if name == scenario]
        assert figures, f"no row for {scenario!r}:\n{report}"
        for cells in figures:
            assert cells[chatcore], f"no chatcore figure in {cells}:\n{report}"
    storage = body[("d storage on/off (chatcore)", "messages/s")]
    assert storage[chatcore] and storage[header.index("chatcore-storage-off")], report
    # Every send was answered and delivered: an error or a server failure is flagged.
    assert "errors" not in report, report
