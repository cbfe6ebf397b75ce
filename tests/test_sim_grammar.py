"""The toy's reading of Lean's declaration syntax: what Lean cannot parse fails as Lean fails it.

Expected messages and ranges come from Lean itself: lean4's tests/lean/1971.lean (its expected
output: the message starts where the last token read ends and covers the unexpected token), real
Lean logs (``unexpected token; expected ':'`` for a numeral after a theorem's name, ``unexpected
end of input; expected ':=', 'where' or '|'`` at the end of a file), and the REPL transcripts in
../shared/repl-transcripts (the only parse error there, ``unexpected token 'sorry'; expected
command``, and 95 commands real Lean parsed without one).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from transcripts import require_transcripts

from leanpool.testing._elaborator import Elaboration, elaborate_command
from leanpool.testing._imports import ImportCost, ImportCosts
from leanpool.testing._requests import Request
from leanpool.testing._synthetic import SyntheticRepl
from leanpool.testing._tactics import DEFAULT_CLOSING_TACTICS


def elaborate(text: str) -> Elaboration:
    return elaborate_command(text, None, DEFAULT_CLOSING_TACTICS)


def parse_errors(text: str) -> list[dict[str, Any]]:
    return [m for m in elaborate(text).messages if str(m["data"]).startswith("unexpected")]


def at(line: int, column: int) -> dict[str, int]:
    return {"line": line, "column": column}


def test_the_issue_s_garbage_fails_where_lean_stops_reading() -> None:
    """Binders may be bare identifiers (`is not valid lean`); `:::` is no binder and no `:`:
    Lean's longest-match lexer reads `::`, and a theorem needs its `:` there."""
    result = elaborate("theorem x is not valid lean :::")
    [error] = result.messages
    assert error == {
        "severity": "error",
        "pos": at(1, 27),  # where `lean` ends: the missing `:` belongs in that space
        "endPos": at(1, 30),
        "data": "unexpected token '::'; expected ':'",
    }
    assert [d.name for d in result.environment.declarations] == []


def test_lean_s_own_test_of_error_ranges() -> None:
    """lean4 tests/lean/1971.lean: `def f1` then `def f2 := 0` gives 22:6-24:3 ``unexpected
    token 'def'; expected ':=', 'where' or '|'``; `def f3 := def f4 := 0` gives 30:9-30:13
    ``unexpected token 'def'; expected term``. Same texts here, so the same relative ranges."""
    [first] = parse_errors("def f1\n\ndef f2 := 0")
    assert (first["pos"], first["endPos"]) == (at(1, 6), at(3, 3))
    assert first["data"] == "unexpected token 'def'; expected ':=', 'where' or '|'"
    [second] = parse_errors("def f3 := def f4 := 0")
    assert (second["pos"], second["endPos"]) == (at(1, 9), at(1, 13))
    assert second["data"] == "unexpected token 'def'; expected term"
    # Parsing resumes at the next command, which Lean elaborates as usual.
    assert [d.name for d in elaborate("def f1\n\ndef f2 := 0").environment.declarations] == ["f2"]


def test_a_numeral_where_a_binder_or_colon_belongs() -> None:
    """A real Lean log: `theorem my_syntax_error_themore 1 + 1 = 2 := by` reported
    ``8:31: unexpected token; expected ':'`` (a literal is just "token"; column 31 is where the
    name ends)."""
    [error] = parse_errors("theorem my_syntax_error_themore 1 + 1 = 2 := by\n  simp")
    assert error["data"] == "unexpected token; expected ':'"
    assert (error["pos"], error["endPos"]) == (at(1, 31), at(1, 33))


def test_at_the_end_of_the_input_there_is_no_end_position() -> None:
    [error] = elaborate("theorem x : True\n").messages
    assert error["data"] == "unexpected end of input; expected ':=', 'where' or '|'"
    assert (error["pos"], error["endPos"]) == (at(2, 0), None)  # the REPL writes null


@pytest.mark.parametrize(
    ("text", "data"),
    [
        ("lemma foo bar baz", "unexpected end of input; expected ':'"),
        ("theorem := trivial", "unexpected token ':='; expected identifier"),
        ("theorem t x y := rfl", "unexpected token ':='; expected ':'"),
        ("theorem t : := trivial", "unexpected token ':='; expected term"),
        ("theorem t : 1 + = 2 := by simp", "unexpected token '='; expected term"),
        ("theorem t : = 2 := rfl", "unexpected token '='; expected term"),
        ("theorem t : (1 = 1 := rfl", "unexpected token ':='; expected ')', ',' or ':'"),
        ("theorem t : 1 = 1) := rfl", "unexpected token ')'; expected ':=', 'where' or '|'"),
        ("theorem t (x : ) : True := trivial", "unexpected token ')'; expected term"),
        ("theorem t (x : Nat] : True := trivial", "unexpected token ']'; expected ')', ',' or ':'"),
        ("theorem t : 1 = 1 :=", "unexpected end of input; expected term"),
        ("theorem t : 1 = 1 := ::", "unexpected token '::'; expected term"),
        ("theorem t : 1 = 1 := rfl rfl :=", "unexpected token ':='; expected command"),
        ("theorem t : 1 = 1 := by rfl )", "unexpected token ')'; expected command"),
        ("theorem t : 1 = 1 := by simp [foo", "unexpected end of input; expected ',' or ']'"),
        ("def f : Nat := (1 +", "unexpected end of input; expected term"),
        ("example : True := ⟨trivial", "unexpected end of input; expected ',' or '⟩'"),
        ("instance Nat := ⟨0⟩", "unexpected token ':='; expected ':'"),
    ],
)
def test_malformed_declarations_fail_with_one_parse_error(text: str, data: str) -> None:
    result = elaborate(text)
    assert [m["data"] for m in result.messages] == [data]
    assert result.messages[0]["severity"] == "error"
    assert result.environment.declarations == ()  # nothing half-parsed is declared


@pytest.mark.parametrize(
    "text",
    [
        "theorem t {α : Type*} [Group α] (a : α) : a * 1 = a := by simp",
        "theorem t (x : ℝ) : |x| ≥ 0 := abs_nonneg x",
        "theorem t (a b : Nat) : (a == b) = (b == a) := by simp [Nat.beq_comm]",
        "def f (n : Nat) : Nat := Nat.succ <| n + 1",
        "def g {R S : Type*} [Ring R] [Ring S] (φ : R →+* S) : R → S := φ",
        "theorem t (f : ℕ → ℕ := id) : let y := 1; f y = y := by simp",
        "theorem t : ∀ ε > 0, ∃ δ > 0, δ < ε := fun ε h => ⟨ε / 2, by positivity, by linarith⟩",
        "def s : Set ℕ := {x | x < 5}",
        "def f : Nat → Nat\n  | 0 => 1\n  | n + 1 => f n",
        "def h (n : Nat) : Nat := match n with | 0 => 1 | _ => 2",
        "theorem «my theorem» : True := trivial",
        "def idd.{u} (α : Sort u) (a : α) : α := a",
        "theorem t : (fun x ↦ x + 1) 2 = 3 := rfl",
        "theorem t : 2 + 2 = 4 := by simp (config := { decide := true })",
        "instance : Inhabited Nat := ⟨0⟩",
        "example := 3",
        "def x : Nat := if 1 < 2 then -1 + 2 else 0",
        "theorem t (h : a = b) : b = a := h ▸ rfl",
        "axiom ax : 1 = 2",
        "theorem t : True := by\n  trivial\n\ntheorem u : True := trivial",
        "def f : Nat := 1 where helper := 2",
        "def f (n : Nat) : Nat := n - -1",
    ],
)
def test_valid_lean_the_toy_reads_is_never_a_parse_error(text: str) -> None:
    assert parse_errors(text) == []


def test_real_lean_s_parse_errors_in_the_transcripts_and_no_other() -> None:
    """Every command of every recorded session: the toy reports a parse error where real Lean
    did (one, in core/line_breaks) and nowhere else."""
    commands = 0
    for transcript in require_transcripts():
        responses = transcript.response_blocks()
        for request_text, response_text in zip(
            transcript.request_blocks(), responses, strict=False
        ):
            request = json.loads(request_text)
            if not request.get("cmd"):
                continue
            commands += 1
            real = [
                m["data"]
                for m in json.loads(response_text).get("messages", [])
                if m["data"].startswith("unexpected")
            ]
            toy = [m["data"] for m in parse_errors(request["cmd"])]
            assert toy == real, (transcript.name, request["cmd"])
    assert commands >= 90


def test_the_simulator_answers_garbage_with_the_error_and_a_new_env() -> None:
    """As the REPL does: a parse error is a message in a normal answer, not a refusal."""
    repl = SyntheticRepl(DEFAULT_CLOSING_TACTICS, ImportCosts({}, ImportCost()))
    answer = repl.answer(Request("command", {"cmd": "theorem x is not valid lean :::"}))
    assert answer["env"] == 0
    assert [m["data"] for m in answer["messages"]] == ["unexpected token '::'; expected ':'"]
