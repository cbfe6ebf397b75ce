"""The toy tactic engine: goals as the REPL prints them, throws versus logged errors."""

from __future__ import annotations

import pytest

from leanpool.testing._model import Declaration, Environment, Goal
from leanpool.testing._syntax import Source, tokenize
from leanpool.testing._tactics import DEFAULT_CLOSING_TACTICS, TacticEngine, TacticFailure


def goal(target: str, *hypotheses: str, case: str | None = None) -> Goal:
    pairs = tuple((h.split(" : ", 1)[0], h.split(" : ", 1)[1]) for h in hypotheses)
    return Goal(pairs, target, case)


def run(
    tactic: str, *goals: Goal, environment: Environment | None = None
) -> tuple[list[str], TacticEngine]:
    engine = TacticEngine(
        Source(tactic), environment or Environment(), DEFAULT_CLOSING_TACTICS, command_mode=False
    )
    result = engine.run_step(tokenize(tactic), list(goals))
    return [g.render() for g in result], engine


def fails(tactic: str, *goals: Goal) -> str:
    with pytest.raises(TacticFailure) as failure:
        run(tactic, *goals)
    return failure.value.message


def test_goal_rendering_groups_hypotheses_of_one_type() -> None:
    shown = goal("x = z", "x : Nat", "y : Nat", "h1 : x = y", "z : Nat", case="pos").render()
    assert shown == "case pos\nx y : Nat\nh1 : x = y\nz : Nat\n⊢ x = z"


def test_intro_handles_arrows_foralls_and_negations() -> None:
    assert run("intro hp hq", goal("p → q → p"))[0] == ["hp : p\nhq : q\n⊢ p"]
    assert run("intro n", goal("∀ n : Nat, n + 0 = n"))[0] == ["n : Nat\n⊢ n + 0 = n"]
    assert run("intro k", goal("∀ (n m : Nat), n ≤ n + m"))[0] == [
        "k : Nat\n⊢ ∀ (m : Nat), k ≤ k + m"
    ]
    assert run("intro h", goal("¬x < 0", "x : Int"))[0] == ["x : Int\nh : x < 0\n⊢ False"]
    assert run("intro", goal("p → p"))[0] == ["a✝ : p\n⊢ p"]
    assert "no additional binders" in fails("intro h", goal("p ∧ q"))


def test_constructor_splits_conjunctions_and_iffs_with_case_tags() -> None:
    assert run("constructor", goal("p ∧ q", "hp : p"))[0] == [
        "case left\nhp : p\n⊢ p",
        "case right\nhp : p\n⊢ q",
    ]
    assert run("constructor", goal("p ↔ q"))[0] == ["case mp\n⊢ p → q", "case mpr\n⊢ q → p"]
    assert "not an inductive datatype" in fails("constructor", goal("x = 1"))


def test_by_cases_matches_the_repl_transcript() -> None:
    rendered, _ = run("by_cases h : x < 0", goal("x = x", "x : Int"))
    assert rendered == [
        "case pos\nx : Int\nh : x < 0\n⊢ x = x",
        "case neg\nx : Int\nh : ¬x < 0\n⊢ x = x",
    ]


def test_induction_prime_matches_the_mathlib_transcript() -> None:
    rendered, _ = run("induction' x with x hx", goal("x + 1 > x", "x : Nat"))
    assert rendered == [
        "case zero\n⊢ 0 + 1 > 0",
        "case succ\nx : Nat\nhx : x + 1 > x\n⊢ x + 1 + 1 > x + 1",
    ]


def test_structured_induction_runs_each_alternative() -> None:
    text = "induction n with\n| zero => rfl\n| succ k ih => omega"
    assert run(text, goal("n + 0 = n", "n : Nat"))[0] == []
    unsolved = "induction n with\n| zero => skip\n| succ k ih => omega"
    rendered, engine = run(unsolved, goal("n + 0 = n", "n : Nat"))
    assert rendered == []
    assert engine.messages[0]["data"] == "unsolved goals\ncase zero\n⊢ 0 + 0 = 0"


def test_cases_and_rcases_destructure_hypotheses() -> None:
    assert run("cases h", goal("q", "h : p ∧ q"))[0] == ["case intro\nleft✝ : p\nright✝ : q\n⊢ q"]
    assert run("cases h", goal("r", "h : p ∨ q"))[0] == [
        "case inl\nh✝ : p\n⊢ r",
        "case inr\nh✝ : q\n⊢ r",
    ]
    assert run("rcases h with ⟨a, b, c⟩", goal("r", "h : p ∧ q ∧ r"))[0] == [
        "case intro\na : p\nb : q\nc : r\n⊢ r"
    ]
    assert run("obtain ⟨k, hk⟩ := h", goal("True", "h : ∃ k : Nat, k > 2"))[0] == [
        "case intro\nk : Nat\nhk : k > 2\n⊢ True"
    ]
    assert run("cases 1", goal("1 = 0"))[0] == [
        "case zero\n⊢ 0 = 0",
        "case succ\nn✝ : Nat\n⊢ n✝ + 1 = 0",
    ]


def test_have_adds_a_hypothesis_and_reports_tactic_sorries_without_positions() -> None:
    rendered, engine = run("have h : x > 0 := by sorry", goal("False", "x : Int", "h0 : x > 0"))
    assert rendered == ["x : Int\nh0 h : x > 0\n⊢ False"]
    [hit] = engine.sorries
    assert hit.goal.render() == "x : Int\nh0 : x > 0\n⊢ x > 0" and hit.start is None
    assert run("have t : Nat := 42", goal("Nat"))[0] == ["t : Nat\n⊢ Nat"]
    assert run("have h : p", goal("q"))[0] == ["⊢ p", "h : p\n⊢ q"]


def test_rewrite_with_hypotheses_then_rfl() -> None:
    assert run("rw [h]", goal("f n = f 3", "h : n = 3"))[0] == []
    assert run("rw [← h]", goal("f 3 = g", "h : n = 3"))[0] == ["h : n = 3\n⊢ f n = g"]
    assert "Did not find an instance" in fails("rw [h]", goal("f m = 1", "h : n = 3"))


def test_apply_uses_implications_and_keeps_the_case_tag() -> None:
    branch = goal("r", "h2 : q → r", case="right")
    assert run("apply h2", branch)[0] == ["case right\nh2 : q → r\n⊢ q"]
    assert "could not unify" in fails("apply h2", goal("p", "h2 : q → r"))


def test_closing_tactics_check_closed_arithmetic() -> None:
    assert run("decide", goal("2 + 2 = 4"))[0] == []
    assert fails("decide", goal("2 + 2 = 5")) == (
        "Tactic `decide` proved that the proposition\n  2 + 2 = 5\nis false"
    )
    assert fails("rfl", goal("2 + 2 = 5")).startswith("Tactic `rfl` failed: The left-hand side")
    assert run("simp", goal("2 + 2 = 5"))[0] == ["⊢ False"]
    assert run("omega", goal("2 + 2 = 5", "h : 1 = 2"))[0] == []  # contradictory hypotheses
    assert "free variables" in fails("decide", goal("n + 0 = n", "n : Nat"))
    assert run("omega", goal("n + 0 = n", "n : Nat"))[0] == []


def test_term_errors_are_logged_and_the_goal_closed_with_a_sorry() -> None:
    rendered, engine = run("exact my_fake_premise", goal("x = x", "x : Nat"))
    assert rendered == []
    assert engine.messages == [
        {
            "severity": "error",
            "pos": {"line": 0, "column": 0},
            "endPos": {"line": 0, "column": 0},
            "data": "Unknown identifier `my_fake_premise`",
        }
    ]
    assert engine.uses_sorry and not engine.explicit_sorry
    _, mismatch = run("exact h", goal("False", "h : x > 0"))
    assert str(mismatch.messages[0]["data"]).startswith("Type mismatch\n  h\nhas type\n  x > 0")
    _, fine = run("exact h", goal("0 < x", "h : x > 0"))
    assert fine.messages == []


def test_names_resolve_against_hypotheses_environment_and_library() -> None:
    environment = Environment(declarations=(Declaration("helper", (), "0 < 1"),))
    for term in ("helper", "Nat.succ_pos", "congrArg f h", "h.left"):
        _, engine = run(f"exact {term}", goal("0 < 1", "h : p ∧ q"), environment=environment)
        assert engine.messages == [], term


def test_combinators() -> None:
    both = goal("p ∧ p", "hp : p")
    assert run("constructor <;> exact hp", both)[0] == []
    assert run("constructor\nall_goals exact hp", both)[0] == []
    assert run("(constructor; exact hp; exact hp)", both)[0] == []
    assert run("try exact nope_does_not_matter", goal("p"))[0] == []  # logged, not thrown
    assert run("first | decide | trivial", goal("True"))[0] == []
    assert run("try decide", goal("2 = 3"))[0] == ["⊢ 2 = 3"]
    assert run("constructor\n· exact hp\n· exact hp", both)[0] == []
    rendered, engine = run("constructor\ncase right => skip", both)
    assert rendered == ["case left\nhp : p\n⊢ p"]
    assert engine.messages[0]["data"] == "unsolved goals\nhp : p\n⊢ p"


def test_unknown_tactics_are_parse_errors_at_their_position() -> None:
    assert fails("exat 42", goal("Nat")) == "<input>:1:1: unknown tactic"
    assert fails("  frobnicate", goal("Nat")) == "<input>:1:3: unknown tactic"
    assert fails("constructor <;> ring", goal("p ∧ q")) == "<input>:1:17: unknown tactic"


def test_no_goals_left_is_an_error() -> None:
    assert fails("rfl", *()) == "No goals to be solved"


def test_custom_closing_tactics() -> None:
    engine = TacticEngine(Source("ring"), Environment(), ["ring"], command_mode=False)
    assert engine.run_step(tokenize("ring"), [goal("a * b = b * a")]) == []
    with pytest.raises(TacticFailure):
        engine.run_step(tokenize("simp"), [goal("a * b = b * a")])


def test_decide_unfolds_the_definitions_it_knows() -> None:
    """Lean's `decide` evaluates the proposition's `Decidable` instance, unfolding definitions:
    after `def k := 7`, `k = 8` is false and the message shows the proposition as written."""
    environment = Environment(
        declarations=(
            Declaration("k", (), "Nat", "7"),
            Declaration("m", (), "Nat", "k * 2"),  # a definition of a definition
            Declaration("z", (), "Int", "-3"),
        )
    )

    def decide(target: str, *hypotheses: str) -> list[str]:
        return run("decide", goal(target, *hypotheses), environment=environment)[0]

    assert decide("k = 7") == [] and decide("m = 14") == [] and decide("z < 0") == []
    for false in ("k = 8", "m > 14", "z > 0"):
        with pytest.raises(TacticFailure) as failure:
            decide(false)
        assert failure.value.message == (
            f"Tactic `decide` proved that the proposition\n  {false}\nis false"
        )
    with pytest.raises(TacticFailure, match="must not contain free variables"):
        decide("k = 8", "k : Nat")  # a hypothesis named k hides the constant
