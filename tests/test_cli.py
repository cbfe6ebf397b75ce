"""The `leanpool` command, run as a subprocess on the REPL simulator.

Covers `verify` on files, directories and JSONL (malformed lines, missing paths, exit statuses,
faults), `doctor`, `setup` without Lean, and the input reader on its own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from leanpool._cli._inputs import InputProblem, ProofInput, parse_jsonl_line, read_inputs

GOOD = "theorem two_mul_three : 2 * 3 = 6 := by decide\n"
BAD = "theorem two_mul_three_bad : 2 * 3 = 7 := by decide\n"
SORRY = "theorem needs_work (a b : Nat) : a + b = b + a := by sorry\n"


def run_cli(
    *args: str, cwd: Path, timeout: float = 180, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **(env or {}), "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "leanpool", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def verify(
    tmp_path: Path, *args: str
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    output = tmp_path / "results.jsonl"
    done = run_cli("verify", "--sim", "-j", "2", "-o", str(output), *args, cwd=tmp_path)
    lines = output.read_text().splitlines() if output.exists() else []
    return done, [json.loads(line) for line in lines]


def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------- verify
def test_passing_lean_file_exits_0_and_is_labelled_simulator(tmp_path: Path) -> None:
    (tmp_path / "good.lean").write_text(GOOD)
    done, results = verify(tmp_path, "good.lean")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "REPL SIMULATOR" in done.stdout.splitlines()[0]
    assert "SIMULATOR run" in done.stdout  # the summary's title says so too
    assert [(r["id"], r["verdict"], r["errors"]) for r in results] == [("good.lean", "passed", [])]
    assert results[0]["seconds"] is not None


def test_failing_proof_exits_1_with_its_error(tmp_path: Path) -> None:
    (tmp_path / "good.lean").write_text(GOOD)
    (tmp_path / "bad.lean").write_text(BAD)
    done, results = verify(tmp_path, "good.lean", "bad.lean")
    assert done.returncode == 1, done.stdout + done.stderr
    verdicts = {r["id"]: r["verdict"] for r in results}
    assert verdicts == {"good.lean": "passed", "bad.lean": "lean_error"}
    bad = next(r for r in results if r["id"] == "bad.lean")
    assert bad["errors"] and bad["errors"][0]["line"] == 1
    assert "bad.lean" in done.stdout  # listed under "Not passed"


def test_directory_is_searched_recursively_and_build_dirs_skipped(tmp_path: Path) -> None:
    proofs = tmp_path / "proofs"
    (proofs / "nested").mkdir(parents=True)
    (proofs / ".lake" / "packages").mkdir(parents=True)
    (proofs / "a.lean").write_text(GOOD)
    (proofs / "nested" / "b.lean").write_text(BAD)
    (proofs / ".lake" / "packages" / "dep.lean").write_text(BAD)
    (proofs / "notes.txt").write_text("not Lean")
    done, results = verify(tmp_path, "proofs")
    assert done.returncode == 1
    assert [r["id"] for r in results] == [
        str(Path("proofs") / "a.lean"),
        str(Path("proofs") / "nested" / "b.lean"),
    ]
    assert [r["verdict"] for r in results] == ["passed", "lean_error"]


def test_jsonl_with_headers_ids_and_malformed_lines(tmp_path: Path) -> None:
    dataset = write_jsonl(
        tmp_path / "data.jsonl",
        [
            json.dumps({"id": "ok", "header": "import Mathlib", "code": GOOD}),
            "{not json",
            json.dumps({"id": "no_code"}),
            "",
            json.dumps(["a", "list"]),
            json.dumps({"code": BAD}),
            json.dumps({"id": 7, "code": GOOD, "header": 3}),
            json.dumps({"id": "sorry", "code": SORRY}),
        ],
    )
    done, results = verify(tmp_path, str(dataset))
    assert done.returncode == 2, done.stdout + done.stderr  # input errors take precedence
    by_source = {r["source"].rsplit(":", 1)[1]: r for r in results}
    assert sorted(by_source, key=int) == ["1", "2", "3", "5", "6", "7", "8"]  # blank line skipped
    assert by_source["1"]["id"] == "ok" and by_source["1"]["verdict"] == "passed"
    for line in ("2", "3", "5", "7"):
        record = by_source[line]
        assert record["verdict"] == "input_error"
        assert f"data.jsonl:{line}" in record["errors"][0]["message"]
        assert f"data.jsonl:{line}" in done.stdout  # reported with its line number
    assert by_source["3"]["id"] == "no_code"
    assert by_source["7"]["id"] == 7
    assert by_source["6"]["id"].endswith("data.jsonl:6")  # no id: the line is the id
    assert by_source["6"]["verdict"] == "lean_error"
    assert by_source["8"]["verdict"] == "rejected" and by_source["8"]["uses_sorry"]
    assert by_source["8"]["reasons"] == ["sorry"]


def test_error_positions_are_relative_to_the_code_not_the_header(tmp_path: Path) -> None:
    code = "theorem t : 2 + 2 = 5 := by\n  decide"
    dataset = write_jsonl(
        tmp_path / "d.jsonl",
        [
            json.dumps({"id": "plain", "code": code}),
            json.dumps({"id": "headed", "header": "import Mathlib\nimport Aesop", "code": code}),
        ],
    )
    done, results = verify(tmp_path, str(dataset))
    assert done.returncode == 1
    positions = {r["id"]: (r["errors"][0]["line"], r["errors"][0]["column"]) for r in results}
    assert positions["plain"] == positions["headed"]


def test_missing_path_and_unknown_suffix_do_not_stop_the_others(tmp_path: Path) -> None:
    (tmp_path / "good.lean").write_text(GOOD)
    (tmp_path / "proof.txt").write_text(GOOD)
    done, results = verify(tmp_path, "missing.lean", "good.lean", "proof.txt")
    assert done.returncode == 2
    assert [(r["id"], r["verdict"]) for r in results] == [
        ("missing.lean", "input_error"),
        ("good.lean", "passed"),
        ("proof.txt", "input_error"),
    ]
    assert "no such file" in results[0]["errors"][0]["message"]


def test_allow_sorry_counts_sorry_as_passed(tmp_path: Path) -> None:
    (tmp_path / "s.lean").write_text(SORRY)
    strict, strict_results = verify(tmp_path, "s.lean")
    lenient, lenient_results = verify(tmp_path, "s.lean", "--allow-sorry")
    assert (strict.returncode, strict_results[0]["verdict"]) == (1, "rejected")
    assert (lenient.returncode, lenient_results[0]["verdict"]) == (0, "passed")


def test_faults_are_typed_and_do_not_sink_the_run(tmp_path: Path) -> None:
    (tmp_path / "good.lean").write_text(GOOD)
    (tmp_path / "hang.lean").write_text("theorem h : 1 = 1 := rfl --!sim hang\n")
    (tmp_path / "crash.lean").write_text("theorem c : 1 = 1 := rfl --!sim crash\n")
    done, results = verify(tmp_path, "--timeout", "2", "good.lean", "hang.lean", "crash.lean")
    assert done.returncode == 1, done.stdout + done.stderr
    outcome = {r["id"]: (r["verdict"], r.get("fault")) for r in results}
    assert outcome == {
        "good.lean": ("passed", None),
        "hang.lean": ("fault", "LeanTimeoutError"),
        "crash.lean": ("fault", "TruncatedResponseError"),  # died mid-answer: a crash
    }
    assert "LeanTimeoutError" in done.stdout  # the summary breaks faults down by kind


def test_output_to_stdout_keeps_stdout_pure_jsonl(tmp_path: Path) -> None:
    (tmp_path / "good.lean").write_text(GOOD)
    done = run_cli("verify", "--sim", "-j", "1", "-o", "-", "good.lean", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["verdict"] for line in lines] == ["passed"]
    assert "REPL SIMULATOR" in done.stderr.splitlines()[0]


@pytest.mark.parametrize(
    "args",
    [
        ["verify"],  # no path
        ["verify", "--sim", "--workers", "0", "x.lean"],
        ["verify", "--sim", "--timeout", "-1", "x.lean"],
        ["no-such-command"],
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str]) -> None:
    assert run_cli(*args, cwd=tmp_path).returncode == 2


def test_bad_simulator_option_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "good.lean").write_text(GOOD)
    done = run_cli("verify", "--sim", "--sim-option", "nonsense", "good.lean", cwd=tmp_path)
    assert done.returncode == 2
    assert "KEY=VALUE" in done.stdout


def test_simulator_import_cost_option_reaches_the_simulator(tmp_path: Path) -> None:
    dataset = write_jsonl(
        tmp_path / "d.jsonl", [json.dumps({"header": "import Mathlib", "code": GOOD})]
    )
    done, results = verify(tmp_path, "--sim-option", "import=Mathlib=1500ms,0mb", str(dataset))
    assert done.returncode == 0, done.stdout + done.stderr
    assert results[0]["seconds"] >= 1.5  # the import was paid before the answer


@pytest.mark.skipif(
    bool(shutil.which("elan") or shutil.which("lake")), reason="needs a machine without Lean"
)
def test_verify_without_lean_explains_and_suggests_sim(tmp_path: Path) -> None:
    (tmp_path / "good.lean").write_text(GOOD)
    done = run_cli(
        "verify",
        "--lean-version",
        "v4.19.0",
        "--cache-dir",
        str(tmp_path / "c"),
        "good.lean",
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "--sim" in done.stdout


# ------------------------------------------------------------------------------ setup, doctor
@pytest.mark.skipif(
    bool(shutil.which("elan") or shutil.which("lake")), reason="needs a machine without Lean"
)
def test_setup_without_lean_fails_clearly(tmp_path: Path) -> None:
    done = run_cli(
        "setup", "--lean-version", "v4.19.0", "--cache-dir", str(tmp_path / "c"), cwd=tmp_path
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Setup failed" in done.stdout
    assert "leanpool doctor" in done.stdout


def test_doctor_reports_every_check_and_what_to_do(tmp_path: Path) -> None:
    env_has_elan = bool(shutil.which("elan"))
    done = run_cli("doctor", cwd=tmp_path)
    assert done.returncode == (0 if env_has_elan else 1), done.stdout + done.stderr
    for check in ("elan", "toolchains", "cache", "REPL builds", "cores", "memory", "RLIMIT_AS"):
        assert check in done.stdout
    assert "memory cgroups" in done.stdout
    for mechanism in ("environment", "namespaces", "landlock", "seccomp", "process limit"):
        assert f"sandbox: {mechanism}" in done.stdout
    if not env_has_elan:
        assert "install elan" in done.stdout  # the actionable line


def test_doctor_counts_cached_repl_builds(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    binary = cache / "repl-v4.19.0" / ".lake" / "build" / "bin" / "repl"
    binary.parent.mkdir(parents=True)
    binary.write_bytes(b"\0" * 2048)
    env_before = os.environ.get("LEANPOOL_CACHE_DIR")
    os.environ["LEANPOOL_CACHE_DIR"] = str(cache)
    try:
        done = run_cli("doctor", cwd=tmp_path)
    finally:
        if env_before is None:
            del os.environ["LEANPOOL_CACHE_DIR"]
        else:
            os.environ["LEANPOOL_CACHE_DIR"] = env_before
    assert str(cache) in done.stdout
    assert "repl-v4.19.0/.lake/build/bin/repl" in done.stdout


# ------------------------------------------------------------------------------ fake Lean
@pytest.fixture
def fake_lean(tmp_path: Path) -> Any:
    """Fake elan/lake/git (from the config tests) whose REPL build is the simulator."""
    from fake_tools import FakeTools  # tests/ is on the path: a skip could never happen

    fakes = FakeTools(tmp_path / "fakes")
    fakes.add_repl_remote()
    return fakes


def test_setup_reports_what_was_installed_where(tmp_path: Path, fake_lean: Any) -> None:
    done = run_cli("setup", "--lean-version", "v4.19.0", cwd=tmp_path, env=fake_lean.env())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "leanpool setup: ready" in done.stdout
    assert "v4.19.0" in done.stdout
    assert str(fake_lean.cache) in done.stdout  # the REPL was built under the cache
    assert "LEAN_PATH" in done.stdout  # the environment captured from lake env


def test_verify_on_lean_is_not_labelled_simulator(tmp_path: Path, fake_lean: Any) -> None:
    (tmp_path / "good.lean").write_text(GOOD)
    output = tmp_path / "out.jsonl"
    done = run_cli(
        "verify",
        "--lean-version",
        "v4.19.0",
        "-j",
        "1",
        "-o",
        str(output),
        "good.lean",
        cwd=tmp_path,
        env=fake_lean.env(),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SIMULATOR" not in done.stdout
    assert json.loads(output.read_text())["verdict"] == "passed"


def test_doctor_lists_toolchains_and_builds_after_setup(tmp_path: Path, fake_lean: Any) -> None:
    setup = run_cli("setup", "--lean-version", "v4.19.0", cwd=tmp_path, env=fake_lean.env())
    assert setup.returncode == 0, setup.stdout + setup.stderr
    done = run_cli("doctor", cwd=tmp_path, env=fake_lean.env())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "not found on PATH" not in done.stdout
    rows = {line.split("│")[0].strip(): line for line in done.stdout.splitlines() if "│" in line}
    assert "v4.19.0" in rows["toolchains"]
    assert ".lake/build/bin/repl" in rows["REPL builds"]


def test_version_and_console_script_module(tmp_path: Path) -> None:
    import leanpool

    done = run_cli("--version", cwd=tmp_path)
    assert done.returncode == 0
    assert leanpool.__version__ in done.stdout


# ------------------------------------------------------------------------------------- inputs
def test_jsonl_line_builds_header_then_code() -> None:
    item = parse_jsonl_line(
        json.dumps({"id": "x", "header": "import Mathlib\n", "code": GOOD}), "f:1"
    )
    assert isinstance(item, ProofInput)
    assert item.command == "import Mathlib\n\n" + GOOD
    assert item.command.splitlines()[item.header_lines] == GOOD.strip()


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("{", "invalid JSON"),
        ("3", "expected a JSON object"),
        ('{"id": 1}', 'missing the "code" field'),
        ('{"code": 5}', '"code" must be a string'),
        ('{"code": "   "}', '"code" is empty'),
        ('{"code": "x", "header": ["import A"]}', '"header" must be a string'),
    ],
)
def test_malformed_jsonl_lines_are_problems(line: str, fragment: str) -> None:
    problem = parse_jsonl_line(line, "data.jsonl:4")
    assert isinstance(problem, InputProblem)
    assert fragment in problem.message
    assert problem.message.startswith("data.jsonl:4")


def test_unreadable_inputs_are_problems(tmp_path: Path) -> None:
    (tmp_path / "latin1.lean").write_bytes(b"theorem caf\xe9 : True := trivial")
    (tmp_path / "empty.lean").write_text("  \n")
    (tmp_path / "empty_dir").mkdir()
    items = list(
        read_inputs(
            [
                str(tmp_path / "latin1.lean"),
                str(tmp_path / "empty.lean"),
                str(tmp_path / "empty_dir"),
            ]
        )
    )
    assert all(isinstance(item, InputProblem) for item in items)
    messages = [item.message for item in items if isinstance(item, InputProblem)]
    assert "not valid UTF-8" in messages[0]
    assert "empty" in messages[1]
    assert "no .lean files" in messages[2]


# ------------------------------------------------------------------------------------- sandbox
def test_verify_runs_proofs_in_the_sandbox_unless_told_not_to(tmp_path: Path) -> None:
    from leanpool._sandbox import sandbox_support

    if sandbox_support().landlock_abi == 0:
        pytest.skip(f"sandbox mechanism landlock unavailable: {sandbox_support().landlock_detail}")
    escape = tmp_path / "escaped"
    (tmp_path / "p.lean").write_text(f"theorem p : 1 = 1 := rfl --!sim write={escape}\n")
    confined, confined_results = verify(tmp_path, "p.lean")
    assert confined.returncode == 1, confined.stdout + confined.stderr
    [error] = confined_results[0]["errors"]
    assert "Permission denied" in error["message"] and not escape.exists()
    unconfined, unconfined_results = verify(tmp_path, "p.lean", "--no-sandbox")
    assert unconfined.returncode == 0, unconfined.stdout + unconfined.stderr
    assert unconfined_results[0]["verdict"] == "passed" and escape.is_file()


def test_verify_sandbox_flags_become_pool_options(tmp_path: Path) -> None:
    from leanpool._cli import build_parser
    from leanpool._cli._sandbox import sandbox_options

    def options(*flags: str) -> dict[str, Any]:
        return sandbox_options(build_parser().parse_args(["verify", "x.lean", *flags]))

    assert options() == {"sandbox": "auto", "pass_env": ()}
    assert options("--pass-env", "HF_TOKEN", "--pass-env", "LEAN_ABORT_ON_PANIC") == {
        "sandbox": "auto",
        "pass_env": ("HF_TOKEN", "LEAN_ABORT_ON_PANIC"),
    }
    assert options("--no-sandbox")["sandbox"] is None
    bad = run_cli("verify", "--sim", "--pass-env", "A=B", "x.lean", cwd=tmp_path)
    assert bad.returncode == 2 and "--pass-env" in bad.stderr


def test_verdict_policy_through_the_command_line(tmp_path: Path) -> None:
    statement = "theorem comm (a b : Nat) : a + b = b + a := by sorry"
    dataset = write_jsonl(
        tmp_path / "d.jsonl",
        [
            json.dumps({"id": "honest", "code": GOOD}),
            json.dumps({"id": "cheat", "code": "axiom c : False\ntheorem t : 1 = 2 := c.elim"}),
            json.dumps(
                {
                    "id": "other_statement",
                    "code": "theorem comm (a b : Nat) (h : a = b) : a + b = b + a := by omega",
                    "formal_statement": statement,
                }
            ),
            json.dumps(
                {
                    "id": "statement",
                    "code": "theorem comm (x y : Nat) : x + y = y + x := by omega",
                    "statement": statement,
                }
            ),
            json.dumps({"id": "native", "code": "theorem n : 2 + 2 = 4 := by native_decide"}),
        ],
    )
    done, results = verify(tmp_path, str(dataset))
    assert done.returncode == 1, done.stdout + done.stderr
    got = {r["id"]: (r["verdict"], r["reasons"]) for r in results}
    assert got == {
        "honest": ("passed", []),
        "cheat": ("rejected", ["forbidden_command:axiom"]),
        "other_statement": ("rejected", ["statement_mismatch"]),
        "statement": ("passed", []),
        "native": ("rejected", ["native:n._native.native_decide.ax_1_1"]),
    }
    assert "reason: statement_mismatch" in done.stdout  # counted in the summary
    _lenient, lenient_results = verify(tmp_path, str(dataset), "--allow-native")
    assert {r["id"]: r["verdict"] for r in lenient_results}["native"] == "passed"


def test_heartbeat_budget_through_the_command_line(tmp_path: Path) -> None:
    runaway = (
        "set_option maxHeartbeats 0 in\ntheorem t : 1 + 1 = 2 := by\n  norm_num --!sim runaway\n"
    )
    dataset = write_jsonl(tmp_path / "r.jsonl", [json.dumps({"id": "runaway", "code": runaway})])
    done, results = verify(tmp_path, str(dataset), "--timeout", "3", "--heartbeat-budget", "1000")
    assert done.returncode == 1, done.stdout + done.stderr
    assert [(r["verdict"], r["reasons"]) for r in results] == [
        ("lean_error", ["error", "max_heartbeats"])
    ]
    assert "maximum number of heartbeats (1000)" in results[0]["errors"][0]["message"]
    unbounded, results = verify(tmp_path, str(dataset), "--timeout", "3")
    assert unbounded.returncode == 1 and results[0]["fault"] == "LeanTimeoutError", results
    lone = run_cli("verify", "--sim", "--lower-heartbeats", str(dataset), cwd=tmp_path)
    assert lone.returncode == 2 and "needs --heartbeat-budget" in lone.stderr


def test_doctor_totals_a_project_s_olean_files_against_an_address_space_limit(
    tmp_path: Path,
) -> None:
    project = tmp_path / "proj"
    lib = project / ".lake" / "packages" / "dep" / ".lake" / "build" / "lib" / "lean"
    lib.mkdir(parents=True)
    for index in range(3):
        (lib / f"M{index}.olean").write_bytes(b"\0" * (300 * 1024 * 1024 // 3))
    (lib / "M0.ilean").write_bytes(b"\0" * 1024)  # not a module's data
    (project / "lean-toolchain").write_text("leanprover/lean4:v4.19.0\n")
    home = {"ELAN_HOME": str(tmp_path / "no-elan")}
    done = run_cli("doctor", "--project", str(project), cwd=tmp_path, env=home)
    assert "3 .olean files, 300.0 MB" in done.stdout, done.stdout
    assert "needs at least 1324 MB" in done.stdout
    tight = run_cli(
        "doctor",
        "--project",
        str(project),
        "--memory-hard-limit-mb",
        "1000",
        cwd=tmp_path,
        env=home,
    )
    assert "memory_hard_limit_mb=1000 is too close to the 300 MB" in " ".join(tight.stdout.split())
    roomy = run_cli(
        "doctor",
        "--project",
        str(project),
        "--memory-hard-limit-mb",
        "4000",
        cwd=tmp_path,
        env=home,
    )
    assert "memory_hard_limit_mb=4000 leaves room" in roomy.stdout


def test_doctor_runs_the_preflight_on_a_project(tmp_path: Path) -> None:
    """An unbuilt project whose manifest lacks a required package: a failed check (exit 1) and
    a warning, each with what to do; a built one in step with its manifest: ok."""
    home = {"ELAN_HOME": str(tmp_path / "no-elan"), "LEANPOOL_CACHE_DIR": str(tmp_path / "c")}
    project = tmp_path / "proj"
    project.mkdir()
    (project / "lean-toolchain").write_text("leanprover/lean4:v4.19.0\n")
    (project / "lakefile.lean").write_text(
        "import Lake\nopen Lake DSL\npackage proj\n"
        'require foo from git "https://github.com/acme/foo" @ "main"\n'
        "@[default_target]\nlean_lib Proj\n"
    )
    (project / "lake-manifest.json").write_text(json.dumps({"version": 7, "packages": []}))
    done = run_cli("doctor", "--project", str(project), cwd=tmp_path, env=home)
    assert done.returncode == 1, done.stdout + done.stderr
    rows = {line.split("│")[0].strip(): line for line in done.stdout.splitlines() if "│" in line}
    assert "fail" in rows["project build"] and "not built" in rows["project build"]
    assert "warn" in rows["lake manifest"]
    assert "warn" in rows["REPL for project"]  # nothing cached for v4.19.0
    text = " ".join(done.stdout.split())
    assert "lake update foo" in text and f"leanpool setup --project {project}" in text
    package = project / ".lake" / "packages" / "foo"
    (package / ".lake" / "build" / "lib" / "lean").mkdir(parents=True)
    (package / ".lake" / "build" / "lib" / "lean" / "Foo.olean").write_bytes(b"o")
    (project / ".lake" / "build" / "lib" / "lean").mkdir(parents=True)
    (project / ".lake" / "build" / "lib" / "lean" / "Proj.olean").write_bytes(b"o")
    manifest = {"version": 7, "packages": [{"type": "git", "name": "foo", "inputRev": "main"}]}
    (project / "lake-manifest.json").write_text(json.dumps(manifest))
    fixed = run_cli("doctor", "--project", str(project), cwd=tmp_path, env=home)
    rows = {line.split("│")[0].strip(): line for line in fixed.stdout.splitlines() if "│" in line}
    assert "ok" in rows["project"], fixed.stdout
    assert not {"project build", "package build", "lake manifest"} & set(rows)


def test_doctor_finds_the_cached_repl_for_a_project_s_lean(tmp_path: Path, fake_lean: Any) -> None:
    setup = run_cli("setup", "--lean-version", "v4.19.0", cwd=tmp_path, env=fake_lean.env())
    assert setup.returncode == 0, setup.stdout + setup.stderr
    rows = {}
    for version in ("v4.19.0", "v4.21.0-rc3"):
        project = tmp_path / version
        project.mkdir()
        (project / "lean-toolchain").write_text(f"leanprover/lean4:{version}\n")
        (project / "lakefile.lean").write_text("import Lake\nopen Lake DSL\npackage proj\n")
        done = run_cli("doctor", "--project", str(project), cwd=tmp_path, env=fake_lean.env())
        lines = [line for line in done.stdout.splitlines() if "│" in line]
        rows[version] = {line.split("│")[0].strip(): line for line in lines}
    assert "ok" in rows["v4.19.0"]["REPL for project"]
    assert "project toolchain" not in rows["v4.19.0"]  # setup installed it
    missing = rows["v4.21.0-rc3"]["REPL for project"]
    assert "warn" in missing and "v4.19.0" in missing  # the cached one, for another Lean
    assert "warn" in rows["v4.21.0-rc3"]["project toolchain"]  # elan would download it
