"""The toy command elaborator: a request's `cmd` text -> messages, sorries, tactics, new env.

Understands what pools and search loops send: an import header, declarations (`theorem`, `lemma`,
`def`, `abbrev`, `example`, `instance`, `axiom`) whose proof is `by TACTICS`, `sorry` or a term,
`#eval` of integer arithmetic, `#check NAME` and `#check @NAME`, `#print axioms NAME`, `open`,
`namespace`/`end`, `variable`, `set_option`, and `type_of% @NAME` in a statement. Anything else at
the start of a command is Lean's "expected command" parse error. Messages copy the REPL's texts
and positions (the "declaration uses `sorry`" warning on the name, `unsolved goals` from `by` to
the end of the block, `#eval`/`#check`/`#print` output on the keyword).

Axioms, for `#print axioms` (what verdicts ask of Lean): each declaration keeps the axioms it
depends on, as Lean's `collectAxioms` would find them: an `axiom` itself; `sorryAx` when its proof
has a `sorry` or an error (Lean elaborates an error as `sorry`); the axioms of the declarations its
statement and proof name; the three standard axioms (`propext`, `Classical.choice`, `Quot.sound`)
for tactics that use them in Mathlib (`simp`, `omega`, `norm_num`, ...: the toy's approximation,
only real Lean says exactly which); and native computation (`native_decide`, `decide +native`) as
its release reports it (lean4 tests/lean/run/collectAxioms.lean: `[Lean.ofReduceBool,
Lean.trustCompiler]` up to 4.28; since 4.29, lean4 PR #12217, one auxiliary axiom per computation
named `<decl>._native.native_decide.ax_1_<k>`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from leanpool.testing._arith import EvaluationError, NotArithmetic, evaluate_expression
from leanpool.testing._grammar import ParseFailure, declaration_parse_failure
from leanpool.testing._library import LIBRARY_TYPES, is_library_name
from leanpool.testing._model import Binder, Declaration, Environment, Goal
from leanpool.testing._syntax import OPENERS, Source, Token, join_tokens, matching_close, tokenize
from leanpool.testing._tactics import SorryHit, TacticEngine, TacticRecord
from leanpool.testing._terms import alpha_normal, normalize

__all__ = ["Elaboration", "elaborate_command", "header_modules"]

_DECLARATIONS = {"theorem", "lemma", "def", "abbrev", "example", "instance", "opaque", "axiom"}
_MODIFIERS = {"private", "protected", "noncomputable", "partial", "unsafe", "nonrec"}
_LINE_COMMANDS = {
    "open", "namespace", "section", "end", "variable", "universe", "set_option", "import",
    "attribute", "local", "scoped", "macro", "macro_rules", "syntax", "notation", "infix", "infixl",
    "infixr", "prefix", "postfix", "structure", "inductive", "class", "mutual", "elab",
    "initialize", "deriving", "export",
}  # fmt: skip
_KEYWORDS = {
    "sorry",
    "by",
    "fun",
    "have",
    "show",
    "from",
    "at",
    "with",
    "then",
    "else",
    "do",
    "let",
}
_UNNAMED = {"example", "instance"}
_CLOSERS = set(OPENERS.values())
STANDARD_AXIOMS = ("propext", "Classical.choice", "Quot.sound")  # in `#print axioms` order
_CLASSICAL_TACTICS = {
    "simp", "simp_all", "simp_arith", "omega", "norm_num", "norm_num1", "linarith", "nlinarith",
    "positivity", "field_simp", "ring", "ring_nf", "aesop", "tauto", "polyrith", "gcongr", "bound",
    "push_cast", "by_contra", "by_cases", "decide?",
}  # fmt: skip
_NATIVE_SINCE = (4, 29)  # lean4 PR #12217: one auxiliary axiom per native computation


def _release(version: str | None) -> tuple[int, int]:
    """(major, minor) of `v4.28.0`-like text; the newest behaviour when unknown."""
    parts = (version or "").lstrip("v").split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return (99, 0)


@dataclass
class Elaboration:
    """Everything one command request produces, in the REPL's allocation order."""

    environment: Environment
    initial_environment: Environment  # before the request: what its proof states see
    messages: list[dict[str, object]] = field(default_factory=list)
    sorries: list[SorryHit] = field(default_factory=list)
    root_goals: list[tuple[Goal, int]] = field(default_factory=list)  # (goal, offset of `by`)
    tactics: list[TacticRecord] = field(default_factory=list)


def header_modules(text: str) -> tuple[list[str], int]:
    """The modules of the leading import header, and the offset where the header ends.

    Lean's header grammar (``Lean.Parser.Module.header``, src/Lean/Parser/Module.lean) takes one
    module per ``import`` keyword, with the module system's optional ``module``/``prelude``
    first and ``public``/``meta`` before and ``all`` after ``import``: in ``import A B`` the
    header ends after ``A``, and ``B`` is where the first command should start."""
    tokens = tokenize(text)
    modules: list[str] = []
    end = 0
    index = 0
    for word in ("module", "prelude"):
        if index < len(tokens) and tokens[index].text == word:
            end = tokens[index].end
            index += 1
    while True:
        at = index
        while at < len(tokens) and tokens[at].text in ("public", "meta"):
            at += 1
        if at >= len(tokens) or tokens[at].text != "import":
            break
        at += 1
        if at < len(tokens) and tokens[at].text == "all":
            at += 1
        if at >= len(tokens) or tokens[at].kind != "ident" or _is_command_start(tokens[at].text):
            end = tokens[at - 1].end  # `import` without a module: Lean's parse error follows
            break
        modules.append(tokens[at].text)
        end = tokens[at].end
        index = at + 1
    return modules, end


def _is_command_start(text: str) -> bool:
    return (
        text in _DECLARATIONS
        or text in _MODIFIERS
        or text in _LINE_COMMANDS
        or (text.startswith("#") and len(text) > 1)
    )


def _only_modifiers(tokens: Sequence[Token]) -> bool:
    """True while a command so far is just modifiers and `@[...]` attributes."""
    index = 0
    while index < len(tokens):
        if tokens[index].text in _MODIFIERS:
            index += 1
        elif (
            tokens[index].text == "@" and index + 1 < len(tokens) and tokens[index + 1].text == "["
        ):
            index = matching_close(tokens, index + 1) + 1
        else:
            return False
    return True


def _split_commands(source: Source, tokens: Sequence[Token]) -> list[list[Token]]:
    """Commands start at declaration keywords, `#...` commands and line-initial commands."""
    commands: list[list[Token]] = []
    current: list[Token] = []
    depth = 0
    previous_line = 0
    for index, token in enumerate(tokens):
        line_start = index == 0 or source.line_of(token.start) != previous_line
        previous_line = source.line_of(token.end)
        starts = depth == 0 and (
            token.text in _DECLARATIONS
            or token.text in _MODIFIERS
            or (token.text.startswith("#") and token.kind == "ident")
            or (token.text == "@" and index + 1 < len(tokens) and tokens[index + 1].text == "[")
            or (line_start and token.text in _LINE_COMMANDS)
        )
        if starts and current and not _only_modifiers(current):
            commands.append(current)
            current = []
        current.append(token)
        if token.text in OPENERS:
            depth += 1
        elif token.text in _CLOSERS:
            depth = max(depth - 1, 0)
    if current:
        commands.append(current)
    return commands


def _parse_binders(tokens: Sequence[Token]) -> list[Binder]:
    """`(x y : Nat) {h : x > 0} [Foo α]` -> binders (instance binders get `inst✝`)."""
    binders: list[Binder] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.text in ("(", "{", "[", "⦃"):
            close = matching_close(tokens, index)
            inner = tokens[index + 1 : close]
            colon = next((i for i, t in enumerate(inner) if t.text == ":"), None)
            if colon is None:
                if token.text == "[":
                    binders.append(Binder("inst✝", join_tokens(inner), "["))
                else:
                    binders.extend(
                        Binder(t.text, "?", token.text) for t in inner if t.kind == "ident"
                    )
            else:
                kind = join_tokens(inner[colon + 1 :])
                binders.extend(
                    Binder(t.text, kind, token.text) for t in inner[:colon] if t.kind == "ident"
                )
            index = close + 1
        else:
            if token.kind == "ident":
                binders.append(Binder(token.text, "?"))
            index += 1
    return binders


def _first_at_depth_zero(tokens: Sequence[Token], text: str) -> int | None:
    depth = 0
    for index, token in enumerate(tokens):
        if token.text in OPENERS:
            depth += 1
        elif token.text in _CLOSERS:
            depth = max(depth - 1, 0)
        elif depth == 0 and token.text == text:
            return index
    return None


class _CommandElaborator:
    def __init__(
        self,
        source: Source,
        environment: Environment,
        closing_tactics: Collection[str],
        *,
        all_tactics: bool,
        root_goals: bool,
        lean_version: str | None = None,
    ) -> None:
        self.source = source
        self.lean_version = lean_version
        self.base = environment  # proof states see the environment before the whole request
        self.environment = environment
        self.closing_tactics = closing_tactics
        self.all_tactics = all_tactics
        self.want_root_goals = root_goals
        self.result = Elaboration(environment, environment)
        self.following: Token | None = None  # the first token of the next command

    # -- messages
    def log(self, severity: str, data: str, start: int, end: int) -> None:
        line, column = self.source.position(start)
        end_line, end_column = self.source.position(end)
        self.result.messages.append(
            {
                "severity": severity,
                "pos": {"line": line, "column": column},
                "endPos": {"line": end_line, "column": end_column},
                "data": data,
            }
        )

    def parse_error(self, token: Token) -> None:
        if token.kind == "ident" and token.text not in _KEYWORDS:
            data = "unexpected identifier; expected command"
        else:
            data = f"unexpected token '{token.text}'; expected command"
        self.log("error", data, token.start, token.end)

    def log_parse_failure(self, failure: ParseFailure) -> None:
        """A parse error where Lean reports it (see `_grammar`): from the end of the last token
        read (from the unexpected token when it starts a command) to the unexpected token's end;
        at the end of the input, with no end position."""
        token, previous = failure.token, failure.previous
        start = previous.end if previous is not None else (token.start if token else 0)
        if token is None:
            start = len(self.source.text)
        line, column = self.source.position(start)
        end: dict[str, int] | None = None
        if token is not None:
            end_line, end_column = self.source.position(token.end)
            end = {"line": end_line, "column": end_column}
        self.result.messages.append(
            {
                "severity": "error",
                "pos": {"line": line, "column": column},
                "endPos": end,
                "data": failure.message(),
            }
        )

    def engine(self) -> TacticEngine:
        return TacticEngine(
            self.source,
            self.environment,
            self.closing_tactics,
            command_mode=True,
            record_tactics=self.all_tactics,
        )

    # -- commands
    def run(self, tokens: Sequence[Token]) -> Elaboration:
        commands = _split_commands(self.source, tokens)
        for position, command in enumerate(commands):
            # where Lean's parser is when a command ends early: the next command, or the end
            self.following = commands[position + 1][0] if position + 1 < len(commands) else None
            self.command(command)
        self.result.environment = self.environment
        return self.result

    def command(self, tokens: list[Token]) -> None:
        index = 0
        while index < len(tokens) and (
            tokens[index].text in _MODIFIERS or tokens[index].text == "@"
        ):
            index = (
                matching_close(tokens, index + 1) + 1 if tokens[index].text == "@" else index + 1
            )
        if index >= len(tokens):
            return
        head = tokens[index].text
        if head in _DECLARATIONS:
            self.declaration(tokens, index)
        elif head == "#eval":
            self.evaluate(tokens[index], tokens[index + 1 :])
        elif head == "#check":
            self.check(tokens[index], tokens[index + 1 :])
        elif head == "#print" and index + 1 < len(tokens) and tokens[index + 1].text == "axioms":
            self.print_axioms(tokens[index], tokens[index + 2 :])
        elif head.startswith("#"):
            return  # #print, #reduce, ...: accepted without output
        elif head == "open":
            names = [t.text for t in tokens[index + 1 :] if t.kind == "ident" and t.text != "in"]
            self.environment = dataclasses.replace(
                self.environment, opens=(*self.environment.opens, *names)
            )
        elif head == "namespace" and index + 1 < len(tokens):
            parts = tuple(tokens[index + 1].text.split("."))
            self.environment = dataclasses.replace(
                self.environment, namespace=(*self.environment.namespace, *parts)
            )
        elif head == "end" and index + 1 < len(tokens):
            parts = tuple(tokens[index + 1].text.split("."))
            if self.environment.namespace[-len(parts) :] == parts:
                namespace = self.environment.namespace[: -len(parts)]
                self.environment = dataclasses.replace(self.environment, namespace=namespace)
        elif head == "variable":
            binders = tuple(_parse_binders(tokens[index + 1 :]))
            variables = (*self.environment.variables, *binders)
            self.environment = dataclasses.replace(self.environment, variables=variables)
        elif head == "import":
            self.log(
                "error",
                "invalid 'import' command, it must be used in the beginning of the file",
                tokens[index].start,
                tokens[-1].end,
            )
        elif head not in _LINE_COMMANDS:
            self.parse_error(tokens[index])

    def declaration(self, tokens: list[Token], index: int) -> None:
        failure = declaration_parse_failure(self.source.text, tokens, index, self.following)
        if failure is not None:  # what Lean cannot parse fails, never passes (issue 21)
            self.log_parse_failure(failure)
            return
        keyword = tokens[index]
        command_column = self.source.column_of(tokens[0].start)
        named = keyword.text not in _UNNAMED and index + 1 < len(tokens)
        name_token = tokens[index + 1] if named else keyword
        rest = tokens[index + 2 :] if named else tokens[index + 1 :]
        assign = _first_at_depth_zero(rest, ":=")
        signature = rest if assign is None else rest[:assign]
        body = [] if assign is None else rest[assign + 1 :]
        colon = _first_at_depth_zero(signature, ":")
        binders = _parse_binders(signature if colon is None else signature[:colon])
        statement = None if colon is None else self._expand_type_of(signature[colon + 1 :])
        if colon is not None and statement is None:  # an unknown name after `type_of%`
            return
        mentioned = {t.text for t in signature if t.kind == "ident"}
        binders = [*self._included_variables(mentioned), *binders]
        hypotheses = tuple((b.name, b.type) for b in binders)
        engine = self.engine()
        leftover: list[Token] = []
        if body and body[0].text == "by":
            by_token = body[0]
            by_line = self.source.line_of(by_token.start)
            cut = next(
                (
                    i
                    for i, t in enumerate(body)
                    if self.source.line_of(t.start) > by_line
                    and self.source.column_of(t.start) <= command_column
                ),
                len(body),
            )
            body, leftover = body[:cut], body[cut:]
            goal = Goal(hypotheses, normalize(statement or "?"))
            if self.want_root_goals:
                self.result.root_goals.append((goal, by_token.start))
            engine.run_block(by_token, body[1:], goal)
        elif body:
            goal = Goal(hypotheses, normalize(statement) if statement else "?")
            engine.elaborate_term(body, goal, goal.target if statement else None)
        self.result.messages.extend(engine.messages)
        self.result.sorries.extend(engine.sorries)
        self.result.tactics.extend(engine.records)
        if engine.explicit_sorry and engine.error_count == 0:
            self.log("warning", "declaration uses `sorry`", name_token.start, name_token.end)
        if leftover:
            self.parse_error(leftover[0])
        if named:
            axioms = self._axioms_of(keyword.text, name_token, signature, body, engine)
            self._declare(name_token, binders, statement, body, axioms)

    def _included_variables(self, mentioned: set[str]) -> list[Binder]:
        """`variable`s the signature mentions, directly or through other included variables."""
        variables = self.environment.variables
        included: set[str] = set()
        changed = True
        while changed:
            changed = False
            for binder in variables:
                if binder.name in included:
                    continue
                if binder.name in mentioned or any(
                    binder.name in {t.text for t in tokenize(v.type)}
                    for v in variables
                    if v.name in included
                ):
                    included.add(binder.name)
                    changed = True
        return [b for b in variables if b.name in included]

    def _expand_type_of(self, tokens: Sequence[Token]) -> str | None:
        """The statement's text with each `type_of% @NAME` replaced by NAME's closed type (None,
        with the error logged, when NAME is unknown)."""
        pieces: list[str] = []
        index = 0
        while index < len(tokens):
            token = tokens[index]
            following = tokens[index + 1].text if index + 1 < len(tokens) else ""
            if token.text != "type_of" or following != "%":  # `type_of%` is two tokens here
                pieces.append(token.text)
                index += 1
                continue
            index += 2
            if index < len(tokens) and tokens[index].text == "@":
                index += 1
            if index >= len(tokens):
                self.parse_error(token)
                return None
            target = tokens[index]
            declaration = self.environment.resolve(target.text)
            if declaration is None:
                self.log("error", f"Unknown identifier `{target.text}`", target.start, target.end)
                return None
            pieces.append(f"({alpha_normal(declaration.closed_type())})")
            index += 1
        return join_tokens(tokenize(" ".join(pieces)))

    def _axioms_of(
        self,
        keyword: str,
        name_token: Token,
        signature: Sequence[Token],
        body: Sequence[Token],
        engine: TacticEngine,
    ) -> tuple[str, ...]:
        """What `#print axioms` lists for the declaration (see the module docstring)."""
        if keyword == "axiom":
            return (self.environment.qualified(name_token.text),)
        found: list[str] = []

        def add(*names: str) -> None:
            found.extend(n for n in names if n not in found)

        if engine.uses_sorry or engine.explicit_sorry or engine.error_count:
            add("sorryAx")
        for token in (*signature, *body):
            if token.kind != "ident":
                continue
            declaration = self._resolve_prefix(token.text)  # `cheat.elim` uses `cheat`
            if declaration is not None:
                add(*declaration.axioms)
            elif token.text in _CLASSICAL_TACTICS:
                add(*STANDARD_AXIOMS)
        if engine.native_computations:
            if _release(self.lean_version) >= _NATIVE_SINCE:
                qualified = self.environment.qualified(name_token.text)
                add(
                    *(
                        f"{qualified}._native.native_decide.ax_1_{k}"
                        for k in range(1, engine.native_computations + 1)
                    )
                )
            else:
                add("Lean.ofReduceBool", "Lean.trustCompiler")
        standard = [a for a in STANDARD_AXIOMS if a in found]
        return (*standard, *sorted(a for a in found if a not in STANDARD_AXIOMS))

    def _resolve_prefix(self, name: str) -> Declaration | None:
        """The declaration `name` or its longest dotted prefix denotes (`h.elim`, `t.symm`)."""
        parts = name.split(".")
        for end in range(len(parts), 0, -1):
            found = self.environment.resolve(".".join(parts[:end]))
            if found is not None:
                return found
        return None

    def _declare(
        self,
        name_token: Token,
        binders: list[Binder],
        statement: str | None,
        body: list[Token],
        axioms: tuple[str, ...] = (),
    ) -> None:
        qualified = self.environment.qualified(name_token.text)
        if any(d.name == qualified for d in self.environment.declarations):
            self.log(
                "error",
                f"'{qualified}' has already been declared",
                name_token.start,
                name_token.end,
            )
            return
        value = join_tokens(body) if body and body[0].text != "by" else None
        kind = normalize(statement) if statement else self._infer_type(value)
        declaration = Declaration(qualified, tuple(binders), kind, value, axioms)
        self.environment = self.environment.declare(declaration)

    def _infer_type(self, value: str | None) -> str | None:
        if value is None:
            return None
        tokens = tokenize(value)
        if len(tokens) == 1 and tokens[0].kind == "string":
            return "String"
        if value in ("true", "false"):
            return "Bool"
        try:
            evaluate_expression(value, self._values(tokens))
        except (NotArithmetic, EvaluationError):
            return None
        return "Int" if any(t.text in ("Int", "ℤ") for t in tokens) else "Nat"

    def _values(self, tokens: Sequence[Token], depth: int = 0) -> dict[str, int]:
        """Values of the constants `tokens` mention, from their definitions (for `#eval`)."""
        values: dict[str, int] = {}
        for token in tokens:
            declaration = self.environment.resolve(token.text) if token.kind == "ident" else None
            if (
                declaration is None
                or declaration.value is None
                or declaration.binders
                or depth > 32
            ):
                continue
            inner = tokenize(declaration.value)
            try:
                values[token.text] = evaluate_expression(
                    declaration.value, self._values(inner, depth + 1)
                )
            except (NotArithmetic, EvaluationError):
                continue
        return values

    def _unknown(self, tokens: Sequence[Token]) -> Token | None:
        for token in tokens:
            if token.kind != "ident" or token.text in ("Int", "Nat", "ℤ", "ℕ"):
                continue
            if self.environment.resolve(token.text) is None and not is_library_name(token.text):
                return token
        return None

    def evaluate(self, keyword: Token, expression: list[Token]) -> None:
        if not expression:
            self.parse_error(keyword)
            return
        unknown = self._unknown(expression)
        if unknown is not None:
            self.log("error", f"Unknown identifier `{unknown.text}`", unknown.start, unknown.end)
            return
        text = join_tokens(expression)
        if len(expression) == 1 and (expression[0].kind == "string" or text in ("true", "false")):
            self.log("info", text, keyword.start, keyword.end)
            return
        try:
            value = evaluate_expression(text, self._values(expression))
        except EvaluationError as error:
            self.log("error", str(error), expression[0].start, expression[-1].end)
            return
        except NotArithmetic:
            self.log(
                "error",
                "simrepl: cannot evaluate this expression (the simulator evaluates closed "
                "integer arithmetic and definitions of it)",
                keyword.start,
                keyword.end,
            )
            return
        self.log("info", str(value), keyword.start, keyword.end)

    def print_axioms(self, keyword: Token, names: list[Token]) -> None:
        """`#print axioms NAME`: Lean's two message forms (lean4 src/Lean/Elab/Print.lean)."""
        if len(names) != 1 or names[0].kind != "ident":
            self.parse_error(names[0] if names else keyword)
            return
        name = names[0]
        declaration = self.environment.resolve(name.text)
        if declaration is None and not is_library_name(name.text):
            self.log("error", f"Unknown constant `{name.text}`", name.start, name.end)
            return
        full = declaration.name if declaration is not None else name.text
        axioms = declaration.axioms if declaration is not None else STANDARD_AXIOMS[:1]
        if axioms:
            data = f"'{full}' depends on axioms: [{', '.join(axioms)}]"
        else:
            data = f"'{full}' does not depend on any axioms"
        self.log("info", data, keyword.start, keyword.end)

    def check(self, keyword: Token, expression: list[Token]) -> None:
        if not expression:
            self.parse_error(keyword)
            return
        if len(expression) == 2 and expression[0].text == "@" and expression[1].kind == "ident":
            declaration = self.environment.resolve(expression[1].text)
            if declaration is not None:
                data = f"@{declaration.name} : {declaration.closed_type()}"
                self.log("info", data, keyword.start, keyword.end)
                return
            expression = expression[1:]
        if len(expression) == 1 and expression[0].kind == "ident":
            name = expression[0].text
            declaration = self.environment.resolve(name)
            if declaration is not None:
                self.log("info", declaration.signature(), keyword.start, keyword.end)
                return
            if name in LIBRARY_TYPES:
                self.log("info", f"{name} : {LIBRARY_TYPES[name]}", keyword.start, keyword.end)
                return
        unknown = self._unknown(expression)
        if unknown is not None:
            self.log("error", f"Unknown identifier `{unknown.text}`", unknown.start, unknown.end)
            return
        text = join_tokens(expression)
        kind = self._infer_type(text) or "?"
        self.log("info", f"{text} : {kind}", keyword.start, keyword.end)


def elaborate_command(
    text: str,
    environment: Environment | None,
    closing_tactics: Collection[str],
    *,
    all_tactics: bool = False,
    root_goals: bool = False,
    lean_version: str | None = None,
) -> Elaboration:
    """Elaborate `text` on top of `environment` (None: a fresh one from the text's header)."""
    source = Source(text)
    start = 0
    if environment is None:
        modules, start = header_modules(text)
        environment = Environment(imports=tuple(modules))
    elaborator = _CommandElaborator(
        source,
        environment,
        closing_tactics,
        all_tactics=all_tactics,
        root_goals=root_goals,
        lean_version=lean_version,
    )
    return elaborator.run(tokenize(text, start))
