"""Closed arithmetic with Lean's semantics (what `#eval` prints, what `decide` decides)."""

from __future__ import annotations

import pytest

from leanpool.testing._arith import (
    EvaluationError,
    NotArithmetic,
    evaluate_expression,
    evaluate_statement,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("7 * 6", 42),
        ("2 + 3 * 4", 14),
        ("(2 + 3) * 4", 20),
        ("2 ^ 3 ^ 2", 512),  # right-associative
        ("2 * 3 ^ 2", 18),
        ("10 - 3 - 2", 5),
        ("3 - 5", 0),  # Nat subtraction truncates
        ("7 / 2", 3),
        ("7 / 0", 0),
        ("7 % 0", 7),
        ("10 % 3", 1),
        ("(3 - 5 : Int)", -2),
        ("(-7 : Int) / 2", -4),  # Int.ediv
        ("(-7 : Int) % 2", 1),  # Int.emod is never negative
        ("(7 : Int) / -2", -3),
        ("f * 2", 74),
    ],
)
def test_expressions_evaluate_as_lean_does(text: str, value: int) -> None:
    assert evaluate_expression(text, {"f": 37}) == value


def test_negation_of_a_nat_is_lean_error() -> None:
    with pytest.raises(EvaluationError, match="Neg Nat"):
        evaluate_expression("-3")


def test_enormous_powers_are_refused_instead_of_computed() -> None:
    with pytest.raises(EvaluationError):
        evaluate_expression("2 ^ 10 ^ 10")


@pytest.mark.parametrize("text", ["x + 1", "f 3", "2 +", "(1 + 2", "1 + 2)", '"s"'])
def test_anything_else_is_not_arithmetic(text: str) -> None:
    with pytest.raises(NotArithmetic):
        evaluate_expression(text)


@pytest.mark.parametrize(
    ("text", "truth"),
    [
        ("2 + 2 = 4", True),
        ("2 + 2 = 5", False),
        ("3 < 5", True),
        ("5 ≤ 3", False),
        ("5 >= 5", True),
        ("10 % 3 = 1", True),
        ("2 ≠ 2", False),
        ("¬3 < 5", False),
        ("1 = 1 ∧ 2 = 3", False),
        ("1 = 2 ∨ 2 = 2", True),
        ("1 = 2 → 5 = 7", True),
        ("(1 = 1) ↔ (2 = 2)", True),
        ("True", True),
        ("False", False),
        ("3 - 5 = 0", True),
        ("(3 - 5 : Int) = -2", True),
    ],
)
def test_closed_statements_are_decided(text: str, truth: bool) -> None:
    assert evaluate_statement(text) is truth


@pytest.mark.parametrize("text", ["x = x", "n + 0 = n", "p ∧ q", "2 + 2", "f 2 = 4"])
def test_open_statements_are_not_decided(text: str) -> None:
    assert evaluate_statement(text) is None


def test_constants_take_the_values_given() -> None:
    """What `decide` needs after `def k := 7`: `k = 8` is false, not "not closed"."""
    assert evaluate_statement("k = 8") is None
    assert evaluate_statement("k = 8", {"k": 7}) is False
    assert evaluate_statement("k + 1 = 8", {"k": 7}) is True
    assert evaluate_statement("k - 5 = 0", {"k": 3}) is True  # Nat subtraction truncates
    assert evaluate_statement("k - 5 < 0", {"k": 3}, integer=True) is True  # `k : Int`
    assert evaluate_expression("k * 2", {"k": -3}, integer=True) == -6
