"""`make bench` runs end to end (tiny sizes): every scenario yields a figure for chatcore, and
progress is shown while it runs.

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
    # The fixed-rate run's rate comes from the saturated run of the same run.
    fixed = [name for name, _ in body if name.startswith("a 1:1 at ")]
    assert fixed and all("of chatcore's saturated), 20 idle" in name for name in fixed), report
    for scenario in (
        "a 1:1 saturated",
        fixed[0],
        "c idle connections",
        "b fan-out, 10 members",
        "b fan-out, 20 members",
        "e catch-up of 200 (chatcore)",
        "c 60 idle connections, one node",
        "c fan-out to 20 of the 60",
    ):
        figures = [cells for (name, _), cells in body.items() if name == scenario]
        assert figures, f"no row for {scenario!r}:\n{report}"
        for cells in figures:
            assert cells[chatcore], f"no chatcore figure in {cells}:\n{report}"
    held = {metric for name, metric in body if name == "c 60 idle connections, one node"}
    assert held >= {
        "server RSS MB, all held",
        "bytes each (RSS growth / n)",
        "handshake + auth of all, s",
        "handshake + auth of all, server CPU s",
    }, report
    # The push rows are there, with figures (or, before bench/push_bench.py could measure, saying
    # so: a failing measurement is not an excuse).
    pushes = [(name, metric, cells) for (name, metric), cells in body.items() if name[:2] == "p "]
    assert {name for name, _, _ in pushes} == {
        "p sends, pushes on/off, 1 offline member each",
        "p pushes, one node to one webhook receiver",
        "p ack -> push at 100 pushes/s",
    }, report
    for _, metric, cells in pushes:
        assert cells[chatcore] or "has no measure()" in metric, report
    # Progress: a line per phase and trial, with the time since the start.
    progress = done.stderr.splitlines()
    assert any(
        line.startswith("[") and "a 1:1 saturated: trial 1/1, chatcore" in line for line in progress
    ), done.stderr
    assert any("open files (RLIMIT_NOFILE)" in line for line in progress), done.stderr
    storage = body[("d storage on/off (chatcore)", "messages/s")]
    assert storage[chatcore] and storage[header.index("chatcore-storage-off")], report
    # Every send was answered and delivered: an error or a server failure is flagged.
    assert "errors" not in report, report
