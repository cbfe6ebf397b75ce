"""Closed integer arithmetic with Lean's semantics: what `#eval` prints and `decide` decides.

The toy elaborator must give right and wrong verdicts on statements such as `2 + 2 = 4` or
`10 % 3 = 1`, so it evaluates them the way Lean does: numerals are `Nat` unless a type ascription
says `Int`; `Nat` subtraction truncates at 0; `x / 0 = 0` and `x % 0 = x`; `Int` division and
remainder are Euclidean (`Int.ediv`/`Int.emod`). Anything else (an identifier, a function) makes the
text "not closed arithmetic", and callers fall back to their optimistic behaviour.

Hand-written recursive descent: the grammar is tiny and `ast`/`eval` would accept Python, not Lean.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

__all__ = ["EvaluationError", "NotArithmetic", "evaluate_expression", "evaluate_statement"]

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+)|(?P<name>[^\W\d][\w'.!?₀-₉]*)|(?P<sym><=|>=|!=|->|<->|[-+*/%^()=<>≤≥≠¬∧∨→↔:]))"
)
_INT_TYPES = {"Int", "ℤ"}
_MAX_EXPONENT_BITS = 1 << 16  # `2 ^ 10 ^ 10` would take Lean forever too; refuse it here
_ASCII_SYMBOLS = {"<=": "≤", ">=": "≥", "!=": "≠", "->": "→", "<->": "↔"}


class NotArithmetic(Exception):
    """The text is not closed integer arithmetic (an identifier, an unknown symbol, ...)."""


class EvaluationError(Exception):
    """Closed arithmetic that Lean would reject; the message is Lean-like."""


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise NotArithmetic(text[position:])
        token = match.group("num") or match.group("name") or match.group("sym")
        assert token is not None
        tokens.append(_ASCII_SYMBOLS.get(token, token))
        position = match.end()
    return tokens


class _Parser:
    """Recursive descent over tokens; `names` supplies values of known constants."""

    def __init__(self, tokens: list[str], names: Mapping[str, int], integer: bool) -> None:
        self.tokens = tokens
        self.index = 0
        self.names = names
        self.integer = integer  # Int semantics (else Nat)

    # -- helpers
    def peek(self) -> str | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise NotArithmetic(f"expected {expected or 'more input'}")
        self.index += 1
        return token

    def at_end(self) -> bool:
        return self.index == len(self.tokens)

    # -- propositions: ↔ < → < ∨ < ∧ < ¬ < relations
    def proposition(self) -> bool:
        left = self.implication()
        if self.peek() == "↔":
            self.take()
            return left == self.implication()
        return left

    def implication(self) -> bool:
        left = self.disjunction()
        if self.peek() == "→":
            self.take()
            right = self.implication()
            return (not left) or right
        return left

    def disjunction(self) -> bool:
        left = self.conjunction()
        if self.peek() == "∨":
            self.take()
            right = self.disjunction()
            return left or right
        return left

    def conjunction(self) -> bool:
        left = self.negation()
        if self.peek() == "∧":
            self.take()
            right = self.conjunction()
            return left and right
        return left

    def negation(self) -> bool:
        if self.peek() == "¬":
            self.take()
            return not self.negation()
        return self.atom()

    def atom(self) -> bool:
        token = self.peek()
        if token == "True":
            self.take()
            return True
        if token == "False":
            self.take()
            return False
        if token == "(":
            saved = self.index
            try:
                self.take("(")
                value = self.proposition()
                self.take(")")
                return value
            except NotArithmetic:
                self.index = saved
        return self.relation()

    def relation(self) -> bool:
        left = self.sum()
        operator = self.take()
        right = self.sum()
        comparisons: dict[str, Callable[[int, int], bool]] = {
            "=": lambda a, b: a == b,
            "≠": lambda a, b: a != b,
            "<": lambda a, b: a < b,
            ">": lambda a, b: a > b,
            "≤": lambda a, b: a <= b,
            "≥": lambda a, b: a >= b,
        }
        if operator not in comparisons:
            raise NotArithmetic(operator)
        return comparisons[operator](left, right)

    # -- integer expressions: + - (65) < * / % (70) < unary - (75) < ^ (75, right)
    def sum(self) -> int:
        value = self.product()
        while self.peek() in ("+", "-"):
            operator = self.take()
            right = self.product()
            value = value + right if operator == "+" else self.subtract(value, right)
        return value

    def subtract(self, left: int, right: int) -> int:
        return left - right if self.integer else max(left - right, 0)

    def product(self) -> int:
        value = self.unary()
        while self.peek() in ("*", "/", "%"):
            operator = self.take()
            right = self.unary()
            if operator == "*":
                value *= right
            elif operator == "/":
                value = _divide(value, right)
            else:
                value = _remainder(value, right)
        return value

    def unary(self) -> int:
        if self.peek() == "-":
            self.take()
            if not self.integer:
                raise EvaluationError("failed to synthesize\n  Neg Nat")
            return -self.unary()
        return self.power()

    def power(self) -> int:
        base = self.primary()
        if self.peek() == "^":
            self.take()
            exponent = self.unary()
            if exponent < 0:
                raise NotArithmetic("negative exponent")
            if abs(base) > 1 and exponent * max(abs(base).bit_length(), 1) > _MAX_EXPONENT_BITS:
                raise EvaluationError("simrepl: numeral too large to evaluate")
            return int(base**exponent)
        return base

    def primary(self) -> int:
        token = self.take()
        if token.isdigit():
            return int(token)
        if token == "(":
            value = self.sum()
            if self.peek() == ":":  # type ascription `(e : Int)`
                self.take()
                self.take()
            self.take(")")
            return value
        if token in self.names:
            return self.names[token]
        raise NotArithmetic(token)


def _divide(left: int, right: int) -> int:
    """`Int.ediv` (and `Nat.div` on non-negative values): x / 0 = 0."""
    if right == 0:
        return 0
    quotient = left // abs(right)
    return quotient if right > 0 else -quotient


def _remainder(left: int, right: int) -> int:
    """`Int.emod` (and `Nat.mod`): never negative; x % 0 = x."""
    if right == 0:
        return left
    return left % abs(right)


def _uses_int(tokens: list[str]) -> bool:
    return any(tokens[i] == ":" and tokens[i + 1] in _INT_TYPES for i in range(len(tokens) - 1))


def evaluate_expression(
    text: str, names: Mapping[str, int] | None = None, integer: bool = False
) -> int:
    """The value of closed arithmetic `text`; raises NotArithmetic or EvaluationError.

    `integer`: `Int` semantics even without an ascription (a constant of type `Int` is used).
    """
    tokens = _tokenize(text)
    parser = _Parser(tokens, names or {}, integer or _uses_int(tokens))
    value = parser.sum()
    if not parser.at_end():
        raise NotArithmetic(text)
    return value


def evaluate_statement(
    text: str, names: Mapping[str, int] | None = None, integer: bool = False
) -> bool | None:
    """Truth of a closed arithmetic proposition (`2 + 2 = 4`, `¬3 < 5`), or None if not closed.

    `names` gives values of constants (`k = 8` after `def k := 7`, as `decide` unfolds it);
    `integer` as for `evaluate_expression`.
    """
    try:
        tokens = _tokenize(text)
        parser = _Parser(tokens, names or {}, integer or _uses_int(tokens))
        value = parser.proposition()
        return value if parser.at_end() else None
    except (NotArithmetic, EvaluationError):
        return None
