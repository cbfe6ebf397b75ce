"""`leanpool selftest` on the REPL simulator and the fake toolchain (no Lean here): end to end
with every result labelled as the simulator's, the one line without Lean, and each check shown
able to fail (a difference in a recording, a leaked secret, an RLIMIT_AS too low, a setup that
fails, a check that raises)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from fake_tools import FAIL_ENV, UPSTREAM_REPL, FakeTools, use_fakes
from transcripts import TRANSCRIPTS_DIR, require_transcripts

from leanpool._cli import main
from leanpool._cli._selftest import EXIT_NO_LEAN
from leanpool._selftest import CHECKS, SelftestOptions, Target, is_simulator_command, run_check
from leanpool._selftest._checkpoints import check_checkpoints
from leanpool._selftest._compare import compare_sessions, split_responses
from leanpool._selftest._memory_check import check_memory
from leanpool._selftest._protocol import check_protocol, read_requests, run_test_files
from leanpool._selftest._report import CheckResult
from leanpool._selftest._sandbox_check import probe_confinement
from leanpool._selftest._verdicts import CASES, case_code, reasons_agree
from leanpool.testing import sim_command, sim_config

# Recordings without file-mode requests (their .lean files are not in the transcripts).
PAIRS = ("def_eval", "proof_step", "readme", "unknown_environment")
LEAN_VERSION = "v4.19.0"


def copy_pairs(directory: Path, names: tuple[str, ...] = PAIRS) -> Path:
    require_transcripts()
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        for suffix in (".in", ".expected.out"):
            shutil.copyfile(
                TRANSCRIPTS_DIR / "core" / f"{name}{suffix}", directory / f"{name}{suffix}"
            )
    return directory


def add_repl_tests(fakes: FakeTools, names: tuple[str, ...] = PAIRS) -> None:
    """Put REPL test files (copied now from the shared transcripts) in every commit of the
    fake REPL repository, so setup's checkout has a ``test/`` as the real one does."""
    require_transcripts()
    fakes.add_repl_remote()
    remote = fakes.remote_dir(UPSTREAM_REPL) / "remote.json"
    data = json.loads(remote.read_text())
    for files in data["commits"].values():
        for name in names:
            for suffix in (".in", ".expected.out"):
                text = (TRANSCRIPTS_DIR / "core" / f"{name}{suffix}").read_text(encoding="utf-8")
                files[f"test/{name}{suffix}"] = text
    remote.write_text(json.dumps(data))


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(["selftest", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {check["name"]: check["status"] for check in report["checks"]}


def sim_target(config: Any, **extra: Any) -> Target:
    return Target(config, False, None, None, {}, None, False, **extra)


# ------------------------------------------------------------------------------ end to end
def test_without_lean_one_line_and_its_own_exit_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("ELAN_HOME", str(tmp_path / "no-elan"))
    monkeypatch.chdir(tmp_path)
    status, out, err = run_cli([], capsys)
    assert status == EXIT_NO_LEAN == 3
    assert out == ""
    assert err.count("\n") == 1 and "no Lean on this machine" in err and "--sim" in err
    assert not (tmp_path / "leanpool-selftest.json").exists()


def test_sim_end_to_end_everything_labelled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tests = copy_pairs(tmp_path / "tests")
    report_path = tmp_path / "report.json"
    status, out, _err = run_cli(
        [
            "--sim",
            "--lean-version",
            LEAN_VERSION,
            "--repl-tests",
            str(tests),
            "--report",
            str(report_path),
            "--quick",
        ],
        capsys,
    )
    report = json.loads(report_path.read_text())
    assert status == 0, out
    assert report["exit_status"] == 0 and report["simulated"] is True
    assert [c["name"] for c in report["checks"]] == ["setup", *(name for name, _ in CHECKS)]
    assert all(check["simulated"] for check in report["checks"])
    assert statuses(report) == {
        "setup": "ok",
        "answers": "ok",
        "protocol": "ok",
        "simulator agreement": "ok",
        "verdicts": "ok",
        "sandbox": statuses(report)["sandbox"],
        "checkpoints": "ok",
        "memory": "info",
        "pool": "ok",
    }
    assert statuses(report)["sandbox"] in ("ok", "warn")  # warn: a mechanism missing here
    assert "REPL SIMULATOR (not real Lean" in report["target"]["label"]
    assert "REPL SIMULATOR" in out and "simulator" in out and "Report:" in out
    protocol = next(c for c in report["checks"] if c["name"] == "protocol")
    assert [f["name"] for f in protocol["details"]["files"]] == sorted(PAIRS)
    assert "checks the harness, not Lean" in protocol["summary"]
    verdicts = next(c for c in report["checks"] if c["name"] == "verdicts")
    assert len(verdicts["details"]["cases"]) == len(CASES)
    assert all(case["agrees"] for case in verdicts["details"]["cases"])
    agreement = next(c for c in report["checks"] if c["name"] == "simulator agreement")
    assert agreement["details"]["recording"]["selftest.in"].count("\n\n") == 10  # 11 requests
    pool = next(c for c in report["checks"] if c["name"] == "pool")
    assert pool["details"]["killed_repl"] is not None
    assert pool["details"]["done"] == pool["details"]["submitted"]


def test_fake_toolchain_end_to_end_is_recognised_as_the_simulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fakes = use_fakes(tmp_path / "fake", monkeypatch)
    add_repl_tests(fakes)
    report_path = tmp_path / "report.json"
    status, out, _err = run_cli(
        ["--lean-version", LEAN_VERSION, "--report", str(report_path), "--quick"], capsys
    )
    report = json.loads(report_path.read_text())
    assert status == 0, out
    assert report["simulated"] is True and all(c["simulated"] for c in report["checks"])
    setup = report["checks"][0]
    assert setup["status"] == "ok" and "the simulator (a fake toolchain)" in setup["summary"]
    target = report["target"]
    assert target["lean_version"] == LEAN_VERSION
    assert target["repl"]["ref"] == LEAN_VERSION and len(target["repl"]["commit"]) == 40
    assert target["repl_command"][-2:] == ["--lean-version", LEAN_VERSION]
    protocol = next(c for c in report["checks"] if c["name"] == "protocol")
    assert protocol["status"] == "ok"
    assert protocol["details"]["tests_dir"] == f"{target['repl_checkout']}/test"
    assert len(protocol["details"]["files"]) == len(PAIRS)
    assert "CROSS" not in json.dumps(protocol["details"]["ignored"])
    assert len(protocol["details"]["ignored"]) == 2  # its own recordings: layout, usedConstants
    assert fakes.count("lake build") == 1  # setup built the REPL once


def test_a_failed_setup_is_a_failed_row_and_the_rest_skip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fakes = use_fakes(tmp_path / "fake", monkeypatch)
    fakes.add_repl_remote()
    monkeypatch.setenv(FAIL_ENV, "git clone=network")
    report_path = tmp_path / "report.json"
    status, out, _err = run_cli(
        ["--lean-version", LEAN_VERSION, "--report", str(report_path)], capsys
    )
    report = json.loads(report_path.read_text())
    assert status == 1 and report["exit_status"] == 1
    assert statuses(report)["setup"] == "fail"
    assert "LeanSetupError" in report["checks"][0]["summary"]
    assert {s for name, s in statuses(report).items() if name != "setup"} == {"skip"}
    assert "disagrees: setup" in out


def test_a_check_that_raises_is_a_failed_row_with_its_traceback() -> None:
    def broken(target: Target, options: SelftestOptions) -> CheckResult:
        raise RuntimeError("probe exploded")

    result = run_check("broken", broken, sim_target(sim_config()), SelftestOptions())
    assert (result.status, result.summary) == ("fail", "RuntimeError: probe exploded")
    assert "Traceback" in result.details["traceback"]


# ------------------------------------------------------------------------------ protocol
def test_each_difference_from_a_recording_is_reported(tmp_path: Path) -> None:
    pristine = copy_pairs(tmp_path / "pristine")
    altered = copy_pairs(tmp_path / "altered")
    output = altered / "readme.expected.out"
    text = output.read_text()
    assert '"proofStatus": "Completed"' in text
    output.write_text(text.replace('"proofStatus": "Completed"', '"proofStatus": "Incomplete"', 1))
    # The live REPL answers from the altered recording; the files compared are the pristine ones.
    target = sim_target(sim_config(replay=[str(altered)]))
    outcomes = {
        o.name: o for o in run_test_files(target, pristine, cross_version=False, timeout=30)
    }
    assert [name for name, o in outcomes.items() if o.differences] == ["readme"]
    assert outcomes["readme"].differences == [
        "response 3.proofStatus: recorded 'Completed', live 'Incomplete'"
    ]
    result = check_protocol(target, SelftestOptions(repl_tests=str(pristine), timeout=30))
    assert result.status == "fail"
    assert "3/4 test files agree" in result.summary and "readme" in result.summary


def test_a_repl_that_dies_mid_file_is_a_difference(tmp_path: Path) -> None:
    tests = copy_pairs(tmp_path / "tests", ("proof_step",))
    target = sim_target(sim_config(fail_rate=1.0))  # crashes on every request
    (outcome,) = run_test_files(target, tests, cross_version=False, timeout=30)
    assert outcome.differences[0].startswith("request 1: TruncatedResponseError: ")
    assert "the REPL process died" in outcome.differences[0]
    assert outcome.differences[-1] == "4 responses recorded, 0 received live"


def test_requests_are_read_as_the_repl_reads_them() -> None:
    session = b'{"cmd": "a\n b"}\n\n-- a comment block\n\n{"env": 0,\n "cmd": "c"}'
    assert read_requests(session) == ['{"cmd": "a b"}\n', '{"env": 0, "cmd": "c"}']


def test_layout_key_order_and_used_constants_order_are_ignored() -> None:
    recorded = split_responses(
        '{"tactics":\n [{"usedConstants": ["b", "a"], "tactic": "rfl"}],\n "env": 0}\n\n'
    )
    live = [{"env": 0, "tactics": [{"tactic": "rfl", "usedConstants": ["a", "b"]}]}]
    comparison = compare_sessions(recorded, live)
    assert comparison.agrees
    assert comparison.tolerated == ["order of usedConstants (a hash-set artefact)"]


def test_differences_name_where_they_are() -> None:
    recorded = [{"env": 1, "messages": [{"data": "x", "severity": "info"}]}, {"env": 2}]
    live = [{"env": 1, "messages": [{"data": "y", "severity": "info"}], "sorries": []}]
    assert compare_sessions(recorded, live).differences == [
        "response 1.messages[0].data: recorded 'x', live 'y'",
        "response 1.sorries: not recorded, live []",
        "2 responses recorded, 1 received live",
    ]


def test_release_to_release_drift_is_tolerated_only_across_versions() -> None:
    recorded = [
        {"proofStatus": "Completed", "proofState": 1, "goals": []},
        {"env": 0, "messages": [{"data": "declaration uses `sorry`"}]},
        {"env": 1, "messages": [{"data": "Unknown identifier `g`"}]},
    ]
    live = [
        {"proofState": 1, "goals": []},
        {"env": 0, "messages": [{"data": "declaration uses 'sorry'"}]},
        {"env": 1, "messages": [{"data": "unknown identifier 'g'"}]},
    ]
    same_release = compare_sessions(recorded, live)
    assert len(same_release.differences) == 3
    across = compare_sessions(recorded, live, cross_version=True)
    assert across.agrees, across.differences
    assert len(across.tolerated) == 2
    # A change of meaning is still a difference.
    live[2]["messages"][0]["data"] = "unknown identifier 'h'"
    assert compare_sessions(recorded, live, cross_version=True).differences == [
        "response 3.messages[0].data: recorded 'Unknown identifier `g`', live "
        "'Unknown identifier `h`'"
    ]


# ------------------------------------------------------------------------------ the other checks
def test_case_code_replaces_norm_num_without_mathlib() -> None:
    assert case_code("theorem t : 1 = 1 := by norm_num", mathlib=False).endswith("by decide")
    assert case_code("theorem t : 1 = 1 := by norm_num", mathlib=True).endswith("by norm_num")


def test_native_reasons_agree_by_release() -> None:
    new = ("native:t5._native.native_decide.ax_1_1",)
    old = ("native:Lean.ofReduceBool", "native:Lean.trustCompiler")
    assert reasons_agree(new, new, "v4.29.0")
    assert reasons_agree(new, old, "v4.28.0")
    assert not reasons_agree(new, old, "v4.29.0-rc1")
    assert not reasons_agree(new, new, "v4.19.0")
    assert not reasons_agree(new, ("sorry",), None)
    assert reasons_agree(("sorry",), ("sorry",), None)
    assert not reasons_agree(("sorry",), (), None)


def test_the_memory_check_fails_when_the_import_does_not_fit() -> None:
    config = sim_config(imports={"Lean": (10, 400)})
    options = SelftestOptions(timeout=60)
    low = check_memory(sim_target(config, memory_hard_limit_mb=300), options)
    assert low.status == "fail" and "RLIMIT_AS=300 MB" in low.summary
    roomy = check_memory(sim_target(config, memory_hard_limit_mb=3000), options)
    assert roomy.status == "ok", roomy.summary
    assert roomy.details["VmPeak"] > 400 and roomy.details["margin_mb"] < 3000 - 400
    tight = check_memory(
        sim_target(config, memory_hard_limit_mb=int(roomy.details["VmPeak"] * 1.05) + 1), options
    )
    assert tight.status == "warn", tight.summary
    unlimited = check_memory(sim_target(config), options)
    assert unlimited.status == "info" and "no RLIMIT_AS set" in unlimited.summary


def test_the_memory_check_splits_an_import_into_mapped_and_private_memory(tmp_path: Path) -> None:
    """The simulator maps its modules as Lean maps .olean files: the 400 MB import is file
    pages (shared), and private memory stays small; its fallback copy is private instead."""
    options = SelftestOptions(timeout=60)
    for private, (files, anon) in ((False, ("RssFile", "RssAnon")), (True, ("RssAnon", "RssFile"))):
        config = sim_config(
            imports={"Lean": (10, 400)}, module_dir=str(tmp_path), private_imports=private
        )
        result = check_memory(sim_target(config), options)
        assert result.details[files] >= 400 > result.details[anon] + 200, result.details
        assert "MB mapped files, shared between REPLs, and" in result.summary


def test_the_sandbox_probes_see_a_repl_that_is_not_confined() -> None:
    target = Target(sim_config(), True, None, None, {}, None, False)
    facts, leaks = probe_confinement(target, 30, sandbox=None)
    assert facts["secret_visible"] and facts["wrote_outside"]
    assert len(leaks) == 2
    confined, none = probe_confinement(target, 30)
    assert not confined["secret_visible"] and confined["wrote_inside"]
    assert [leak for leak in none if "environment" in leak] == []


def test_the_simulator_is_recognised_however_it_is_started(tmp_path: Path) -> None:
    assert is_simulator_command(sim_command())
    wrapper = tmp_path / "repl"
    wrapper.write_text('#!/bin/sh\nexec "/usr/bin/python3" -m leanpool.testing.simrepl "$@"\n')
    assert is_simulator_command([str(wrapper)])
    other = tmp_path / "other"
    other.write_text("#!/bin/sh\nexec /opt/lean/repl\n")
    assert not is_simulator_command([str(other)])
    assert not is_simulator_command(["/bin/sh"])
    assert not is_simulator_command([str(tmp_path / "missing")])


def test_checkpoints_round_trip_a_state_and_time_it() -> None:
    result = check_checkpoints(sim_target(sim_config(pickle_ms=30)), SelftestOptions(timeout=60))
    assert result.status == "ok", result.summary
    assert result.details["pickle_ms"] >= 30 and result.details["pickle_bytes"] > 0
    assert {"unpickle_ms", "tactic_step_ms"} <= set(result.details)
    assert "pickle" in result.summary and "the tactic step" in result.summary


def test_checkpoints_fail_when_the_restored_state_cannot_be_finished() -> None:
    """A REPL whose restored state does not close as the original would (here: no `simp`)."""
    target = sim_target(sim_config(closing_tactics=["omega"]))
    result = check_checkpoints(target, SelftestOptions(timeout=60))
    assert result.status == "fail" and "simp on the unpickled state" in result.summary
