"""The REPL sandbox, proved from outside with the simulator's probes (``--!sim getenv=``,
``write=``, ``connect=``, ``spawn=``) and file commands (a read probe): each thing a REPL must
not do is refused by default and possible with ``sandbox=None`` (or the variable passed).

A mechanism this machine lacks is skipped by name (`need`); never passed silently. Each
mechanism that blocks the network is also checked alone, by switching the others off.
"""

from __future__ import annotations

import logging
import os
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_tools import use_fakes

from leanpool import AutoLeanServer, LeanPool, LeanServer
from leanpool import _sandbox as sandbox_module
from leanpool._config import LeanREPLConfig
from leanpool._project import LocalProject
from leanpool._sandbox import (
    KEPT_PREFIXES,
    KEPT_VARIABLES,
    SandboxPolicy,
    check_pass_env,
    check_sandbox,
    process_limit,
    reduced,
    sandbox_support,
    scrubbed_environment,
)
from leanpool._session_cache import PickleSessionCache
from leanpool.protocol import (
    Command,
    CommandResponse,
    FileCommand,
    LeanError,
    PickleEnvironment,
    ProofStep,
    UnpickleEnvironment,
)
from leanpool.testing import sim_config

SECRET = "LEANPOOL_TEST_SECRET"


def need(mechanism: str) -> None:
    """Skip, naming what is missing, when this machine lacks `mechanism`."""
    for found in sandbox_support().mechanisms():
        if found.name == mechanism and not found.active:
            pytest.skip(f"sandbox mechanism {mechanism!r} unavailable here: {found.detail}")


@pytest.fixture(scope="module")
def config() -> LeanREPLConfig:
    return sim_config()


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that accepts connections (the kernel completes them)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


def probe(server: LeanServer, directives: str) -> list[tuple[str, str]]:
    """Messages of the probes in `directives` (the command's own `#eval` message left out)."""
    response = server.run(Command(cmd=f"#eval 0 --!sim {directives}"))
    assert isinstance(response, CommandResponse), response
    return [(m.severity, m.data) for m in response.messages[1:]]


# ------------------------------------------------------------------------------- environment
def test_a_secret_of_the_owner_never_reaches_a_repl_unless_passed(
    config: LeanREPLConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET, "hunter2")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "also-secret")
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, f"{SECRET} is not set"),
        ({"pass_env": [SECRET]}, f"{SECRET}=hunter2"),
        ({"pass_env": SECRET}, f"{SECRET}=hunter2"),  # one name as a plain string
        ({"sandbox": None}, f"{SECRET}=hunter2"),
    ]
    for options, expected in cases:
        server = LeanServer(config, **options)
        try:
            assert probe(server, f"getenv={SECRET}")[0] == ("info", expected), options
            other = probe(server, "getenv=AWS_SECRET_ACCESS_KEY")[0][1]
            assert ("also-secret" in other) == (options.get("sandbox", "auto") is None)
        finally:
            server.close()


def test_the_sandboxed_environment_keeps_what_lean_needs_and_tmpdir_is_the_scratch(
    config: LeanREPLConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAN_NUM_THREADS", "3")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    server = LeanServer(config)
    try:
        scratch = server.scratch_dir
        assert scratch is not None and Path(scratch).is_dir()
        assert stat.S_IMODE(os.stat(scratch).st_mode) == 0o700
        messages = probe(server, "getenv=TMPDIR getenv=LEAN_NUM_THREADS getenv=LC_ALL getenv=PATH")
        assert messages[:3] == [
            ("info", f"TMPDIR={scratch}"),
            ("info", "LEAN_NUM_THREADS=3"),
            ("info", "LC_ALL=C.UTF-8"),
        ]
        assert messages[3] == ("info", f"PATH={os.environ['PATH']}")
    finally:
        server.close()
    assert not Path(scratch).exists()  # removed with the process


def test_scrubbed_environment_lists() -> None:
    owner = {
        "PATH": "/usr/bin",
        "HOME": "/home/u",
        "LANG": "C.UTF-8",
        "LC_CTYPE": "C.UTF-8",
        "LEAN_PATH": "/old",
        "LAKE_HOME": "/lake",
        "ELAN_HOME": "/elan",
        "PYTHONPATH": "/src",
        "TMPDIR": "/tmp",
        "OPENAI_API_KEY": "sk-...",
        "SSH_AUTH_SOCK": "/run/agent",
        "USER": "u",
        "VIRTUAL_ENV": "/venv",
        "KEEP_ME": "1",
    }
    env = scrubbed_environment(
        {"LEAN_PATH": "/proj/.lake", "X": "from repl_env"}, ("KEEP_ME",), "/scratch", owner
    )
    assert env == {
        "PATH": "/usr/bin",
        "HOME": "/home/u",
        "LANG": "C.UTF-8",
        "LC_CTYPE": "C.UTF-8",
        "LEAN_PATH": "/proj/.lake",  # the config's capture wins
        "LAKE_HOME": "/lake",
        "ELAN_HOME": "/elan",
        "PYTHONPATH": "/src",
        "TMPDIR": "/scratch",
        "KEEP_ME": "1",
        "X": "from repl_env",
    }
    assert all(reason for reason in {**KEPT_VARIABLES, **KEPT_PREFIXES}.values())


def test_arguments_are_checked(config: LeanREPLConfig) -> None:
    assert check_sandbox("auto") == "auto" and check_sandbox(None) is None
    with pytest.raises(ValueError, match="sandbox must be 'auto' or None"):
        LeanServer(config, sandbox="strict")  # type: ignore[arg-type]
    assert check_pass_env(None) == () and check_pass_env(["A", "B"]) == ("A", "B")
    for wrong in ("", "A=B", "NUL\0"):
        with pytest.raises(ValueError, match="pass_env"):
            check_pass_env([wrong])
    with pytest.raises(ValueError, match="pass_env"):
        LeanPool(config, pass_env=["A=1"])


# ------------------------------------------------------------------------------- filesystem
def test_writes_only_under_the_scratch_directory(config: LeanREPLConfig, tmp_path: Path) -> None:
    need("landlock")
    outside = tmp_path / "outside"
    server = LeanServer(config)
    try:
        inside = Path(server.scratch_dir or "") / "inside"
        messages = probe(server, f"write={outside} write={inside} write=relative-to-cwd")
    finally:
        server.close()
    assert messages[0][0] == "error" and "Permission denied" in messages[0][1], messages
    assert messages[1] == ("info", f"created {inside}")
    assert messages[2][0] == "error" and "Permission denied" in messages[2][1]
    assert not outside.exists() and not (Path.cwd() / "relative-to-cwd").exists()
    unconfined = LeanServer(config, sandbox=None)
    try:
        assert probe(unconfined, f"write={outside}") == [("info", f"created {outside}")]
    finally:
        unconfined.close()
    assert outside.is_file()


def test_files_outside_the_readable_places_cannot_be_read(
    config: LeanREPLConfig, tmp_path: Path
) -> None:
    need("landlock")
    secret = tmp_path / "id_ed25519"
    secret.write_text("theorem leaked : True := trivial\n")
    server = LeanServer(config)
    try:
        refused = server.run(FileCommand(path=str(secret)))
        parent_environ = server.run(FileCommand(path=f"/proc/{os.getpid()}/environ"))
        own = server.run(Command(cmd="#eval 1 --!sim write=/dev/null"))  # devices still work
        own_proc_and_system = [
            server.run(FileCommand(path=path))
            for path in (
                "/proc/self/maps",
                "/proc/self/status",
                "/sys/devices/system/cpu/online",
                "/etc/passwd",
            )
            if os.path.exists(path)
        ]
    finally:
        server.close()
    assert isinstance(refused, LeanError) and "permission denied" in refused.message
    for readable in own_proc_and_system:  # what the dynamic loader and Lean's runtime read
        assert not isinstance(readable, LeanError), readable
    # The owner's environment through /proc: Landlock keeps other processes' entries closed.
    assert isinstance(parent_environ, LeanError) and "permission denied" in parent_environ.message
    assert isinstance(own, CommandResponse) and own.messages[1].data == "created /dev/null"
    unconfined = LeanServer(config, sandbox=None)
    try:
        assert isinstance(unconfined.run(FileCommand(path=str(secret))), CommandResponse)
    finally:
        unconfined.close()


def test_pickles_in_the_scratch_directory_work(config: LeanREPLConfig) -> None:
    server = LeanServer(config)
    try:
        made = server.run(Command(cmd="def five : Nat := 5"))
        assert isinstance(made, CommandResponse) and made.env is not None
        target = f"{server.scratch_dir}/five.olean"
        assert not isinstance(
            server.run(PickleEnvironment(env=made.env, pickle_to=target)), LeanError
        )
        restored = server.run(UnpickleEnvironment(unpickle_env_from=target))
        assert isinstance(restored, CommandResponse) and restored.env is not None
        used = server.run(Command(cmd="#eval five", env=restored.env))
        assert isinstance(used, CommandResponse) and used.messages[0].data == "5"
    finally:
        server.close()


def test_a_pickle_session_cache_directory_stays_writable_across_restarts(
    config: LeanREPLConfig, tmp_path: Path
) -> None:
    cache = PickleSessionCache(tmp_path / "pickles")
    server = AutoLeanServer(config, session_cache=cache)
    try:
        made = server.run(Command(cmd="def six : Nat := 6"), add_to_session_cache=True)
        assert isinstance(made, CommandResponse) and made.env is not None
        assert list((tmp_path / "pickles" / "session_cache").glob("*.olean"))  # REPL wrote it
        server.restart()
        used = server.run(Command(cmd="#eval six", env=made.env))
        assert isinstance(used, CommandResponse) and used.messages[0].data == "6"
    finally:
        server.kill()


# ------------------------------------------------------------------------------- network
def test_no_network_in_the_sandbox(config: LeanREPLConfig, listener: int) -> None:
    if not sandbox_support().network_isolated:
        pytest.skip("no network isolation here: no namespaces, Landlock ABI 4+ or seccomp")
    server = LeanServer(config)
    try:
        [(severity, text)] = probe(server, f"connect=127.0.0.1:{listener}")
    finally:
        server.close()
    assert severity == "error" and text.startswith(f"connect 127.0.0.1:{listener}: "), text
    unconfined = LeanServer(config, sandbox=None)
    try:
        assert probe(unconfined, f"connect=127.0.0.1:{listener}") == [
            ("info", f"connected to 127.0.0.1:{listener}")
        ]
    finally:
        unconfined.close()


@pytest.mark.parametrize(
    ("alone", "needs", "expected_error"),
    [
        ("namespaces", "namespaces", "Network is unreachable"),  # the loopback is down
        ("landlock", "landlock", "Permission denied"),  # Landlock's TCP connect rule
        ("seccomp", "seccomp", "Permission denied"),  # socket() refused
    ],
)
def test_each_network_mechanism_alone_blocks_tcp(
    config: LeanREPLConfig,
    listener: int,
    monkeypatch: pytest.MonkeyPatch,
    alone: str,
    needs: str,
    expected_error: str,
) -> None:
    need(needs)
    if alone == "landlock" and sandbox_support().landlock_abi < 4:
        pytest.skip(f"Landlock ABI {sandbox_support().landlock_abi} has no TCP rules (ABI 4+)")
    others = {"namespaces", "landlock", "seccomp"} - {alone}
    monkeypatch.setattr(
        sandbox_module, "_support", reduced(sandbox_support(), **dict.fromkeys(others, True))
    )
    server = LeanServer(config)
    try:
        [(severity, text)] = probe(server, f"connect=127.0.0.1:{listener}")
    finally:
        server.close()
    assert severity == "error" and expected_error in text, text


# ------------------------------------------------------------------------------- processes
def test_the_number_of_processes_is_limited(
    config: LeanREPLConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    need("process limit")
    monkeypatch.setattr(sandbox_module, "process_limit", lambda: 16)
    server = LeanServer(config)
    try:
        [(severity, text)] = probe(server, "spawn=40")
        assert probe(server, "spawn=4") == [("info", "started 4 of 4 child processes")]
    finally:
        server.close()
    assert severity == "error" and "Resource temporarily unavailable" in text, text
    started = int(text.split()[1])
    assert 0 < started < 16  # the REPL itself counts too
    unconfined = LeanServer(config, sandbox=None)
    try:
        assert probe(unconfined, "spawn=40") == [("info", "started 40 of 40 child processes")]
    finally:
        unconfined.close()


def test_the_default_process_limit_leaves_room_for_lean_s_threads() -> None:
    assert process_limit() >= max(256, 4 * (os.cpu_count() or 1))


# ------------------------------------------------------------------------------- normal work
def test_a_sandboxed_repl_answers_normally(config: LeanREPLConfig) -> None:
    server = AutoLeanServer(config)
    try:
        theorem = server.run(Command(cmd="theorem t : 2 + 2 = 4 := by rfl"))
        assert isinstance(theorem, CommandResponse) and not theorem.has_errors()
        sorry = server.run(Command(cmd="theorem u : 1 = 1 := by sorry"))
        assert isinstance(sorry, CommandResponse) and sorry.sorries
        step = server.run(ProofStep(tactic="rfl", proof_state=sorry.sorries[0].proof_state))
        assert getattr(step, "proof_status", None) == "Completed"
    finally:
        server.kill()


def test_a_pool_confines_its_workers_repls(
    config: LeanREPLConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET, "pool-secret")
    command = f"#eval 1 --!sim getenv={SECRET}"
    with LeanPool(config, max_workers=1, dedup=False) as pool:
        default = pool.run(command)
    with LeanPool(config, max_workers=1, dedup=False, pass_env=[SECRET]) as pool:
        passed = pool.run(command)
    assert isinstance(default, CommandResponse) and isinstance(passed, CommandResponse)
    assert default.messages[1].data == f"{SECRET} is not set"
    assert passed.messages[1].data == f"{SECRET}=pool-secret"


# ------------------------------------------------------------------------------- reporting
def test_a_missing_mechanism_is_warned_about_once(
    config: LeanREPLConfig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sandbox_module, "_support", reduced(sandbox_support(), seccomp=True))
    monkeypatch.setattr(sandbox_module, "_warned", False)
    with caplog.at_level(logging.WARNING, logger="leanpool"):
        for _ in range(2):
            LeanServer(config).close()
    warnings = [r.getMessage() for r in caplog.records if "leanpool sandbox" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert "seccomp: switched off" in warnings[0] and "leanpool doctor" in warnings[0]


def test_every_mechanism_is_reported_with_what_its_absence_allows() -> None:
    mechanisms = sandbox_support().mechanisms()
    assert [m.name for m in mechanisms] == [
        "environment",
        "namespaces",
        "landlock",
        "seccomp",
        "process limit",
    ]
    assert all(m.detail for m in mechanisms)
    assert all(m.missing_means for m in mechanisms if m.name != "environment")


def test_no_cgroup_or_scratch_directory_is_left_behind(config: LeanREPLConfig) -> None:
    server = AutoLeanServer(config)
    first = server.scratch_dir
    server.restart()
    second = server.scratch_dir
    server.kill()
    assert first and second and first != second
    assert not Path(first).exists() and not Path(second).exists()
    parent = sandbox_support().pids.parent
    if parent is not None:  # the kernel may refuse for a moment after the REPL exits (EBUSY)
        deadline = time.monotonic() + 10
        while [p for p in parent.glob(f"repl-{os.getpid()}-*")] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [p for p in parent.glob(f"repl-{os.getpid()}-*")]


# ------------------------------------------------------------------------------- real Lean
def test_the_read_rules_cover_a_real_lean_setup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With fake elan/lake: a Mathlib project's toolchain, .lake, packages, Mathlib's cache and
    the REPL build are readable, and nothing else of the home directory."""
    fakes = use_fakes(tmp_path / "fakes", monkeypatch)
    fakes.add_repl_remote()
    home = tmp_path / "home"
    (home / ".cache" / "mathlib").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("MATHLIB_CACHE_DIR", raising=False)
    project = tmp_path / "proj"
    project.mkdir()
    (project / "lean-toolchain").write_text("leanprover/lean4:v4.19.0\n")
    (project / "lakefile.lean").write_text("import Lake\nopen Lake DSL\npackage proj\n")
    (project / ".lake" / "packages" / "mathlib").mkdir(parents=True)
    config = LeanREPLConfig(project=LocalProject(directory=str(project)), build_repl=True)
    policy = SandboxPolicy.for_config(config)
    reads = set(policy.read_paths)
    launch = config.launch
    assert os.path.realpath(launch.env["LEAN_SYSROOT"]) in reads  # the toolchain
    assert os.path.realpath(fakes.env()["ELAN_HOME"]) in reads  # every toolchain
    assert os.path.realpath(project) in reads  # the project, its .lake and packages
    for entry in launch.env["LEAN_PATH"].split(os.pathsep):
        assert any(Path(entry).resolve().is_relative_to(r) for r in reads), entry
    assert os.path.realpath(config.cache_dir) in reads  # the REPL build
    assert os.path.realpath(home / ".cache" / "mathlib") in reads
    assert not any(Path(r) == home.resolve() for r in reads)
    assert policy.write_paths == ()
    # The launch itself starts and answers in the sandbox. The fake REPL is a shell script
    # exec'ing the simulator: the interpreter a wrapper script names is readable too.
    server = LeanServer(config)
    try:
        answer = server.run(Command(cmd="#eval 7"))
        assert isinstance(answer, CommandResponse) and answer.messages[0].data == "7"
        toolchain_file = server.run(FileCommand(path=str(project / "lakefile.lean")))
        assert not isinstance(toolchain_file, LeanError)  # the project is readable
        need("landlock")
        messages = probe(server, f"write={project}/.lake/evil write={home}/.bashrc")
        assert [severity for severity, _ in messages] == ["error", "error"], messages
    finally:
        server.close()


def test_a_repl_run_by_another_python_may_read_its_installation(tmp_path: Path) -> None:
    """A REPL whose Python is not leanpool's (another virtual environment, another version)
    loads that installation's shared libpython and site-packages: both roots are readable."""
    installation = tmp_path / "python3.99"
    (installation / "bin").mkdir(parents=True)
    (installation / "lib").mkdir()
    interpreter = installation / "bin" / "python3.99"
    interpreter.write_text("")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(interpreter)
    readable = sandbox_module.read_paths(
        [str(venv / "bin" / "python"), "-m", "x"], str(tmp_path), {}
    )
    assert str(installation) in readable and str(venv) in readable
    script = tmp_path / "repl"
    script.write_text(f"#!{venv / 'bin' / 'python'}\nprint()\n")
    readable = sandbox_module.read_paths([str(script)], str(tmp_path), {})
    assert str(installation) in readable and str(venv) in readable
