"""Several processes setting up the same thing at once do the work once (LeanInteract issue #37
is the race this guards against), and a process killed mid-build poisons nothing."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from fake_tools import BUILD_SECONDS_ENV, FakeTools, use_fakes

SETUP_SCRIPT = """
import json, os, sys, time
from pathlib import Path
gate = Path(sys.argv[1])
(gate.parent / f"ready-{os.getpid()}").touch()
while not gate.exists():
    time.sleep(0.01)
kind = sys.argv[2]
if kind == "repl":
    from leanpool._config import LeanREPLConfig
    config = LeanREPLConfig(lean_version="v4.19.0")
    print(json.dumps({"argv": config.launch.argv, "cwd": config.launch.cwd,
                      "env": config.launch.env}))
else:
    from leanpool._project import TempRequireProject
    project = TempRequireProject(lean_version="v4.19.0", require="mathlib", verbose=False)
    print(json.dumps({"directory": project.get_directory()}))
"""


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeTools:
    fakes = use_fakes(tmp_path, monkeypatch)
    fakes.add_repl_remote()
    return fakes


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test starts; all of them (and anything they started) end with the test."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        kill_tree(proc)


def kill_tree(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(psutil.Error):
        family = psutil.Process(proc.pid).children(recursive=True)
        for member in [psutil.Process(proc.pid), *family]:
            with contextlib.suppress(psutil.Error):
                member.send_signal(signal.SIGKILL)
        psutil.wait_procs(family, timeout=10)
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


def start_setups(
    count: int, kind: str, tmp_path: Path, started: list[subprocess.Popen[str]], **env: str
) -> list[subprocess.Popen[str]]:
    """`count` processes that begin setting up at the same moment (after all are ready)."""
    gate_dir = tmp_path / f"gate-{len(started)}"
    gate_dir.mkdir()
    gate = gate_dir / "go"
    procs = []
    for _ in range(count):
        proc = subprocess.Popen(
            [sys.executable, "-c", SETUP_SCRIPT, str(gate), kind],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(proc)
        procs.append(proc)
    deadline = time.monotonic() + 60
    while len(list(gate_dir.glob("ready-*"))) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    gate.touch()
    return procs


def results(procs: list[subprocess.Popen[str]]) -> list[dict[str, object]]:
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outputs.append(json.loads(out))
    return outputs


def test_four_processes_set_up_the_repl_with_one_build(
    fakes: FakeTools, tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    procs = start_setups(4, "repl", tmp_path, processes, **{BUILD_SECONDS_ENV: "1"})
    launches = results(procs)
    assert all(launch == launches[0] for launch in launches)
    bare_clones = [
        c for c in fakes.calls("git") if c["action"] == "clone" and "--bare" in c["args"]
    ]
    assert len(bare_clones) == 1
    assert fakes.count("elan install") == 1
    assert fakes.count("lake build") == 1
    assert fakes.count("lake env") == 1
    assert len({c["pid"] for c in fakes.calls()}) > 1  # several processes did take part


def test_four_processes_create_one_mathlib_project(
    fakes: FakeTools, tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    procs = start_setups(4, "project", tmp_path, processes, **{BUILD_SECONDS_ENV: "1"})
    directories = {str(r["directory"]) for r in results(procs)}
    assert len(directories) == 1
    assert fakes.count("lake update") == 1
    assert fakes.count("lake cache") == 1
    assert fakes.count("lake build") == 1


def test_a_setup_killed_mid_build_is_taken_over_by_a_waiting_one(
    fakes: FakeTools, tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    (slow,) = start_setups(1, "repl", tmp_path, processes, **{BUILD_SECONDS_ENV: "60"})
    deadline = time.monotonic() + 60
    while fakes.count("lake build") == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fakes.count("lake build") == 1
    (waiting,) = start_setups(1, "repl", tmp_path, processes, **{BUILD_SECONDS_ENV: "0"})
    time.sleep(0.5)  # let it reach the build lock (correctness does not depend on this)
    kill_tree(slow)  # the builder dies: its lock goes with it, its scratch directory stays
    (launch,) = results([waiting])
    assert fakes.count("lake build") == 2  # the half-done build was not trusted
    argv = launch["argv"]
    assert isinstance(argv, list) and Path(argv[0]).is_file()
    assert list(fakes.cache.rglob(".*.tmp-*")) == []
