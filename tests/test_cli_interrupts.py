"""`leanpool verify` stopped half-way loses nothing: SIGTERM and SIGINT keep every finished result
and exit at once, SIGKILL loses only what was in flight, and `--resume` completes the run with
each id exactly once and the verdicts of an uninterrupted run. No leaked-semaphore warnings."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
import pytest

COUNT = 150


def _dataset(tmp_path: Path) -> Path:
    """150 proofs of 40 ms each: about 3 s on 2 workers; a few fail on purpose."""
    lines = []
    for i in range(COUNT):
        value = i + 1 if i % 10 else i + 2  # every tenth is false
        code = f"theorem t{i} : {i} + 1 = {value} := by decide --!sim sleep_ms=40"
        lines.append(json.dumps({"id": f"p{i}", "code": code}))
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _default_sigint() -> None:
    """A run started in the background by a non-interactive shell inherits SIGINT ignored, and
    Python then installs no KeyboardInterrupt handler: give the CLI the default a terminal
    gives it, whatever started the test run."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "leanpool", "verify", "--sim", "-j", "2", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _wait_for_lines(path: Path, count: int, within: float = 120) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if path.exists() and path.read_text(encoding="utf-8").count("\n") >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"fewer than {count} results in {path} after {within} s")


def _family(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _gone(procs: list[psutil.Process], within: float) -> list[int]:
    deadline = time.monotonic() + within
    alive = [p.pid for p in procs]
    while alive and time.monotonic() < deadline:
        alive = [p.pid for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        time.sleep(0.05)
    return alive


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The verdicts of an uninterrupted run."""
    tmp_path = tmp_path_factory.mktemp("whole")
    data = _dataset(tmp_path)
    output = tmp_path / "out.jsonl"
    done = _start(tmp_path, "-o", str(output), str(data))
    _stdout, stderr = done.communicate(timeout=300)
    assert done.returncode == 1, stderr  # the false ones fail
    records = _records(output)
    assert [r["id"] for r in records] == [f"p{i}" for i in range(COUNT)]  # input order at the end
    return {r["id"]: r["verdict"] for r in records}


@pytest.mark.parametrize(("how", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_sigint_keep_every_finished_result(
    tmp_path: Path, reference: dict[str, str], how: signal.Signals, status: int
) -> None:
    data = _dataset(tmp_path)
    output = tmp_path / "out.jsonl"
    run = _start(tmp_path, "-o", str(output), str(data))
    _wait_for_lines(output, 20)
    family = _family(run.pid)
    run.send_signal(how)
    stdout, stderr = run.communicate(timeout=60)
    assert run.returncode == status, stdout + stderr
    kept = _records(output)
    assert 20 <= len(kept) < COUNT
    assert f"{len(kept)} finished results are kept" in " ".join(stdout.split())
    assert all(reference[r["id"]] == r["verdict"] for r in kept)  # only real verdicts kept
    assert "leaked" not in stderr
    assert not _gone(family, 10)


def test_sigkill_then_resume_completes_with_each_id_once(
    tmp_path: Path, reference: dict[str, str]
) -> None:
    data = _dataset(tmp_path)
    output = tmp_path / "out.jsonl"
    run = _start(tmp_path, "-o", str(output), str(data))
    _wait_for_lines(output, 20)
    family = _family(run.pid)
    run.kill()
    _stdout, stderr = run.communicate(timeout=60)
    assert not _gone(family, 10)  # the workers and REPLs die with their owner
    before = _records(output)
    assert 20 <= len(before) < COUNT
    with output.open("a", encoding="utf-8") as handle:  # as if killed in the middle of a line
        handle.write('{"id": "p149", "verdict": "pa')
    resumed = _start(tmp_path, "-o", str(output), "--resume", str(data))
    stdout, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 1, stdout + stderr
    assert f"Resuming: {len(before)} results" in " ".join(stdout.split())
    after = _records(output)
    ids = Counter(r["id"] for r in after)
    assert len(after) == COUNT and set(ids.values()) == {1}
    assert {r["id"]: r["verdict"] for r in after} == reference
    assert "leaked" not in stderr


def test_resume_needs_an_output_file(tmp_path: Path) -> None:
    data = _dataset(tmp_path)
    run = _start(tmp_path, "--resume", str(data))
    stdout, stderr = run.communicate(timeout=60)
    assert run.returncode == 2
    assert "--resume needs --output" in stdout + stderr
