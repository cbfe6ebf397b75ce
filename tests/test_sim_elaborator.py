"""The toy command elaborator: messages, positions and environments like the REPL's."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from leanpool.testing._elaborator import Elaboration, elaborate_command, header_modules
from leanpool.testing._imports import ImportCost, ImportCosts
from leanpool.testing._model import Environment
from leanpool.testing._requests import Request
from leanpool.testing._synthetic import SyntheticRepl
from leanpool.testing._tactics import DEFAULT_CLOSING_TACTICS


def elaborate(text: str, environment: Environment | None = None, **options: bool) -> Elaboration:
    return elaborate_command(text, environment, DEFAULT_CLOSING_TACTICS, **options)


def message(
    severity: str, start: tuple[int, int], end: tuple[int, int], data: str
) -> dict[str, Any]:
    return {
        "severity": severity,
        "pos": {"line": start[0], "column": start[1]},
        "endPos": {"line": end[0], "column": end[1]},
        "data": data,
    }


def test_sorry_warning_sits_on_the_name_or_on_example() -> None:
    named = elaborate("theorem thm1 : 1 = 1 := sorry")
    assert named.messages == [message("warning", (1, 8), (1, 12), "declaration uses `sorry`")]
    [hit] = named.sorries
    assert (hit.goal.render(), hit.start, hit.end) == ("⊢ 1 = 1", 24, 29)
    anonymous = elaborate("example : False := by sorry")
    assert anonymous.messages == [message("warning", (1, 0), (1, 7), "declaration uses `sorry`")]


def test_unsolved_goals_span_from_by_to_the_end_of_the_block() -> None:
    result = elaborate("theorem foo (x : Int) : x = x := by\n  have h : x = 1 := by sorry")
    assert result.messages == [
        message("error", (1, 33), (2, 28), "unsolved goals\nx : Int\nh : x = 1\n⊢ x = x")
    ]
    assert [h.goal.render() for h in result.sorries] == ["x : Int\n⊢ x = 1"]
    empty = elaborate("def f : Nat := by")
    assert empty.messages == [message("error", (1, 15), (1, 17), "unsolved goals\n⊢ Nat")]


def test_a_tactic_at_column_0_ends_the_block_with_a_parse_error() -> None:
    result = elaborate("theorem foo : 1 = 1 := by\nsorry")
    assert result.messages == [
        message("error", (1, 23), (1, 25), "unsolved goals\n⊢ 1 = 1"),
        message("error", (2, 0), (2, 5), "unexpected token 'sorry'; expected command"),
    ]


def test_errors_suppress_the_sorry_warning_but_sorries_are_still_reported() -> None:
    result = elaborate("example : True := by\n  sorry\n  sorry")
    assert result.messages == [message("error", (3, 2), (3, 7), "No goals to be solved")]
    assert len(result.sorries) == 1


def test_positions_count_code_points() -> None:
    text = "theorem complex_and (p q r : Prop) (h1 : p ∧ q) (h2 : q → r) : p ∧ r := by sorry"
    [hit] = elaborate(text).sorries
    assert hit.start == 75  # the byte offset would be 81


def test_several_commands_with_namespaces_opens_and_eval() -> None:
    text = "namespace X\ndef Y : Nat := 37\nend X\nopen X\n#eval Y + 5\n#check X.Y"
    result = elaborate(text)
    assert [m["data"] for m in result.messages] == ["42", "X.Y : Nat"]
    assert result.messages[0]["pos"] == {"line": 5, "column": 0}
    assert [d.name for d in result.environment.declarations] == ["X.Y"]


def test_variables_are_included_when_the_statement_mentions_them() -> None:
    environment = elaborate("variable (x y : Nat)\nvariable (f : Nat → Nat)").environment
    result = elaborate("theorem p (h0 : f 5 = 3) : f x = x := by sorry", environment)
    assert result.sorries[0].goal.render() == "x : Nat\nf : Nat → Nat\nh0 : f 5 = 3\n⊢ f x = x"


def test_redeclaring_a_name_is_an_error() -> None:
    environment = elaborate("def f := 1").environment
    result = elaborate("def f := 2", environment)
    assert result.messages == [message("error", (1, 4), (1, 5), "'f' has already been declared")]


def test_check_shows_signatures_with_grouped_binders() -> None:
    text = "theorem demo (a b: Nat) {c : Nat} : a + b = b + a := by omega\n#check demo"
    result = elaborate(text)
    assert result.messages == [
        message("info", (2, 0), (2, 6), "demo (a b : Nat) {c : Nat} : a + b = b + a")
    ]


def test_term_proofs_are_checked() -> None:
    assert elaborate("example : 2 + 2 = 4 := rfl").messages == []
    [mismatch] = elaborate("example : 2 + 2 = 5 := rfl").messages
    assert str(mismatch["data"]).startswith("Type mismatch\n  rfl\nhas type\n  2 + 2 = 2 + 2")
    [unknown] = elaborate("theorem t : 1 = 1 := foo").messages
    assert unknown == message("error", (1, 21), (1, 24), "Unknown identifier `foo`")


def test_decide_sees_the_definitions_of_earlier_commands() -> None:
    """The issue's case: `theorem w : k = 8 := by decide` after `def k := 7` used to pass."""
    environment = elaborate("def k := 7").environment
    [error] = elaborate("theorem w : k = 8 := by decide", environment).messages
    assert error == message(
        "error", (1, 24), (1, 30), "Tactic `decide` proved that the proposition\n  k = 8\nis false"
    )
    assert elaborate("theorem w : k = 7 := by decide", environment).messages == []
    same_request = elaborate("def k := 7\ntheorem w : k = 8 := by decide")
    assert [m["data"] for m in same_request.messages] == [error["data"]]


def test_unknown_commands_are_parse_errors() -> None:
    [error] = elaborate("blah blah").messages
    assert error == message("error", (1, 0), (1, 4), "unexpected identifier; expected command")


def test_all_tactics_and_root_goals() -> None:
    text = "example (P : Prop) (hp : P) : P := by\n  exact hp\n"
    [record] = elaborate(text, all_tactics=True).tactics
    assert (record.text, record.start, record.end) == ("exact hp", 40, 48)
    assert [g.render() for g in record.goals_before] == ["P : Prop\nhp : P\n⊢ P"]
    roots = elaborate("example : 1=1 := by\n  rfl\n\ntheorem bb : 1+1=2 := by rfl", root_goals=True)
    assert [(g.render(), offset) for g, offset in roots.root_goals] == [
        ("⊢ 1 = 1", 17),
        ("⊢ 1 + 1 = 2", 49),  # line 4, column 22: the `by`
    ]


def test_header_modules_and_where_the_header_ends() -> None:
    text = "import Mathlib.Data.Real.Basic\nimport A\nopen Real\n#eval 1"
    modules, end = header_modules(text)
    assert modules == ["Mathlib.Data.Real.Basic", "A"]
    assert text[end:].startswith("\nopen Real")
    result = elaborate(text)
    assert result.environment.imports == ("Mathlib.Data.Real.Basic", "A")
    assert result.environment.opens == ("Real",)
    assert result.initial_environment.imports == result.environment.imports
    assert header_modules("module\npublic meta import all A.B\nimport C\n#eval 1")[0] == [
        "A.B",
        "C",
    ]


def test_one_module_per_import_as_in_lean() -> None:
    """`import A B` is `import A` and then `B` where a command should start: Lean's parse error
    (one `ident` per `import` in src/Lean/Parser/Module.lean)."""
    text = "import A B\n#eval 1"
    assert header_modules(text) == (["A"], len("import A"))
    result = elaborate(text)
    assert result.environment.imports == ("A",)
    errors = [m for m in result.messages if m["severity"] == "error"]
    assert [(m["data"], m["pos"]) for m in errors] == [
        ("unexpected identifier; expected command", {"line": 1, "column": 9})
    ]


_WORDS = (
    "theorem t example def f : := by sorry ( ) x y Nat h ∧ ∨ → ¬ ∀ ∃ , = < 1 2 + * intro "
    "constructor exact apply cases rcases obtain induction induction' with | => have rw [ ] ← "
    "simp at decide rfl omega · { } <;> ; all_goals case next use by_cases #eval #check open "
    "namespace end variable import ?_ ⟨ ⟩ first try repeat specialize show from refine left "
    "right exfalso True False - / % ^ @ [simp]"
)
_LEAN_WORDS = [*_WORDS.split(" "), "\n", "\n  "]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_LEAN_WORDS), min_size=1, max_size=25), st.booleans())
def test_the_toy_answers_any_text_without_raising(words: list[str], as_tactic: bool) -> None:
    repl = SyntheticRepl(DEFAULT_CLOSING_TACTICS, ImportCosts({}, ImportCost()))
    setup = (
        "theorem t (x y : Nat) (h : x = y ∧ y = x) (g : ∃ k, k > x) : ∀ n : Nat, n = n := by sorry"
    )
    repl.answer(Request("command", {"cmd": setup}))
    text = " ".join(words)
    request = (
        Request("proof_step", {"tactic": text, "proofState": 0})
        if as_tactic
        else Request("command", {"cmd": text})
    )
    answer = repl.answer(request)
    assert "message" in answer or "env" in answer or "proofState" in answer
