"""Every example runs (fast mode, on the simulator), says so first, and prints sound results."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
DATASET = EXAMPLES / "data" / "theorems.jsonl"
SIMULATOR_LINE = "leanpool example: running on the REPL SIMULATOR"


def run_example(name: str, *args: str, path: str | None = None) -> list[str]:
    env = {**os.environ, "LEANPOOL_EXAMPLES_FAST": "1", "COLUMNS": "200", "NO_COLOR": "1"}
    if path is not None:
        env["PATH"] = path
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines and lines[0].startswith(SIMULATOR_LINE), lines[:1]
    return lines


def test_quickstart_both_parts_give_the_squares() -> None:
    lines = run_example("quickstart.py", "--sim")
    for task_id in range(5):
        expected = f"Task {task_id}: {task_id * task_id}"
        assert lines.count(expected) == 2, expected  # multiprocessing part and LeanPool part


def test_examples_pick_the_simulator_when_no_lean_is_on_path() -> None:
    bin_dirs = [str(Path(sys.executable).parent), "/usr/bin", "/bin"]
    if any(shutil.which(tool, path=os.pathsep.join(bin_dirs)) for tool in ("elan", "lake")):
        pytest.skip("Lean is installed in a system directory")
    lines = run_example("quickstart.py", path=os.pathsep.join(bin_dirs))
    assert "(no Lean found)" in lines[0]


def test_batch_verify_agrees_with_the_dataset() -> None:
    lines = run_example("batch_verify.py", "--sim")
    agreement = next(line for line in lines if line.startswith("agreement"))
    agreed, total = map(int, re.search(r"(\d+)/(\d+)", agreement).groups())  # type: ignore[union-attr]
    assert total > 0 and agreed == total
    imports = next(line for line in lines if line.startswith("header imports"))
    assert int(imports.split()[2]) >= 1


def test_proof_search_proves_and_rechecks() -> None:
    lines = run_example("proof_search.py", "--sim")
    per_theorem = [line for line in lines if re.match(r"\S+\s+\d+ expansions,", line)]
    assert len(per_theorem) >= 3
    proved = [line for line in per_theorem if "proved (" in line]
    assert proved, per_theorem
    assert all("proved (re-checked)" in line for line in proved)
    total = next(line for line in lines if re.match(r"\d+/\d+ proved;", line))
    assert total.startswith(f"{len(proved)}/{len(per_theorem)} proved")


def test_async_pipeline_stays_within_its_bounds() -> None:
    lines = run_example("async_pipeline.py", "--sim")
    checked = int(next(line for line in lines if "candidates checked" in line).split()[0])
    counts = [int(line.split()[-1]) for line in lines if re.match(r"\s+(passed|lean_error)", line)]
    assert sum(counts) == checked
    bounds = next(line for line in lines if line.startswith("queue:"))
    queue_peak, queue_size, flight_peak, consumers = map(
        int,
        re.findall(r"peak (\d+) of (\d+)", bounds)[0]
        + re.findall(r"peak (\d+) of (\d+)", bounds)[1],
    )
    assert 0 < queue_peak <= queue_size
    assert 0 < flight_peak <= consumers


def test_dataset_is_well_formed_and_balanced() -> None:
    items = [json.loads(line) for line in DATASET.read_text(encoding="utf-8").splitlines()]
    assert 40 <= len(items) <= 60
    assert len({item["id"] for item in items}) == len(items)
    assert all(isinstance(item["code"], str) and item["code"].strip() for item in items)
    verdicts = Counter(item["expected"] for item in items)
    assert set(verdicts) == {"passed", "lean_error", "rejected"}  # rejected: the sorry ones
    failing = verdicts["lean_error"] + verdicts["rejected"]
    assert abs(verdicts["passed"] - failing) <= len(items) // 5
    headers = Counter(item.get("header") for item in items)
    assert {None, "import Mathlib", "import Mathlib.Tactic"} <= set(headers)


def test_dataset_verdicts_on_the_simulator_match_expectations(tmp_path: Path) -> None:
    output = tmp_path / "out.jsonl"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "leanpool",
            "verify",
            "--sim",
            "-j",
            "2",
            "-o",
            str(output),
            str(DATASET),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr  # wrong proofs are in it on purpose
    expected = {
        item["id"]: item["expected"]
        for item in map(json.loads, DATASET.read_text(encoding="utf-8").splitlines())
    }
    got = {r["id"]: r["verdict"] for r in map(json.loads, output.read_text().splitlines())}
    assert got == expected
