"""Propositions as text: the few structural questions the toy tactics ask about a goal.

Goals are kept as normalized strings (what the REPL shows); tactics such as `intro`,
`constructor` or `cases` need the top-level connective, a leading binder, a relation's sides, or a
substitution. Each helper re-tokenizes its input, which is cheap at goal sizes.
"""

from __future__ import annotations

from collections.abc import Sequence

from leanpool.testing._syntax import OPENERS, Token, join_tokens, matching_close, tokenize

__all__ = [
    "Binder",
    "alpha_normal",
    "connective",
    "leading_binder",
    "negate",
    "negated",
    "normalize",
    "relation",
    "substitute",
]

Binder = tuple[str, "str | None"]  # (name, type or None when not written)

_BINDER_KEYWORDS = {"∀", "∃", "∃!", "fun", "λ", "Π", "Σ"}
_CONNECTIVES = ("↔", "→", "∨", "∧")  # loosest first
_RELATIONS = ("=", "≠", "<", ">", "≤", "≥")
_CLOSERS = set(OPENERS.values())


def normalize(text: str) -> str:
    return join_tokens(tokenize(text))


def alpha_normal(text: str) -> str:
    """`text` with bound names replaced by `x_1`, `x_2`, ... in order of binding, so that
    `∀ (a : Nat), a = a` and `∀ (b : Nat), b = b` compare equal (as Lean's terms do)."""
    tokens = tokenize(text)
    renamed: dict[str, str] = {}
    pieces: list[Token] = []
    binding = False  # after a binder keyword, before its `,`
    names_part = False  # in a binder group, before its `:`
    depth = 0
    for token in tokens:
        text_ = token.text
        if text_ in _BINDER_KEYWORDS:
            binding, names_part, depth = True, True, 0
        elif binding:
            if text_ in OPENERS:
                depth += 1
                names_part = True
            elif text_ in _CLOSERS:
                depth = max(depth - 1, 0)
                names_part = True
            elif text_ == ":":
                names_part = False
            elif depth == 0 and text_ in (",", "=>", "↦"):
                binding = False
            elif names_part and token.kind == "ident":
                renamed[text_] = f"x_{len(renamed) + 1}"
        new = renamed.get(text_) if token.kind == "ident" else None
        pieces.append(Token(token.kind, new, token.start, token.end) if new else token)
    return join_tokens(pieces)


def _strip_parens(tokens: list[Token]) -> list[Token]:
    while (
        len(tokens) >= 2 and tokens[0].text == "(" and matching_close(tokens, 0) == len(tokens) - 1
    ):
        tokens = tokens[1:-1]
    return tokens


def _top_level(tokens: Sequence[Token]) -> list[int]:
    """Indices of tokens outside brackets, up to a binder keyword (its body runs to the end)."""
    indices: list[int] = []
    depth = 0
    for index, token in enumerate(tokens):
        if token.text in OPENERS:
            depth += 1
        elif token.text in _CLOSERS:
            depth = max(depth - 1, 0)
        elif depth == 0:
            if token.text in _BINDER_KEYWORDS:
                break
            indices.append(index)
    return indices


def _symbol(token: Token) -> str:
    return normalize(token.text) if token.kind == "symbol" else token.text


def connective(text: str) -> tuple[str, str, str] | None:
    """(op, left, right) for the loosest top-level `↔ → ∨ ∧`, right-associative; else None."""
    tokens = _strip_parens(tokenize(text))
    if tokens and tokens[0].text in _BINDER_KEYWORDS:
        return None
    top = _top_level(tokens)
    for op in _CONNECTIVES:
        for index in top:
            if _symbol(tokens[index]) == op:
                return op, join_tokens(tokens[:index]), join_tokens(tokens[index + 1 :])
    return None


def negated(text: str) -> str | None:
    """P when `text` is `¬P` (and no looser connective is at top level)."""
    tokens = _strip_parens(tokenize(text))
    if not tokens or tokens[0].text != "¬" or connective(text) is not None:
        return None
    return join_tokens(_strip_parens(tokens[1:]))


def negate(text: str) -> str:
    """`¬P`, parenthesizing P when a connective binds looser than `¬`."""
    inner = normalize(text)
    if connective(inner) is not None or inner.split(" ", 1)[0] in _BINDER_KEYWORDS:
        return f"¬({inner})"
    return f"¬{inner}"


def relation(text: str) -> tuple[str, str, str] | None:
    """(op, lhs, rhs) when `text` is a top-level relation such as `a + b = c`."""
    tokens = _strip_parens(tokenize(text))
    if not tokens or tokens[0].text in _BINDER_KEYWORDS or tokens[0].text == "¬":
        return None
    if connective(text) is not None:
        return None
    for index in _top_level(tokens):
        op = _symbol(tokens[index])
        if op in _RELATIONS and 0 < index < len(tokens) - 1:
            return op, join_tokens(tokens[:index]), join_tokens(tokens[index + 1 :])
    return None


def leading_binder(text: str) -> tuple[str, list[Binder], str] | None:
    """(quantifier, binders, body) for `∀ x y : T, body`, `∃ (k : Nat), body`, ...; else None."""
    tokens = _strip_parens(tokenize(text))
    if not tokens or tokens[0].text not in ("∀", "∃"):
        return None
    comma = next((i for i in _top_level_commas(tokens)), None)
    if comma is None:
        return None
    binders = _parse_binders(tokens[1:comma])
    if not binders:
        return None
    return tokens[0].text, binders, join_tokens(tokens[comma + 1 :])


def _top_level_commas(tokens: Sequence[Token]) -> list[int]:
    depth = 0
    found = []
    for index, token in enumerate(tokens):
        if token.text in OPENERS:
            depth += 1
        elif token.text in _CLOSERS:
            depth = max(depth - 1, 0)
        elif depth == 0 and token.text == ",":
            found.append(index)
    return found


def _parse_binders(tokens: Sequence[Token]) -> list[Binder]:
    """`x y : T` or `(x : T) {y z : U} w` -> [(x, T), (y, U), (z, U), (w, None)]."""
    binders: list[Binder] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.text in OPENERS:
            close = matching_close(tokens, index)
            binders.extend(_parse_binders(tokens[index + 1 : close]))
            index = close + 1
            continue
        if token.text == ":":
            type_text = join_tokens(tokens[index + 1 :])
            binders = [(name, type_text if kind is None else kind) for name, kind in binders]
            break
        if token.kind == "ident":
            binders.append((token.text, None))
        index += 1
    return binders


_TIGHT_OPERATORS = {"*", "/", "%", "^", "-", "¬", "↑"}
_ATOM_KINDS = {"ident", "number"}


def substitute(text: str, name: str, replacement: str) -> str:
    """Replace the identifier `name` by `replacement`, parenthesized where precedence needs it."""
    tokens = tokenize(text)
    compound = len(tokenize(replacement)) > 1
    pieces: list[Token] = []
    for index, token in enumerate(tokens):
        if token.kind not in _ATOM_KINDS or token.text != name:
            pieces.append(token)
            continue
        before = tokens[index - 1] if index else None
        after = tokens[index + 1] if index + 1 < len(tokens) else None
        applied = (before is not None and (before.kind in _ATOM_KINDS or before.text == ")")) or (
            after is not None and (after.kind in _ATOM_KINDS or after.text == "(")
        )
        tight = (before is not None and before.text in _TIGHT_OPERATORS) or (
            after is not None and after.text in {"*", "/", "%", "^"}
        )
        shown = f"({replacement})" if compound and (applied or tight) else replacement
        pieces.append(Token("ident", shown, token.start, token.end))
    return join_tokens(pieces)
