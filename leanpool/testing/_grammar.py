"""Where Lean's parser stops reading a declaration: the toy must fail there, never pass.

The toy elaborator judges what it understands; text it cannot judge must not pass, or a verdict
test on the simulator means nothing (`theorem x is not valid lean :::` used to declare `x`). This
reads a declaration's outline the way Lean's `declaration` parser does (keyword, name, binders,
`: type`, `:= body`) and a few rules every Lean term obeys (brackets balance and close in order,
a binary operator has operands, nothing follows `:` or `:=` without a term), and returns the
first token Lean could not read there, with what Lean expected instead. Where the toy does not
know the syntax (notation it has not heard of, `match` alternatives, `where` clauses; in tactic
blocks, which the tactic engine reads, only brackets are checked) it stays silent: it reports
only certain parse errors.

The message format is Lean's own: ``unexpected token 'X'; expected Y``, ``unexpected identifier;
expected Y``, ``unexpected token; expected Y`` (a numeral or string literal) and ``unexpected end
of input; expected Y``, as Lean 4's `mkErrorMessage` (src/Lean/Parser/Module.lean) writes it, with
the alternatives sorted and joined as ``'a', 'b' or 'c'``; the REPL's own test suite shows it
for a command (``unexpected token 'sorry'; expected command``: leanprover-community/repl,
test/line_breaks.expected.out). Inside a command Lean starts the message where the previous
token ends, so that the whitespace where the missing token belongs is part of it (lean4's
tests/lean/1971.lean); at the end of the input the message has no end position. The alternatives
listed here ("':'" after a theorem's binders, "':=', 'where' or '|'" after a signature, "term",
"identifier", "command") are the ones Lean's own tests and users' logs show for these places;
those for an unclosed bracket (`_CLOSING_EXPECTED`) are the toy's reading of Lean's bracket
parsers, unconfirmed by a transcript.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from leanpool.testing._syntax import OPENERS, Token

__all__ = ["LEAN_KEYWORDS", "ParseFailure", "declaration_parse_failure", "unexpected"]

# Identifier-like words that are keywords (tokens) in Lean: "unexpected token 'def'", not
# "unexpected identifier".
LEAN_KEYWORDS = frozenset(
    {
        "theorem", "lemma", "def", "abbrev", "example", "instance", "opaque", "axiom",
        "structure", "inductive", "class", "namespace", "section", "end", "open", "variable",
        "universe", "set_option", "import", "attribute", "mutual", "deriving", "where",
        "termination_by", "decreasing_by", "private", "protected", "noncomputable", "partial",
        "unsafe", "nonrec", "by", "fun", "have", "show", "from", "at", "with", "then", "else",
        "do", "let", "if", "match", "in", "sorry", "calc", "suffices", "Type", "Prop", "Sort",
        "macro", "macro_rules", "syntax", "notation", "infix", "infixl", "infixr", "prefix",
        "postfix", "local", "scoped", "elab", "initialize", "export",
    }
)  # fmt: skip

_THEOREM_LIKE = {"theorem", "lemma", "instance", "opaque", "axiom"}  # `declSig`: `:` required
_VALUE_OPTIONAL = {"opaque", "axiom"}  # `axiom` never has one, `opaque` may not
_UNNAMED = {"example", "instance"}  # `instance` may have a name; it reads as a binder here
_BINDER_OPENERS = {"(", "{", "[", "⦃"}
_CLOSERS = {close: open_ for open_, close in OPENERS.items()}
# What Lean lists when a bracket is not closed where the term inside it ends.
_CLOSING_EXPECTED = {
    "(": "')', ',' or ':'",
    "[": "',' or ']'",
    "⟨": "',' or '⟩'",
    "{": "'}'",
    "⦃": "'⦄'",
}
_AFTER_SIGNATURE = "':=', 'where' or '|'"
# Operators that need a term on both sides (Lean's infix notations the toy's lexer yields as one
# token, or as the several tokens listed in _JOINED when written without spaces).
_BINARY = frozenset(
    {
        "=", "≠", "<", ">", "≤", "≥", "+", "*", "/", "%", "^", "∧", "∨", "→", "↔", "::", "++",
        "<=", ">=", "!=", "->", "<->", "/\\", "\\/", "∣", "∈", "∉", "⊆", "⊂", "∪", "∩", "×",
        "∘", "==", "&&", "||", "<|", "|>", "<$>", "<*>", ">>=", "^^^", "&&&", "|||", "<<<",
        ">>>",
    }
)  # fmt: skip
_JOINED = frozenset({"==", "&&", "||", "<|", "|>", "<$>", "<*>", ">>=", "^^^", "&&&", "|||"})
_JOINED_UNKNOWN_OK = frozenset({"|>."})  # joined, read as no operator at all
_NEEDS_OPERAND = frozenset({"-", "¬"})  # prefix (or, for `-`, also infix)
_SEPARATORS = frozenset({",", ":", ":=", "=>", "↦", ";", "then", "else", "from", "in"})
_TERM_AFTER = frozenset({":", ":=", "=>", "↦"})  # a term must follow these
_TACTIC_STARTS = frozenset({"by", "do"})  # what follows is not a term: the engine reads it
_TERM_ENDS = frozenset({"where", "termination_by", "decreasing_by", "deriving"})
# Words after which a term may hold `:=` outside brackets (`let x := 1; x`).
_ASSIGNING = frozenset(
    {"let", "have", "suffices", "show", "calc", "obtain", "fun", "λ", "match", "if", "do"}
)
_COMMAND_WORDS = frozenset(
    {
        "theorem", "lemma", "def", "abbrev", "example", "instance", "opaque", "axiom",
        "structure", "inductive", "class", "namespace", "section", "universe", "variable",
    }
)  # fmt: skip


@dataclass(frozen=True)
class ParseFailure:
    """The first token Lean could not read and what it expected there.

    `token` None: the end of the input. `previous`: the last token read (the message starts where
    it ends), None when the failure starts a command (the message starts at `token`).
    """

    token: Token | None
    previous: Token | None
    expected: str

    def message(self) -> str:
        return f"{unexpected(self.token)}; expected {self.expected}"


def unexpected(token: Token | None) -> str:
    """Lean's description of an unexpected token (mkErrorMessage)."""
    if token is None:
        return "unexpected end of input"
    if token.kind == "ident" and not token.text.startswith("#"):
        if token.text in LEAN_KEYWORDS:
            return f"unexpected token '{token.text}'"
        return "unexpected identifier"
    if token.kind in ("number", "string"):
        return "unexpected token"
    return f"unexpected token '{token.text}'"


class _Reader:
    def __init__(self, source: str, tokens: Sequence[Token], following: Token | None) -> None:
        self.source = source
        self.tokens = tokens
        self.following = following  # the next command's first token (None: end of input)

    def at(self, index: int) -> Token | None:
        return self.tokens[index] if index < len(self.tokens) else self.following

    def text(self, index: int) -> str:
        token = self.at(index)
        return "" if token is None else token.text

    def fail(self, index: int, expected: str, command_start: bool = False) -> ParseFailure:
        last = min(index, len(self.tokens)) - 1  # the last token read, in this command
        previous = None if command_start or last < 0 else self.tokens[last]
        return ParseFailure(self.at(index), previous, expected)

    def close_of(self, index: int, stop: int) -> int | None:
        """Index of the bracket closing tokens[index] before `stop` (None: not closed)."""
        depth = 0
        for position in range(index, stop):
            text = self.tokens[position].text
            if text in OPENERS:
                depth += 1
            elif text in _CLOSERS:
                depth -= 1
                if depth == 0:
                    return position
        return None

    def type_end(self, start: int) -> int:
        """Where a signature's type ends: at the first `:=` or `where` outside brackets (but not
        a `:=` that a `let`/`have` in the type takes), or at a `|` opening a line, else the end."""
        depth = 0
        bindings = 0  # `let x` / `have h` waiting for their `:=`
        for position in range(start, len(self.tokens)):
            token = self.tokens[position]
            if token.text in OPENERS:
                depth += 1
            elif token.text in _CLOSERS:
                depth = max(depth - 1, 0)
            elif depth:
                continue
            elif token.text in ("let", "have", "letI", "haveI"):
                bindings += 1
            elif token.text == ":=" and bindings:
                bindings -= 1
            elif token.text in (":=", "where") or (
                token.text == "|" and self._opens_line(position)
            ):
                return position
        return len(self.tokens)

    def _opens_line(self, position: int) -> bool:
        if position == 0:
            return True
        return "\n" in self.source[self.tokens[position - 1].end : self.tokens[position].start]

    # -- terms
    def term(
        self, start: int, stop: int, after: str, after_is_command: bool
    ) -> ParseFailure | None:
        """Check tokens[start:stop] as a term. A closer with no opener ends the term; Lean then
        expects `after` there (a new command when `after_is_command`)."""
        stack: list[int] = []  # indices of open brackets
        needs_operand = False  # the last token was an operator waiting for its right side
        piece_start = True  # at the start of a term (or of a part of a bracket)
        position = start
        while position < stop:
            token = self.tokens[position]
            text, width = self._operator(position, stop)
            if token.text in _TACTIC_STARTS:
                if not stack:
                    return None  # a tactic block to the end: the tactic engine reads it
                close = self.close_of(stack[-1], stop)
                if close is None:
                    return None
                position, needs_operand, piece_start = close, False, False
                stack.pop()
                position += 1
                continue
            if not stack and token.text in _TERM_ENDS:
                break
            if stack and token.text in _COMMAND_WORDS:
                return self.fail(position, _CLOSING_EXPECTED[self.tokens[stack[-1]].text])
            if token.text in OPENERS:
                stack.append(position)
                needs_operand, piece_start = False, True
            elif token.text in _CLOSERS:
                if needs_operand:
                    return self.fail(position, "term")
                if not stack:
                    return self.fail(position, after, after_is_command)
                opener = self.tokens[stack[-1]].text
                if _CLOSERS[token.text] != opener:
                    return self.fail(position, _CLOSING_EXPECTED[opener])
                stack.pop()
                needs_operand, piece_start = False, False
            elif text in _SEPARATORS:
                if needs_operand:
                    return self.fail(position, "term")
                if text == ":=" and not stack and not self._binds(start, position):
                    return self.fail(position, after, after_is_command)  # `rfl rfl :=`
                if text == ":=" and stack and not self._assignment_allowed(stack[-1], position):
                    return self.fail(position, _CLOSING_EXPECTED[self.tokens[stack[-1]].text])
                if text in _TERM_AFTER and (
                    position + 1 >= stop or self.tokens[position + 1].text in _CLOSERS
                ):
                    return self.fail(position + 1, "term")
                needs_operand, piece_start = False, True
            elif text in _BINARY and not self._postfix_star(position):
                if needs_operand or piece_start:
                    return self.fail(position, "term")
                needs_operand = True
            elif text in _NEEDS_OPERAND:
                needs_operand, piece_start = True, False
            else:  # an identifier, a literal, a keyword, notation the toy does not know
                needs_operand, piece_start = False, False
            position += width
        if needs_operand:
            return self.fail(stop, "term")
        if stack:
            return self.fail(stop, _CLOSING_EXPECTED[self.tokens[stack[-1]].text])
        return None

    def _operator(self, position: int, stop: int) -> tuple[str, int]:
        """The operator at `position` and how many tokens it spans: symbols written together
        form one Lean token when they spell one (`==`, `<|`, `&&`); otherwise each is read on its
        own, as Lean's longest-match lexer starts with the first (`:::` is `::` then `:`)."""
        first = self.tokens[position]
        if first.kind != "symbol" or first.text in OPENERS or first.text in _CLOSERS:
            return first.text, 1
        end = position + 1
        while (
            end < stop
            and self.tokens[end].kind == "symbol"
            and self.tokens[end].start == self.tokens[end - 1].end
            and self.tokens[end].text not in OPENERS
            and self.tokens[end].text not in _CLOSERS
            and self.tokens[end].text != ","
        ):
            end += 1
        joined = "".join(t.text for t in self.tokens[position:end])
        if end - position > 1:
            if joined in _JOINED:
                return joined, end - position
            if joined in _JOINED_UNKNOWN_OK or set(joined) != {":"}:
                return joined, end - position  # notation the toy does not know: not judged
        return first.text, 1

    def _postfix_star(self, position: int) -> bool:
        """`Type*` / `Sort*` (Mathlib's universe-polymorphic binder types)."""
        return (
            self.tokens[position].text == "*"
            and position > 0
            and self.tokens[position - 1].text in ("Type", "Sort")
            and self.tokens[position - 1].end == self.tokens[position].start
        )

    def _binds(self, start: int, position: int) -> bool:
        """Whether a word that takes `:=` (`let x := ...`) precedes `position` in the term."""
        return any(t.text in _ASSIGNING for t in self.tokens[start:position])

    def brackets(
        self, start: int, stop: int, after: str, after_is_command: bool
    ) -> ParseFailure | None:
        """Only the bracket rules, for text the toy does not read as a term (tactic blocks):
        tactics balance their brackets too."""
        stack: list[int] = []
        for position in range(start, stop):
            text = self.tokens[position].text
            if text in OPENERS:
                stack.append(position)
            elif text in _CLOSERS:
                if not stack:
                    return self.fail(position, after, after_is_command)
                opener = self.tokens[stack.pop()].text
                if _CLOSERS[text] != opener:
                    return self.fail(position, _CLOSING_EXPECTED[opener])
        if stack:
            return self.fail(stop, _CLOSING_EXPECTED[self.tokens[stack[-1]].text])
        return None

    def _assignment_allowed(self, opener: int, position: int) -> bool:
        """`:=` inside brackets: a named argument `(x := e)`, a default `(x : T := e)`, a field
        `{ x := e }`, or after `let`/`have` and friends; not after a term in parentheses."""
        if self.tokens[opener].text != "(":
            return True
        inside = self.tokens[opener + 1 : position]
        if len(inside) == 1 and inside[0].kind == "ident":
            return True
        return any(t.text in (":", "let", "have", "show", "fun", "λ") for t in inside)

    # -- declarations
    def declaration(self, index: int) -> ParseFailure | None:
        keyword = self.tokens[index].text
        position = index + 1
        if keyword not in _UNNAMED:
            name = self.at(position)
            if any(t.text in ("«", "»") for t in self.tokens):
                return None  # «any name»: the toy's lexer (and command split) cuts it up
            if (
                position >= len(self.tokens)  # the next command starts (its keyword, `#check`)
                or name is None
                or name.kind != "ident"
                or name.text in LEAN_KEYWORDS
            ):
                return self.fail(position, "identifier")
            position += 1
            if self.text(position) == "." and self.text(position + 1) == "{":  # foo.{u}
                close = self.close_of(position + 1, len(self.tokens))
                if close is None:
                    return self.fail(len(self.tokens), "'}'")
                position = close + 1
        signature_done = _AFTER_SIGNATURE if keyword not in _THEOREM_LIKE else "':'"
        while position < len(self.tokens):  # binders
            token = self.tokens[position]
            if token.kind == "ident" and token.text not in LEAN_KEYWORDS:
                position += 1
            elif token.text in _BINDER_OPENERS:
                close = self.close_of(position, len(self.tokens))
                stop = len(self.tokens) if close is None else close + 1
                failure = self.term(position, stop, signature_done, False)
                if failure is not None:
                    return failure
                position = stop
            else:
                break
        if self.text(position) == ":":
            type_start = position + 1
            type_end = self.type_end(type_start)
            if type_end == type_start:
                return self.fail(type_start, "term")
            failure = self.term(type_start, type_end, _AFTER_SIGNATURE, False)
            if failure is not None:
                return failure
            position = type_end
        elif keyword in _THEOREM_LIKE:
            return self.fail(position, "':'")
        if keyword in _VALUE_OPTIONAL:
            return None
        follows = self.text(position)
        if follows in ("|", "where"):
            return None  # equations or structure fields: not judged
        if follows != ":=" or position >= len(self.tokens):
            return self.fail(position, _AFTER_SIGNATURE)
        body = position + 1
        if body >= len(self.tokens):
            return self.fail(body, "term")
        if self.tokens[body].text in _TACTIC_STARTS:
            return self.brackets(body + 1, len(self.tokens), "command", True)
        return self.term(body, len(self.tokens), "command", True)


def declaration_parse_failure(
    source: str, tokens: Sequence[Token], index: int, following: Token | None
) -> ParseFailure | None:
    """The first place Lean's parser fails on the declaration whose keyword is tokens[index]
    (`tokens`: the whole command, modifiers included; `following`: the first token of the next
    command, None at the end of the input), or None when the toy sees no parse error."""
    return _Reader(source, tokens, following).declaration(index)
