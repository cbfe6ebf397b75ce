"""The setup primitives: the step runner and its errors, locks, staged directories, discovery."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from fake_tools import FakeTools, use_fakes

from leanpool._errors import LeanSetupError
from leanpool._setup import (
    ELAN_INSTALL_HINT,
    SetupReporter,
    SetupTools,
    default_cache_dir,
    find_elan,
    prepare_cache_dir,
    read_json,
    staged_directory,
    step_lock,
    write_json_atomic,
)


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeTools:
    return use_fakes(tmp_path, monkeypatch)


def make_tools(root: Path, timeout: float | None = None, verbose: bool = False) -> SetupTools:
    return SetupTools(prepare_cache_dir(root / "cache"), SetupReporter(verbose), timeout=timeout)


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


# --------------------------------------------------------------------------- the runner
def test_run_returns_the_combined_output(tmp_path: Path) -> None:
    tools = make_tools(tmp_path)
    out = tools.run("say hello", python("import sys; print('out'); print('err', file=sys.stderr)"))
    assert "out" in out and "err" in out


def test_a_failing_step_names_step_command_status_and_output_tail(tmp_path: Path) -> None:
    tools = make_tools(tmp_path)
    code = "import sys; [print('line', i) for i in range(5000)]; sys.exit(3)"
    with pytest.raises(LeanSetupError) as caught:
        tools.run("count to five thousand", python(code))
    error = caught.value
    assert error.step == "count to five thousand"
    assert error.command == python(code)
    assert error.returncode == 3
    assert "line 4999" in error.output_tail and "line 0\n" not in error.output_tail
    for part in ("count to five thousand", "Exit status: 3", "line 4999"):
        assert part in str(error)


def test_network_failures_are_called_network_problems(tmp_path: Path) -> None:
    tools = make_tools(tmp_path)
    code = (
        "import sys; print(\"fatal: unable to access 'https://github.com/x/': "
        'Could not resolve host: github.com", file=sys.stderr); sys.exit(128)'
    )
    with pytest.raises(LeanSetupError, match="Network problem") as caught:
        tools.run("clone", python(code))
    assert caught.value.returncode == 128


def test_other_failures_do_not_blame_the_network(tmp_path: Path) -> None:
    tools = make_tools(tmp_path)
    with pytest.raises(LeanSetupError) as caught:
        tools.run("build", python("import sys; print('error: type mismatch'); sys.exit(1)"))
    assert "Network" not in str(caught.value)


def test_a_missing_executable_is_a_setup_error(tmp_path: Path) -> None:
    tools = make_tools(tmp_path)
    with pytest.raises(LeanSetupError, match="could not be started") as caught:
        tools.run("run nothing", [str(tmp_path / "no-such-program")])
    assert caught.value.returncode is None


def test_a_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    tools = make_tools(tmp_path, timeout=1.0)
    pid_file = tmp_path / "grandchild.pid"
    code = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "print('started', flush=True)\n"
        "time.sleep(60)\n"
    )
    with pytest.raises(LeanSetupError, match="Timed out") as caught:
        tools.run("sleep forever", python(code))
    assert "started" in caught.value.output_tail
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while psutil.pid_exists(grandchild) and time.monotonic() < deadline:
        try:
            if psutil.Process(grandchild).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    alive = psutil.pid_exists(grandchild) and (
        psutil.Process(grandchild).status() != psutil.STATUS_ZOMBIE
    )
    assert not alive


def test_verbose_progress_names_each_step_with_its_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tools = make_tools(tmp_path, verbose=True)
    tools.run("Do the first thing", python("print('x')"))
    with pytest.raises(LeanSetupError):
        tools.run("Do the second thing", python("raise SystemExit(2)"))
    err = capsys.readouterr().err
    assert "✓ Do the first thing (" in err and "s)" in err
    assert "✗ Do the second thing (" in err


def test_quiet_setup_prints_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tools = make_tools(tmp_path)
    tools.run("Do a thing", python("print('noise')"))
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


# --------------------------------------------------------------------------- staged directories
def test_staged_directory_appears_only_when_complete(tmp_path: Path) -> None:
    final = tmp_path / "build"
    with staged_directory(final) as scratch:
        (scratch / "artifact").write_text("done")
        assert not final.exists()
    assert (final / "artifact").read_text() == "done"
    assert [p.name for p in tmp_path.iterdir()] == ["build"]


def test_a_failed_stage_leaves_nothing_and_keeps_the_previous_result(tmp_path: Path) -> None:
    final = tmp_path / "build"
    final.mkdir()
    (final / "old").write_text("previous")
    with pytest.raises(RuntimeError), staged_directory(final) as scratch:
        (scratch / "half").write_text("half done")
        raise RuntimeError("build failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build"]
    assert (final / "old").read_text() == "previous"


def test_scratch_left_by_a_killed_process_is_cleaned_up(tmp_path: Path) -> None:
    stale = tmp_path / ".build.tmp-deadbeef"
    stale.mkdir()
    (stale / "junk").write_text("x")
    with staged_directory(tmp_path / "build"):
        pass
    assert not stale.exists()


def test_write_json_atomic_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "data.json"
    write_json_atomic(path, {"a": [1, 2]})
    assert read_json(path) == {"a": [1, 2]}
    path.write_text("{truncated")
    assert read_json(path) is None
    assert os.listdir(path.parent) == ["data.json"]


# --------------------------------------------------------------------------- locks
def test_step_lock_serialises_holders_and_says_it_is_waiting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = tmp_path / "step.lock"
    reporter = SetupReporter(verbose=True)
    inside = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def holder() -> None:
        with step_lock(lock, "first", SetupReporter(False)):
            order.append("first in")
            inside.set()
            release.wait(10)
            order.append("first out")

    thread = threading.Thread(target=holder)
    thread.start()
    assert inside.wait(10)
    threading.Timer(0.3, release.set).start()
    with step_lock(lock, "second", reporter):
        order.append("second in")
    thread.join()
    assert order == ["first in", "first out", "second in"]
    assert "Waiting for another process to finish: second" in capsys.readouterr().err


def test_step_lock_gives_up_after_the_timeout(tmp_path: Path) -> None:
    lock = tmp_path / "step.lock"
    inside, release = threading.Event(), threading.Event()

    def holder() -> None:
        with step_lock(lock, "first", SetupReporter(False)):
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert inside.wait(10)
        with (
            pytest.raises(LeanSetupError, match="held"),
            step_lock(lock, "second", SetupReporter(False), timeout=0.2),
        ):
            pass
    finally:
        release.set()
        thread.join()


# --------------------------------------------------------------------------- discovery and cache
def test_cache_dir_comes_from_the_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEANPOOL_CACHE_DIR", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("LEANPOOL_CACHE_DIR")
    assert default_cache_dir().name == "leanpool"


def test_prepare_cache_dir_tags_it(tmp_path: Path) -> None:
    root = prepare_cache_dir(tmp_path / "c")
    assert (
        (root / "CACHEDIR.TAG")
        .read_text()
        .startswith("Signature: 8a477f597d28d172789f06886806bc55")
    )


def test_elan_is_found_on_path_or_in_elan_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fakes = use_fakes(tmp_path, monkeypatch, tools=("lake", "git"))
    assert find_elan() is None
    home_bin = fakes.elan_home / "bin"
    home_bin.mkdir(parents=True)
    (home_bin / "elan").write_text("#!/bin/sh\n")
    (home_bin / "elan").chmod(0o755)
    assert find_elan() == home_bin / "elan"
    fakes.install("elan")
    assert find_elan() == fakes.bin / "elan"


def test_missing_elan_fails_with_install_instructions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_fakes(tmp_path, monkeypatch, tools=("lake", "git"))
    tools = make_tools(tmp_path)
    with pytest.raises(LeanSetupError) as caught:
        tools.ensure_toolchain("leanprover/lean4:v4.19.0")
    assert ELAN_INSTALL_HINT in str(caught.value)
    assert "elan-init.sh" in str(caught.value)


def test_lake_is_found_next_to_elan_when_not_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fakes = use_fakes(tmp_path, monkeypatch, tools=("git",))
    home_bin = fakes.elan_home / "bin"
    home_bin.mkdir(parents=True)
    for name in ("elan", "lake"):
        (home_bin / name).write_text("#!/bin/sh\n")
        (home_bin / name).chmod(0o755)
    assert make_tools(tmp_path).lake() == home_bin / "lake"


def test_missing_lake_is_a_setup_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_fakes(tmp_path, monkeypatch, tools=("git",))
    with pytest.raises(LeanSetupError, match="Lean 4 build system executable not found"):
        make_tools(tmp_path).lake()


def test_toolchain_installed_once_and_not_again(fakes: FakeTools, tmp_path: Path) -> None:
    make_tools(tmp_path).ensure_toolchain("leanprover/lean4:v4.19.0")
    make_tools(tmp_path).ensure_toolchain("v4.19.0")
    assert fakes.actions() == ["elan list", "elan install", "elan list"]


def test_steps_never_wait_for_a_git_password(tmp_path: Path) -> None:
    out = make_tools(tmp_path).run(
        "show env", python("import os; print(os.environ['GIT_TERMINAL_PROMPT'])")
    )
    assert out.strip() == "0"
