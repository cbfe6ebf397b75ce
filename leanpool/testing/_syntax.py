"""Just enough Lean surface syntax for the toy elaborator: tokens with positions, and blocks.

Positions must match the REPL's (line 1-based, column 0-based in code points, relative to the
request text), so everything works on token offsets into the original text. Comments are dropped
by the lexer, which is also why `--!sim` directives never change what is elaborated.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from typing import NamedTuple

__all__ = [
    "OPENERS",
    "Source",
    "Token",
    "join_tokens",
    "matching_close",
    "split_tactic_block",
    "split_top_level",
    "tokenize",
]


class Token(NamedTuple):
    kind: str  # "ident" | "number" | "string" | "symbol"
    text: str
    start: int
    end: int


OPENERS = {"(": ")", "[": "]", "{": "}", "⟨": "⟩", "⦃": "⦄"}
_CLOSERS = set(OPENERS.values())
_SYMBOLS = sorted(
    ["<;>", "<->", ":=", "=>", "->", "<-", "<=", ">=", "!=", "::", "..", "/\\", "\\/", "++", "?_"],
    key=len,
    reverse=True,
)
_IDENT = re.compile(r"[^\W\d][\w'!?✝₀-₉]*(?:\.(?:[^\W\d][\w'!?✝₀-₉]*|\d+))*")
_HASH_COMMAND = re.compile(r"#[A-Za-z_]+")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"?', re.DOTALL)
_SPACE = re.compile(r"\s+")


class Source:
    """A request's text, with offset -> (line, column) conversion."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def position(self, offset: int) -> tuple[int, int]:
        line = bisect.bisect_right(self._line_starts, offset) - 1
        return line + 1, offset - self._line_starts[line]

    def line_of(self, offset: int) -> int:
        return self.position(offset)[0]

    def column_of(self, offset: int) -> int:
        return self.position(offset)[1]


def _skip_block_comment(text: str, position: int) -> int:
    """End of the (nested) `/- ... -/` comment starting at `position`."""
    depth = 0
    while position < len(text):
        if text.startswith("/-", position):
            depth += 1
            position += 2
        elif text.startswith("-/", position):
            depth -= 1
            position += 2
            if depth == 0:
                return position
        else:
            position += 1
    return position


def tokenize(text: str, start: int = 0, end: int | None = None) -> list[Token]:
    """Lean-ish tokens of text[start:end], comments and whitespace dropped."""
    stop = len(text) if end is None else end
    tokens: list[Token] = []
    position = start
    while position < stop:
        char = text[position]
        if char.isspace():
            match = _SPACE.match(text, position, stop)
            assert match is not None
            position = match.end()
        elif text.startswith("--", position):
            newline = text.find("\n", position, stop)
            position = stop if newline < 0 else newline
        elif text.startswith("/-", position):
            position = min(_skip_block_comment(text, position), stop)
        elif char == '"':
            match = _STRING.match(text, position, stop)
            assert match is not None
            tokens.append(Token("string", match.group(), position, match.end()))
            position = match.end()
        elif (
            match := _HASH_COMMAND.match(text, position, stop) or _IDENT.match(text, position, stop)
        ) is not None:
            tokens.append(Token("ident", match.group(), position, match.end()))
            position = match.end()
        elif (match := _NUMBER.match(text, position, stop)) is not None:
            tokens.append(Token("number", match.group(), position, match.end()))
            position = match.end()
        else:
            symbol = next((s for s in _SYMBOLS if text.startswith(s, position)), char)
            tokens.append(Token("symbol", symbol, position, position + len(symbol)))
            position += len(symbol)
    return tokens


def matching_close(tokens: Sequence[Token], index: int) -> int:
    """Index of the bracket closing tokens[index] (or the last index if unbalanced)."""
    depth = 0
    for i in range(index, len(tokens)):
        if tokens[i].text in OPENERS:
            depth += 1
        elif tokens[i].text in _CLOSERS:
            depth -= 1
            if depth == 0:
                return i
    return len(tokens) - 1


def split_top_level(tokens: Sequence[Token], separator: str) -> list[list[Token]]:
    """Split at `separator` tokens outside brackets."""
    parts: list[list[Token]] = [[]]
    depth = 0
    for token in tokens:
        if token.text in OPENERS:
            depth += 1
        elif token.text in _CLOSERS:
            depth = max(depth - 1, 0)
        if depth == 0 and token.text == separator:
            parts.append([])
        else:
            parts[-1].append(token)
    return parts


# Tokens after which a `;` belongs to a nested tactic sequence, not to the enclosing one.
_NESTED_SEQUENCE_OPENERS = {"by", "=>", "·", "all_goals", "any_goals", "try", "repeat", "first"}


def split_tactic_block(source: Source, tokens: Sequence[Token]) -> list[list[Token]]:
    """The tactics of a tactic sequence, the way Lean's `sepByIndentSemicolon` splits them.

    A new tactic starts on a line whose first token is at the column of the block's first tactic;
    lines indented further, and `| alternative` lines, continue the current one; `;` outside
    brackets and outside a nested sequence (`by`, `=>`, `·`, ...) separates tactics on one line.
    """
    if not tokens:
        return []
    block_column = source.column_of(tokens[0].start)
    items: list[list[Token]] = []
    current: list[Token] = []
    depth = 0
    previous_line = -1
    for token in tokens:
        line = source.line_of(token.start)
        if (
            depth == 0
            and current
            and line != previous_line
            and source.column_of(token.start) <= block_column
            and token.text != "|"
        ):
            items.append(current)
            current = []
        previous_line = source.line_of(token.end)
        current.append(token)
        if token.text in OPENERS:
            depth += 1
        elif token.text in _CLOSERS:
            depth = max(depth - 1, 0)
    if current:
        items.append(current)
    tactics: list[list[Token]] = []
    for item in items:
        tactics.extend(_split_semicolons(item))
    return [t for t in tactics if t]


def _split_semicolons(item: list[Token]) -> list[list[Token]]:
    parts: list[list[Token]] = [[]]
    depth = 0
    nested = False
    for token in item:
        if token.text in OPENERS:
            depth += 1
        elif token.text in _CLOSERS:
            depth = max(depth - 1, 0)
        if depth == 0 and not nested and token.text == ";":
            parts.append([])
            continue
        if depth == 0 and token.text in _NESTED_SEQUENCE_OPENERS:
            nested = True
        parts[-1].append(token)
    return parts


_NO_SPACE_AFTER = set(OPENERS) | {"¬", "↑", "@", "?", "←"}
_NO_SPACE_BEFORE = _CLOSERS | {",", "!"}
_OPERATORS = {"+", "-", "*", "/", "%", "^", "=", "<", ">", "≤", "≥", "≠", "∧", "∨", "→", "↔", ","}
_PREFIX_MINUS = "\0prefix-minus"
_UNICODE = {"->": "→", "<=": "≤", ">=": "≥", "!=": "≠", "<->": "↔", "/\\": "∧", "\\/": "∨"}


def join_tokens(tokens: Sequence[Token]) -> str:
    """Tokens as Lean's pretty printer would space them (`1+1=2` -> `1 + 1 = 2`, `¬x < 0`)."""
    out: list[str] = []
    previous: str | None = None  # previous token text, or _PREFIX_MINUS
    for token in tokens:
        text = _UNICODE.get(token.text, token.text) if token.kind == "symbol" else token.text
        if (
            previous is not None
            and previous not in _NO_SPACE_AFTER
            and previous != _PREFIX_MINUS
            and text not in _NO_SPACE_BEFORE
        ):
            out.append(" ")
        out.append(text)
        prefix_position = previous is None or previous in _OPERATORS or previous in OPENERS
        if text == "-" and (prefix_position or previous == _PREFIX_MINUS):
            previous = _PREFIX_MINUS
        else:
            previous = text
    return "".join(out)
