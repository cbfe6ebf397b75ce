"""The simulator executable on the wire: framing, fatal errors, ids, and synthetic answers."""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sim_process import SimProcess, responses, run_sim, sim_factory, wire

from leanpool.protocol import CommandResponse, LeanError, ProofStepResponse, parse_response
from leanpool.testing import SimOptions, sim_command, sim_config
from leanpool.testing._imports import ImportCost
from leanpool.testing._options import parse_options


@pytest.fixture
def sim() -> Iterator[Callable[..., SimProcess]]:
    with sim_factory() as start:
        yield start


def _session(*requests: dict[str, Any] | str, flags: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as folder:  # whatever a request writes stays out of the repo
        result = run_sim(wire(*requests), *flags, cwd=folder)
    assert result.returncode == 0, result.stderr.decode()
    return responses(result.stdout)


# --- framing (getLines and the repl loop in REPL/Main.lean) ----------------------------------
def test_responses_are_lean_pretty_json_ending_with_a_blank_line() -> None:
    result = run_sim(wire({"cmd": "def f : Nat := by sorry"}))
    text = result.stdout.decode()
    assert text.startswith('{"sorries":\n [{"proofState": 0,\n   "pos": {"line": 1, "column": 18},')
    assert text.endswith('"env": 0}\n\n')
    assert "\n\n" not in text[:-2]


def test_a_request_spread_over_lines_is_trimmed_and_glued() -> None:
    # Trailing spaces go, lines join without separator: `by` + `sorry` becomes `bysorry`.
    raw = '{"cmd":   \n "theorem foo : 1 = 1 := by   \nsorry"}\n\n'
    [answer] = responses(run_sim(raw).stdout)
    assert answer["messages"][0]["data"] == "Unknown identifier `bysorry`"


def test_comment_blocks_get_no_response() -> None:
    session = "# a comment\n\n-- another\n\n" + wire({"cmd": "#eval 1"})
    result = run_sim(session)
    assert [r["messages"][0]["data"] for r in responses(result.stdout)] == ["1"]


def test_a_request_cut_off_by_eof_is_still_processed_and_eof_exits_0() -> None:
    result = run_sim('{"cmd": "#eval 2 + 3"}')  # no terminator at all
    assert result.returncode == 0
    assert responses(result.stdout)[0]["messages"][0]["data"] == "5"
    assert run_sim(b"").returncode == 0


@pytest.mark.parametrize(
    ("session", "reason"),
    [
        ("this is not json\n\n", "Could not parse JSON"),
        ('{"cmd": "#eval 1", "env": "0"}\n\n', "Could not parse as a valid JSON command"),
        ('{"cmd": "#eval 1", "allTactics": 1}\n\n', "Could not parse as a valid JSON command"),
        ('{"tactic": "rfl", "proofState": -1}\n\n', "Could not parse as a valid JSON command"),
        ('{"cmd": "#eval 1"}\n\n\n', "Could not parse JSON"),  # two blank lines
        ("\n" + wire({"cmd": "#eval 1"}), "Could not parse JSON"),  # blank line first
    ],
)
def test_invalid_input_is_fatal_with_an_uncaught_exception(session: str, reason: str) -> None:
    result = run_sim(session + wire({"cmd": "#eval 9"}))
    assert result.returncode == 1
    stderr = result.stderr.decode()
    assert stderr.startswith('uncaught exception: {"message":')
    assert reason in stderr
    assert b'"data": "9"' not in result.stdout  # nothing after the fatal request is answered


def test_two_blank_lines_after_a_good_request_kill_after_answering_it() -> None:
    result = run_sim('{"cmd": "#eval 1"}\n\n\n' + wire({"cmd": "#eval 2"}))
    assert result.returncode == 1
    assert [r["messages"][0]["data"] for r in responses(result.stdout)] == ["1"]


def test_classification_order_and_unknown_keys(tmp_path: Path) -> None:
    answers = _session_in(
        tmp_path,
        {"cmd": "def f := 1"},
        {"cmd": "#eval 1", "env": 0, "pickleTo": "ignored.olean", "junk": 1},
        {"tactic": "rfl", "proofState": 0, "env": 0},
    )
    assert answers[1] == {"env": 0}  # a pickle request: cmd ignored, the same id echoed
    assert (tmp_path / "ignored.olean").is_file()
    assert answers[2] == {"message": "Unknown proof state."}


def test_unknown_environment_and_proof_state_errors_allocate_nothing() -> None:
    answers = _session(
        {"cmd": "#eval 1", "env": 5},
        {"tactic": "rfl", "proofState": 3},
        {"pickleTo": "x.olean", "proofState": 3},
        {"pickleTo": "x.olean", "env": 3},
        {"unpickleProofStateFrom": "x.olean", "env": 3},
        {"cmd": "theorem t : True := sorry"},
        {"tactic": "trivial", "proofState": 0},
    )
    assert answers[:5] == [
        {"message": "Unknown environment."},
        {"message": "Unknown proof state."},
        {"message": "Unknown proof State."},
        {"message": "Unknown environment."},
        {"message": "Unknown environment."},
    ]
    assert answers[5]["env"] == 0 and answers[5]["sorries"][0]["proofState"] == 0
    assert answers[6] == {"proofStatus": "Completed", "proofState": 1, "goals": []}


def test_imports_are_a_header_only_without_env() -> None:
    answers = _session({"cmd": "import Lean"}, {"cmd": "import Lean\n#eval 1", "env": 0})
    assert answers[0] == {"env": 0}
    errors = [m for m in answers[1]["messages"] if m["severity"] == "error"]
    assert errors[0]["data"] == (
        "invalid 'import' command, it must be used in the beginning of the file"
    )
    assert answers[1]["env"] == 1


def test_env_and_proof_state_counters_are_separate_and_start_at_0() -> None:
    answers = _session(
        {"cmd": "theorem a : 1 = 1 := by sorry\ntheorem b : 2 = 2 := by sorry"},
        {"cmd": "def x := 1", "env": 0},
        {"tactic": "rfl", "proofState": 1},
    )
    assert [s["proofState"] for s in answers[0]["sorries"]] == [0, 1]
    assert answers[0]["env"] == 0 and answers[1]["env"] == 1
    assert answers[2]["proofState"] == 2


# --- synthetic answers ---------------------------------------------------------------------
SYNTHETIC_SESSION: list[dict[str, Any]] = [
    {"cmd": "#eval 7 * 6"},
    {"cmd": "theorem t (x y : Nat) (h : x > 0) : x + y = y + x := by sorry"},
    {"tactic": "omega", "proofState": 0},
    {"tactic": "sorry", "proofState": 0},
    {"tactic": "exat 42", "proofState": 0},
    {"cmd": "example : 2 + 2 = 5 := by decide"},
    {"cmd": "def double (n : Nat) : Nat := 2 * n\n#check double", "allTactics": True},
    {"cmd": "example (p q : Prop) (hp : p) (hq : q) : p ∧ q := by\n  constructor\n  exact hp\n"
     "  exact hq", "allTactics": True, "rootGoals": True},
    {"pickleTo": "shape.olean", "proofState": 0},
]  # fmt: skip


def test_synthetic_answers_have_the_shapes_of_repl_protocol_section_3(tmp_path: Path) -> None:
    result = run_sim(wire(*SYNTHETIC_SESSION), cwd=tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    answers = responses(result.stdout)
    assert len(answers) == len(SYNTHETIC_SESSION)
    for request, answer in zip(SYNTHETIC_SESSION, answers, strict=True):
        model = parse_response(answer, request)
        assert model.to_repl_dict() == answer  # nothing unknown, nothing missing
    kinds = [type(parse_response(a)) for a in answers]
    assert kinds == [
        CommandResponse,
        CommandResponse,
        ProofStepResponse,
        ProofStepResponse,
        LeanError,
        CommandResponse,
        CommandResponse,
        CommandResponse,
        ProofStepResponse,
    ]


def test_eval_answers_with_the_value_at_the_keyword() -> None:
    [answer] = _session({"cmd": "#eval (2 + 3) * 4 ^ 2 - 10 / 3 % 2"})
    assert answer == {
        "messages": [
            {
                "severity": "info",
                "pos": {"line": 1, "column": 0},
                "endPos": {"line": 1, "column": 5},
                "data": "79",
            }
        ],
        "env": 0,
    }


def test_sorry_declarations_open_proof_states_with_goals_in_repl_form() -> None:
    [answer] = _session({"cmd": "theorem foo (p q : Prop) (h1 : p ∧ q) : q ∧ p := by sorry"})
    assert answer == {
        "sorries": [
            {
                "proofState": 0,
                "pos": {"line": 1, "column": 52},
                "goal": "p q : Prop\nh1 : p ∧ q\n⊢ q ∧ p",
                "endPos": {"line": 1, "column": 57},
            }
        ],
        "messages": [
            {
                "severity": "warning",
                "pos": {"line": 1, "column": 8},
                "endPos": {"line": 1, "column": 11},
                "data": "declaration uses `sorry`",
            }
        ],
        "env": 0,
    }


def test_a_proof_search_branches_from_one_state() -> None:
    answers = _session(
        {"cmd": "theorem foo (p q : Prop) (h1 : p ∧ q) : q ∧ p := by sorry"},
        {"tactic": "constructor", "proofState": 0},
        {"tactic": "exact h1.right", "proofState": 1},
        {"tactic": "exact h1.left", "proofState": 2},
        {"tactic": "intro h", "proofState": 0},
        {"tactic": "sorry", "proofState": 1},
        {"tactic": "exat h1", "proofState": 1},
    )
    assert answers[1]["goals"] == [
        "case left\np q : Prop\nh1 : p ∧ q\n⊢ q",
        "case right\np q : Prop\nh1 : p ∧ q\n⊢ p",
    ]
    assert answers[1]["proofStatus"] == "Incomplete: open goals remain"
    assert answers[3] == {"proofStatus": "Completed", "proofState": 3, "goals": []}
    assert answers[4]["message"].startswith("Lean error:\nTactic `intro` failed")
    assert answers[5]["sorries"] == [{"proofState": 4, "goal": answers[1]["goals"][0]}]
    assert answers[5]["proofState"] == 5 and answers[5]["goals"] == [answers[1]["goals"][1]]
    assert answers[6] == {"message": "Lean error:\n<input>:1:1: unknown tactic"}


def test_closed_arithmetic_is_checked_so_wrong_proofs_fail() -> None:
    def errors(cmd: str) -> list[str]:
        [answer] = _session({"cmd": cmd})
        return [m["data"] for m in answer.get("messages", []) if m["severity"] == "error"]

    for tactic in ("rfl", "decide", "norm_num", "simp", "omega"):
        assert errors(f"theorem ok : 2 + 2 = 4 := by {tactic}") == [], tactic
        assert errors(f"theorem ok : 10 % 3 = 1 := by {tactic}") == [], tactic
        assert errors(f"theorem bad : 2 + 2 = 5 := by {tactic}"), tactic
        assert errors(f"theorem bad : 5 < 3 := by {tactic}"), tactic
    assert errors("theorem bad : 2 + 2 = 5 := by decide") == [
        "Tactic `decide` proved that the proposition\n  2 + 2 = 5\nis false"
    ]
    assert errors("theorem bad : 2 + 2 = 5 := by norm_num") == ["unsolved goals\n⊢ False"]


def test_environments_remember_declarations() -> None:
    answers = _session(
        {"cmd": "def f := 37\ntheorem f_pos : 0 < 37 := by decide"},
        {"cmd": "#check f\n#check f_pos\n#eval f + 5\n#check g", "env": 0},
        {"cmd": "example : 0 < 37 := by exact f_pos", "env": 0},
        {"cmd": "example : 0 < 37 := by exact f_pos"},
    )
    data = [m["data"] for m in answers[1]["messages"]]
    assert data == ["f : Nat", "f_pos : 0 < 37", "42", "Unknown identifier `g`"]
    assert "messages" not in answers[2]
    assert answers[3]["messages"][0]["data"] == "Unknown identifier `f_pos`"


def test_closing_tactics_can_be_overridden() -> None:
    requests = (
        {"cmd": "theorem t (n : Nat) : n * 0 = 0 := by sorry"},
        {"tactic": "ring", "proofState": 0},
        {"tactic": "simp", "proofState": 0},
    )
    default = _session(*requests)
    assert default[1] == {"message": "Lean error:\n<input>:1:1: unknown tactic"}
    assert default[2]["proofStatus"] == "Completed"
    custom = _session(*requests, flags=("--closing-tactics", "ring,exact"))
    assert custom[1]["proofStatus"] == "Completed"
    assert custom[2] == {"message": "Lean error:\n<input>:1:1: unknown tactic"}


def test_the_same_inputs_give_the_same_outputs() -> None:
    session = wire(*SYNTHETIC_SESSION[:-1])
    first, second = run_sim(session), run_sim(session)
    assert first.stdout == second.stdout and first.returncode == 0


def test_pickles_carry_state_to_another_process(tmp_path: Path) -> None:
    writer = _session_in(
        tmp_path,
        {"cmd": "def f := 40\ntheorem t (n : Nat) : n + f = f + n := by sorry"},
        {"pickleTo": "env.olean", "env": 0},
        {"pickleTo": "state.olean", "proofState": 0},
    )
    assert writer[1] == {"env": 0}
    assert writer[2]["proofState"] == 1 and writer[2]["goals"] == ["n : Nat\n⊢ n + f = f + n"]
    reader = _session_in(
        tmp_path,
        {"unpickleEnvFrom": "env.olean"},
        {"cmd": "#eval f + 2", "env": 0},
        {"unpickleProofStateFrom": "state.olean"},
        {"tactic": "omega", "proofState": 0},
    )
    assert reader[0] == {"env": 0}
    assert reader[1]["messages"][0]["data"] == "42"
    assert reader[2]["goals"] == writer[2]["goals"]
    assert reader[3] == {"proofStatus": "Completed", "proofState": 1, "goals": []}


def test_pickles_cost_the_cpu_they_are_given(tmp_path: Path) -> None:
    """--pickle-ms / --unpickle-ms: each pickle and unpickle request burns that much CPU."""
    requests = wire(
        {"cmd": "theorem t (n : Nat) : n = n := by sorry"},
        {"pickleTo": "state.olean", "proofState": 0},
        {"unpickleProofStateFrom": "state.olean", "env": 0},
    )

    def child_cpu(*flags: str) -> float:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = run_sim(requests, *flags, cwd=tmp_path)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        assert result.returncode == 0, result.stderr.decode()
        assert len(responses(result.stdout)) == 3
        return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)

    plain = child_cpu()
    charged = child_cpu("--pickle-ms", "300", "--unpickle-ms", "400")
    assert charged - plain >= 0.65  # 0.3 + 0.4 s, less the noise of two start-ups


def test_failing_pickle_io_is_fatal(tmp_path: Path) -> None:
    result = run_sim(wire({"unpickleEnvFrom": "missing.olean"}), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.decode() == (
        "uncaught exception: no such file or directory (error code: 2)\n  file: missing.olean\n"
    )


def test_file_mode_reads_relative_to_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "a.lean").write_text("def g := 5\n#eval g * 2\n", encoding="utf-8")
    answers = _session_in(tmp_path, {"path": "a.lean"}, {"path": "absent.lean"})
    assert answers[0]["messages"][0]["data"] == "10"
    assert answers[1] == {
        "message": "no such file or directory (error code: 2)\n  file: absent.lean"
    }


def _session_in(folder: Path, *requests: dict[str, Any]) -> list[dict[str, Any]]:
    result = run_sim(wire(*requests), cwd=folder)
    assert result.returncode == 0, result.stderr.decode()
    return responses(result.stdout)


# --- options ---------------------------------------------------------------------------------
def test_sim_command_maps_options_to_flags() -> None:
    command = sim_command(
        seed=3,
        fail_rate=0.25,
        imports={"Mathlib": (3000, 2000)},
        import_default="5ms,1mb",
        startup_ms=10,
        pickle_ms=3,
        unpickle_ms=4,
        closing_tactics=["simp", "exact"],
        replay="some/dir",
        module_dir="/shared/modules",
        private_imports=True,
    )
    assert command[:3] == [sys.executable, "-m", "leanpool.testing.simrepl"]
    assert command[3:] == [
        "--seed", "3", "--fail-rate", "0.25", "--import", "Mathlib=3000ms,2000mb",
        "--import-default", "5ms,1mb", "--startup-ms", "10", "--pickle-ms", "3",
        "--unpickle-ms", "4", "--closing-tactics", "simp,exact",
        "--module-dir", "/shared/modules", "--private-imports", "--replay", "some/dir",
    ]  # fmt: skip
    assert parse_options(command[3:]) == SimOptions(
        seed=3,
        fail_rate=0.25,
        imports={"Mathlib": ImportCost(3000, 2000)},
        import_default=ImportCost(5, 1),
        startup_ms=10,
        pickle_ms=3,
        unpickle_ms=4,
        closing_tactics=["simp", "exact"],
        replay=("some/dir",),
        module_dir="/shared/modules",
        private_imports=True,
    )


def test_module_files_go_to_leanpool_s_cache_directory_by_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LEANPOOL_CACHE_DIR", str(tmp_path / "cache"))
    command = sim_command(imports={"Mathlib": (0, 10)})
    assert command[-2:] == ["--module-dir", str(tmp_path / "cache" / "simulator-modules")]
    assert "--module-dir" not in sim_command()  # nothing imported costs memory
    assert sim_command() == [sys.executable, "-m", "leanpool.testing.simrepl"]
    with pytest.raises(ValueError):
        SimOptions(fail_rate=2.0)
    with pytest.raises(ValueError, match="pickle_ms must be 0 or more"):
        SimOptions(pickle_ms=-1)


def test_help_documents_every_directive() -> None:
    result = subprocess.run([*sim_command(), "--help"], capture_output=True, timeout=60)
    assert result.returncode == 0
    text = result.stdout.decode()
    for directive in (
        "stderr_kb=N", "cpu_ms=N", "sleep_ms=N", "rss_mb=N", "huge_kb=N",
        "error", "crash", "oom", "hang", "hang_hard", "garbage",
    ):  # fmt: skip
        assert directive in text, directive


def test_bad_options_exit_with_usage() -> None:
    result = subprocess.run(
        [*sim_command(), "--import", "Mathlib"], capture_output=True, timeout=60
    )
    assert result.returncode == 2
    assert b"--import wants MODULE=TIMEms,MEMmb" in result.stderr


def test_fail_rate_crashes_reproducibly_for_a_seed() -> None:
    session = wire(*({"cmd": f"#eval {i}"} for i in range(40)))

    def answered(seed: int) -> int:
        result = run_sim(session, "--seed", str(seed), "--fail-rate", "0.1")
        return len(responses(result.stdout.rsplit(b"}\n\n", 1)[0] + b"}\n\n"))

    counts = [answered(seed) for seed in (1, 2, 3)]
    assert counts == [answered(seed) for seed in (1, 2, 3)]
    assert all(count < 40 for count in counts)  # 0.9 ** 40 ~ 1.5%: at least one crash each
    assert run_sim(session, "--fail-rate", "1").returncode == -6
    assert len(responses(run_sim(session, "--fail-rate", "0").stdout)) == 40


def test_the_simulator_imports_no_heavy_packages() -> None:
    code = (
        "import sys, leanpool.testing.simrepl; "
        "print(','.join(m for m in ('pydantic', 'loky', 'rich') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().strip() == ""


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).with_name("leanpool-simrepl")
    if not script.exists():
        pytest.skip("console script not installed in this environment (run make install)")
    result = subprocess.run(
        [str(script)], input=wire({"cmd": "#eval 1"}).encode(), capture_output=True, timeout=60
    )
    assert json.loads(result.stdout)["messages"][0]["data"] == "1"


@pytest.mark.skipif(
    importlib.util.find_spec("leanpool._config") is None,
    reason="leanpool._config (LeanREPLConfig) is not written yet",
)
def test_sim_config_launches_the_simulator_through_the_config(tmp_path: Path) -> None:
    config = sim_config(imports={"Mathlib": (10, 1)}, seed=4, verbose=False)
    launch = config.launch
    assert list(launch.argv) == sim_command(imports={"Mathlib": (10, 1)}, seed=4)
    env = {**os.environ, **launch.env}
    result = subprocess.run(
        list(launch.argv),
        input=wire({"cmd": "import Mathlib\n#eval 6 * 7"}).encode(),
        capture_output=True,
        cwd=launch.cwd,
        env=env,
        timeout=60,
    )
    assert responses(result.stdout)[0]["messages"][0]["data"] == "42"


def test_a_simulator_bug_is_answered_as_an_error_not_a_crash(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from leanpool.testing._requests import decode_request
    from leanpool.testing.simrepl import _answer

    class Broken:
        def answer(self, request: object) -> dict[str, Any]:
            raise RuntimeError("boom")

    answer = _answer(Broken(), decode_request('{"cmd": "#eval 1"}'))
    assert answer == {"message": "simrepl internal error: RuntimeError: boom"}
    assert "RuntimeError: boom" in capsys.readouterr().err
