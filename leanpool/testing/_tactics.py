"""The toy tactic engine: one engine for `by` blocks in commands and for `ProofStep` requests.

Good enough for pools and search loops, not a prover. Goals are strings; tactics change them the
way Lean would in simple cases (`intro`, `constructor`, `cases`, `induction`, `have`, `rw` with a
hypothesis, ...). The configurable *closing* tactics (default `rfl simp omega decide norm_num
linarith exact trivial`) close the main goal, except that closed arithmetic statements are
*checked*: a false `2 + 2 = 5` makes `decide`/`rfl`/`omega`/`linarith` fail and leaves `⊢ False`
after `simp`/`norm_num`, so right and wrong proofs get right and wrong verdicts. Any other tactic
name is an unknown tactic, as a parse error in Lean.

Errors follow Lean's two kinds: a tactic that *throws* (`TacticFailure`) aborts its block (an
`Error` response in tactic mode; a message plus an admitted goal in a command), while term
elaboration errors (``Unknown identifier``, ``Type mismatch``) are *logged* and the goal is closed
with an error-recovery `sorry`.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from leanpool.testing._arith import (
    EvaluationError,
    NotArithmetic,
    evaluate_expression,
    evaluate_statement,
)
from leanpool.testing._library import is_library_name
from leanpool.testing._model import INACCESSIBLE, Environment, Goal, render_goals
from leanpool.testing._syntax import (
    Source,
    Token,
    join_tokens,
    matching_close,
    split_tactic_block,
    split_top_level,
    tokenize,
)
from leanpool.testing._terms import (
    alpha_normal,
    connective,
    leading_binder,
    negate,
    negated,
    normalize,
    relation,
    substitute,
)

__all__ = [
    "DEFAULT_CLOSING_TACTICS",
    "SorryHit",
    "TacticEngine",
    "TacticFailure",
    "TacticRecord",
    "UnknownTactic",
]

DEFAULT_CLOSING_TACTICS = (
    "rfl",
    "simp",
    "omega",
    "decide",
    "norm_num",
    "linarith",
    "exact",
    "trivial",
)
_SIMPLIFIERS = {"simp", "norm_num", "simp_all", "field_simp", "simp_arith", "norm_num1"}
_NAT_TYPES = {"Nat", "ℕ"}
_TERM_KEYWORDS = {
    "fun", "λ", "show", "by", "have", "let", "if", "match", "do", "sorry", "Type", "Prop", "Sort",
    "_", "from", "calc",
}  # fmt: skip
_COMBINATOR_HEADS = {
    "·",
    ".",
    "(",
    "{",
    "focus",
    "all_goals",
    "any_goals",
    "try",
    "first",
    "repeat",
}
_NO_POSITION = {"line": 0, "column": 0}


class TacticFailure(Exception):
    """A tactic threw: the message Lean would show, and where (offsets into the source)."""

    def __init__(self, message: str, tokens: Sequence[Token] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.start: int | None = tokens[0].start if tokens else None
        self.end: int | None = tokens[-1].end if tokens else None


class UnknownTactic(TacticFailure):
    """The text is not a tactic the simulator knows: a parse error in Lean."""


@dataclass(frozen=True)
class SorryHit:
    """An explicit `sorry` and the goal it closed (offsets only for sorries in command text)."""

    goal: Goal
    start: int | None
    end: int | None


@dataclass(frozen=True)
class TacticRecord:
    """One tactic run in a command, for `allTactics`."""

    text: str
    start: int
    end: int
    goals_before: tuple[Goal, ...]


def _canonical(proposition: str) -> str:
    """Compare propositions up to `a > b` = `b < a`, `a ≥ b` = `b ≤ a` and outer parentheses."""
    text = normalize(proposition)
    found = relation(text)
    if found is not None:
        op, left, right = found
        flipped = {">": "<", "≥": "≤"}
        if op in flipped:
            return f"{right} {flipped[op]} {left}"
        return f"{left} {op} {right}"
    return text


_ARITHMETIC_TYPES = {None, "Nat", "ℕ", "Int", "ℤ"}  # None: a `def` whose type was inferred


def definition_values(
    environment: Environment, text: str, hidden: Collection[str] = ()
) -> tuple[dict[str, int], bool]:
    """Values of the arithmetic constants `text` mentions, from their definitions (`def k := 7`
    makes `k` 7; definitions of other definitions too), as `decide` unfolds them; and whether one
    of them is an `Int`. Names in `hidden` (hypotheses, which shadow constants) are left out."""
    values: dict[str, int] = {}
    integer = False
    pending = [(t.text, 0) for t in tokenize(text) if t.kind == "ident" and t.text not in hidden]
    resolved: dict[str, tuple[str, bool] | None] = {}
    while pending:  # collect every definition reached, then evaluate innermost first
        name, depth = pending.pop()
        if name in resolved or depth > 32:
            continue
        declaration = environment.resolve(name)
        if (
            declaration is None
            or declaration.value is None
            or declaration.binders
            or declaration.type not in _ARITHMETIC_TYPES
        ):
            resolved[name] = None
            continue
        resolved[name] = (declaration.value, declaration.type in ("Int", "ℤ"))
        inner = tokenize(declaration.value)
        pending.extend((t.text, depth + 1) for t in inner if t.kind == "ident")
    for _ in range(len(resolved)):  # each round evaluates at least one more, or nothing can
        progress = False
        for name, found in resolved.items():
            if found is None or name in values:
                continue
            try:
                values[name] = evaluate_expression(found[0], values, integer=found[1])
            except (NotArithmetic, EvaluationError):
                continue
            integer = integer or found[1]
            progress = True
        if not progress:
            break
    return values, integer


def _binders_text(binders: Sequence[tuple[str, str | None]]) -> str:
    return " ".join(name if kind is None else f"({name} : {kind})" for name, kind in binders)


class TacticEngine:
    """Runs tactics on goals, collecting messages, sorries and (optionally) tactic records.

    `command_mode` decides where messages point: at the text (commands) or at 0:0 and without
    sorry positions (tactic mode), as the REPL reports them.
    """

    def __init__(
        self,
        source: Source,
        environment: Environment,
        closing_tactics: Collection[str],
        *,
        command_mode: bool,
        record_tactics: bool = False,
    ) -> None:
        self.source = source
        self.environment = environment
        self.closing_tactics = frozenset(closing_tactics)
        self.command_mode = command_mode
        self.record_tactics = record_tactics
        self.messages: list[dict[str, object]] = []
        self.sorries: list[SorryHit] = []
        self.records: list[TacticRecord] = []
        self.uses_sorry = False  # an explicit sorry or an error-recovery sorry closed some goal
        self.explicit_sorry = False
        self.error_count = 0
        self.native_computations = 0  # `native_decide` / `decide +native` that closed goals
        self._reducible = False  # inside `with_reducible`: `rfl` compares terms as written
        self._handlers: dict[str, Callable[[Sequence[Token], list[Goal]], list[Goal]]] = {
            "sorry": self._sorry,
            "admit": self._sorry,
            "intro": self._intro,
            "intros": self._intros,
            "rintro": self._intro,
            "constructor": self._constructor,
            "exfalso": self._exfalso,
            "left": self._left_right,
            "right": self._left_right,
            "apply": self._apply,
            "refine": self._refine,
            "have": self._have,
            "show": self._show,
            "by_cases": self._by_cases,
            "cases": self._cases,
            "cases'": self._cases,
            "rcases": self._cases,
            "obtain": self._cases,
            "induction": self._induction,
            "induction'": self._induction,
            "rw": self._rewrite,
            "rewrite": self._rewrite,
            "rwa": self._rewrite,
            "use": self._use,
            "exists": self._use,
            "specialize": self._specialize,
            "contradiction": self._contradiction,
            "assumption": self._assumption,
            "done": self._done,
            "skip": lambda tokens, goals: goals,
            "all_goals": self._all_goals,
            "any_goals": self._any_goals,
            "try": self._try,
            "first": self._first,
            "repeat": self._repeat,
            "case": self._case,
            "next": self._case,
            "focus": self._focus,
            "with_reducible": self._with_reducible,
            "native_decide": self._native_decide,
            "·": self._focus,
            ".": self._focus,
            "(": self._parenthesized,
            "{": self._braces,
        }

    # --- entry points ----------------------------------------------------------------------
    def knows(self, tactic: Sequence[Token]) -> bool:
        head = tactic[0].text
        return head in self._handlers or head in self.closing_tactics

    def run_step(self, tokens: Sequence[Token], goals: list[Goal]) -> list[Goal]:
        """A ProofStep: run the tactic text on `goals`; TacticFailure means an Error response."""
        tactics = split_tactic_block(self.source, tokens)
        if not tactics:
            raise TacticFailure("<input>:1:0: unexpected end of input")
        try:
            return self._run_tactics(tactics, goals)
        except UnknownTactic as unknown:
            line, column = self.source.position(unknown.start or 0)
            raise TacticFailure(f"<input>:{line}:{column + 1}: unknown tactic") from None

    def run_block(self, by_token: Token, body: Sequence[Token], goal: Goal) -> None:
        """A `by` block inside a command or term: errors are logged and the goal is admitted."""
        tactics = split_tactic_block(self.source, body)
        if self.command_mode:
            unknown = next((i for i, tactic in enumerate(tactics) if not self.knows(tactic)), None)
            if unknown is not None:
                token = tactics[unknown][0]
                self._log("error", "unknown tactic", token.start, token.end)
                tactics = tactics[:unknown]
        try:
            remaining = self._run_tactics(tactics, [goal])
        except TacticFailure as failure:
            self._log("error", failure.message, failure.start, failure.end)
            self.uses_sorry = True
            return
        if remaining:
            end = tactics[-1][-1].end if tactics else by_token.end
            self._log("error", "unsolved goals\n" + render_goals(remaining), by_token.start, end)
            self.uses_sorry = True

    # --- bookkeeping -----------------------------------------------------------------------
    def _log(self, severity: str, data: str, start: int | None, end: int | None) -> None:
        if severity == "error":
            self.error_count += 1
        if self.command_mode and start is not None:
            line, column = self.source.position(start)
            end_line, end_column = self.source.position(end if end is not None else start)
            pos: dict[str, int] = {"line": line, "column": column}
            end_pos: dict[str, int] = {"line": end_line, "column": end_column}
        else:
            pos, end_pos = dict(_NO_POSITION), dict(_NO_POSITION)
        self.messages.append({"severity": severity, "pos": pos, "endPos": end_pos, "data": data})

    def _log_error_at(self, data: str, tokens: Sequence[Token]) -> None:
        self._log("error", data, tokens[0].start, tokens[-1].end)
        self.uses_sorry = True  # the term elaborates to an error-recovery sorry

    def _add_sorry(self, goal: Goal, token: Token) -> None:
        if self.command_mode:
            self.sorries.append(SorryHit(goal, token.start, token.end))
        else:
            self.sorries.append(SorryHit(goal, None, None))
        self.uses_sorry = self.explicit_sorry = True

    def _snapshot(self) -> tuple[int, int, int, bool, bool, int]:
        return (
            len(self.messages),
            len(self.sorries),
            len(self.records),
            self.uses_sorry,
            self.explicit_sorry,
            self.error_count,
        )

    def _restore(self, snapshot: tuple[int, int, int, bool, bool, int]) -> None:
        messages, sorries, records, self.uses_sorry, self.explicit_sorry, self.error_count = (
            snapshot
        )
        del self.messages[messages:], self.sorries[sorries:], self.records[records:]

    # --- running ---------------------------------------------------------------------------
    def _run_tactics(self, tactics: Sequence[Sequence[Token]], goals: list[Goal]) -> list[Goal]:
        for tactic in tactics:
            goals = self._run_tactic(tactic, goals)
        return goals

    def _run_block_tokens(self, tokens: Sequence[Token], goals: list[Goal]) -> list[Goal]:
        return self._run_tactics(split_tactic_block(self.source, tokens), goals)

    def _run_tactic(self, tokens: Sequence[Token], goals: list[Goal]) -> list[Goal]:
        if self.record_tactics and tokens[0].text not in _COMBINATOR_HEADS:
            text = self.source.text[tokens[0].start : tokens[-1].end]
            self.records.append(TacticRecord(text, tokens[0].start, tokens[-1].end, tuple(goals)))
        try:
            return self._dispatch(tokens, goals)
        except TacticFailure as failure:
            if failure.start is None:
                failure.start, failure.end = tokens[0].start, tokens[-1].end
            raise

    def _dispatch(self, tokens: Sequence[Token], goals: list[Goal]) -> list[Goal]:
        stages = split_top_level(tokens, "<;>")
        if len(stages) > 1 and all(stages):
            return self._then_all(stages, goals)
        head = tokens[0].text
        handler = self._handlers.get(head)
        if handler is not None:
            return handler(tokens, goals)
        if head in self.closing_tactics:
            return self._closing(tokens, goals)
        raise UnknownTactic("unknown tactic", tokens[:1])

    def _then_all(self, stages: list[list[Token]], goals: list[Goal]) -> list[Goal]:
        goal, rest = self._main(goals)
        produced = self._dispatch(stages[0], [goal])
        for stage in stages[1:]:
            produced = [g for each in produced for g in self._dispatch(stage, [each])]
        return produced + rest

    @staticmethod
    def _main(goals: list[Goal]) -> tuple[Goal, list[Goal]]:
        if not goals:
            raise TacticFailure("No goals to be solved")
        return goals[0], list(goals[1:])

    # --- names and terms ---------------------------------------------------------------------
    def unknown_head(self, term: Sequence[Token], goal: Goal) -> Token | None:
        """The term's head identifier when it names nothing (``Unknown identifier``)."""
        first = term[1] if term[0].text == "@" and len(term) > 1 else term[0]
        if first.kind != "ident" or first.text in _TERM_KEYWORDS:
            return None
        name = first.text
        root = name.split(".")[0]
        for candidate in (name, root):
            if goal.hypothesis(candidate) is not None:
                return None
            if self.environment.resolve(candidate) is not None:
                return None
        return None if is_library_name(name) else first

    def elaborate_term(self, term: Sequence[Token], goal: Goal, expected: str | None) -> None:
        """Check a term against `expected` (None: unknown), logging Lean's errors (never throws).

        Only the head identifier is resolved, and only a lone identifier is type-checked.
        """
        if not term:
            self._log("error", "expected term", None, None)
            self.uses_sorry = True
            return
        if len(term) == 1 and term[0].text == "sorry":
            self._add_sorry(Goal(goal.hypotheses, expected or "?"), term[0])
            return
        if any(t.text == "sorry" for t in term):
            self.uses_sorry = self.explicit_sorry = True
        unknown = self.unknown_head(term, goal)
        if unknown is not None:
            self._log_error_at(f"Unknown identifier `{unknown.text}`", [unknown])
            return
        if expected is None or len(term) != 1 or term[0].kind != "ident":
            return
        name = term[0].text
        actual = goal.hypothesis(name)
        if actual is None:
            declaration = self.environment.resolve(name)
            if declaration is not None and not declaration.binders:
                actual = declaration.type
        if name == "rfl" and evaluate_statement(expected) is False:
            found = relation(expected)
            actual = f"{found[1]} = {found[1]}" if found else None
        if actual is not None and _canonical(actual) != _canonical(expected):
            message = (
                f"Type mismatch\n  {name}\nhas type\n  {actual}\n"
                f"but is expected to have type\n  {expected}"
            )
            self._log_error_at(message, term)

    def _location(self, tokens: Sequence[Token]) -> list[str] | None:
        """Names after a top-level `at` (`simp at h ⊢`), or None when there is no `at`."""
        depth_zero = split_top_level(tokens, "at")
        if len(depth_zero) < 2:
            return None
        return [t.text for t in depth_zero[-1]]

    def _contradictory(self, goal: Goal) -> bool:
        kinds = [normalize(kind) for _, kind in goal.hypotheses]
        if any(kind == "False" or evaluate_statement(kind) is False for kind in kinds):
            return True
        present = set(kinds)
        return any(negated(kind) in present for kind in kinds)

    # --- closing tactics ----------------------------------------------------------------------
    def _closing(self, tokens: Sequence[Token], goals: list[Goal]) -> list[Goal]:
        goal, rest = self._main(goals)
        head = tokens[0].text
        location = self._location(tokens)
        if location is not None and "⊢" not in location:
            return goals  # hypotheses are simplified in place; the toy leaves them as they are
        if head == "exact":
            if len(tokens) < 2:
                raise TacticFailure("expected term")
            self.elaborate_term(tokens[1:], goal, goal.target)
            return rest
        closed = self._decide(head, goal) + rest
        if head == "decide" and any(
            a.text == "+" and b.text == "native" for a, b in itertools.pairwise(tokens)
        ):  # `decide +native` (two tokens here)
            self.native_computations += 1
        return closed

    def _native_decide(self, tokens: Sequence[Token], goals: list[Goal]) -> list[Goal]:
        goal, rest = self._main(goals)
        closed = self._decide("decide", goal) + rest
        self.native_computations += 1
        return closed

    def _with_reducible(self, tokens: Sequence[Token], goals: list[Goal]) -> list[Goal]:
        if len(tokens) < 2:
            raise TacticFailure("expected tactic")
        outer, self._reducible = self._reducible, True
        try:
            return self._run_block_tokens(tokens[1:], goals)
        finally:
            self._reducible = outer

    def _decide(self, head: str, goal: Goal) -> list[Goal]:
        target = goal.target
        if self._contradictory(goal):
            return []
        verdict = evaluate_statement(target)
        if verdict is None and head == "decide":  # `decide` unfolds definitions: `def k := 7`
            hypotheses = {name for name, _ in goal.hypotheses}
            values, integer = definition_values(self.environment, target, hypotheses)
            if values:
                verdict = evaluate_statement(target, values, integer)
        if head == "rfl" and self._reducible and verdict is None:
            # With reducible transparency nothing the toy knows unfolds: the two sides must be
            # the same term (bound names do not matter).
            found = relation(target)
            if (
                found is not None
                and found[0] == "="
                and alpha_normal(found[1]) != alpha_normal(found[2])
            ):
                raise TacticFailure(self._refutation(head, goal))
        if head == "rfl" and not self._reflexive_shape(target):
            raise TacticFailure(
                f"The rfl tactic failed: the goal is not a reflexive relation\n\n{goal.render()}"
            )
        if head == "decide" and verdict is None and self._mentions_hypotheses(goal):
            raise TacticFailure(
                f"Tactic `decide` failed: expected type must not contain free variables\n  {target}"
            )
        if verdict is not False:
            return []
        if head in _SIMPLIFIERS:
            if target == "False":
                raise TacticFailure(f"{head} made no progress")
            return [dataclasses.replace(goal, target="False")]
        raise TacticFailure(self._refutation(head, goal))

    @staticmethod
    def _reflexive_shape(target: str) -> bool:
        found = relation(target)
        if found is not None:
            return found[0] in ("=", "≤", "≥")
        split = connective(target)
        return split is not None and split[0] == "↔"

    @staticmethod
    def _mentions_hypotheses(goal: Goal) -> bool:
        names = {name for name, _ in goal.hypotheses}
        return any(t.text in names for t in tokenize(goal.target) if t.kind == "ident")

    @staticmethod
    def _refutation(head: str, goal: Goal) -> str:
        target = goal.target
        if head == "rfl":
            found = relation(target)
            if found is not None and found[0] == "=":
                return (
                    f"Tactic `rfl` failed: The left-hand side\n  {found[1]}\n"
                    f"is not definitionally equal to the right-hand side\n  {found[2]}\n\n"
                    f"{goal.render()}"
                )
        if head == "decide":
            return f"Tactic `decide` proved that the proposition\n  {target}\nis false"
        if head == "omega":
            return f"omega could not prove the goal:\nthe proposition\n  {target}\nis false"
        if head == "linarith":
            contradiction_goal = dataclasses.replace(goal, target="False")
            return f"linarith failed to find a contradiction\n{contradiction_goal.render()}"
        return f"Tactic `{head}` failed: the proposition\n  {target}\nis false\n\n{goal.render()}"

    # --- goal-shaping tactics ----------------------------------------------------------------
    def _sorry(self, tokens: Sequence[Token], goals: list[Goal]) -> list[Goal]:
        goal, rest = self._main(goals)
        self._add_sorry(goal, tokens[0])
        return rest

    def _intro(self, tokens: Sequence[Token], goals: list[Goal]) -> list[Goal]:
        goal, rest = self._main(goals)
        names: list[str | None] = [
            None if t.text == "_" else t.text for t in tokens[1:] if t.kind == "ident"
        ]
        for name in names or [None]:
            goal = self._intro_one(goal, name)
        return [goal, *rest]

    def _intros(self, tokens: Sequence[Token], goals: list[Goal]) -> list[Goal]:
        goal, rest = self._main(goals)
        for _ in range(64):
            try:
                goal = self._intro_one(goal, None)
            except TacticFailure:
                break
        return [goal, *rest]

    @staticmethod
    def _intro_one(goal: Goal, name: str | None) -> Goal:
        target = goal.target
        binder = leading_binder(target)
        if binder is not None and binder[0] == "∀":
            _, binders, body = binder
            variable, kind = binders[0]
            new_name = name or f"{variable}{INACCESSIBLE}"
            remaining = [(n, t) for n, t in binders[1:]]
            if new_name != variable:
                body = substitute(body, variable, new_name)
                remaining = [
                    (n, None if t is None else substitute(t, variable, new_name))
                    for n, t in remaining
                ]
            new_target = f"∀ {_binders_text(remaining)}, {body}" if remaining else body
            introduced = goal.with_hypothesis(new_name, kind or "?")
            return dataclasses.replace(introduced, target=normalize(new_target))
        split = connective(target)
        if split is not None and split[0] == "→":
            introduced = goal.with_hypothesis(name or f"a{INACCESSIBLE}", split[1])
            return dataclasses.replace(introduced, target=split[2])
        inner = negated(target)
        if inner is not None:
            introduced = goal.with_hypothesis(name or f"a{INACCESSIBLE}", inner)
            return dataclasses.replace(introduced, target="False")
        raise TacticFailure(f"Tactic `intro` failed: no additional binders\n\n{goal.render()}")

    def _constructor(self, tokens: Sequence[Token], goals: list[Goal]) -> list[Goal]:
        goal, rest = self._main(goals)
        return self._constructor_goals(goal, "constructor") + rest

    @staticmethod
    def _constructor_goals(goal: Goal, tactic: str) -> list[Goal]:
        target = goal.target
        if target == "True":
            return []
        split = connective(target)
        if split is not None and split[0] == "∧":
            return [
                Goal(goal.hypotheses, split[1], "left"),
                Goal(goal.hypotheses, split[2], "right"),
            ]
        if split is not None and split[0] == "↔":
            return [
                Goal(goal.hypotheses, f"{split[1]} → {split[2]}", "mp"),
                Goal(goal.hypotheses, f"{split[2]} → {split[1]}", "mpr"),
            ]
        binder = leading_binder(target)
        if binder is not None and binder[0] == "∃":
            _, binders, body = binder
            variable, kind = binders[0]
            rest = binders[1:]
            body = f"∃ {_binders_text(rest)}, {body}" if rest else body
            return [
                Goal(goal.hypotheses, normalize(substitute(body, variable, "?w")), "h"),
                Goal(goal.hypotheses, kind or "?", "w"),
            ]
        raise TacticFailure(
            f"Tactic `{tactic}` failed: target is not an inductive datatype\n\n{goal.render()}"
        )

    def _exfalso(self, tokens: Sequence[Token], goals: list[Goal]) -> list[Goal]:
        goal, rest = self._main(goals)
        return [dataclasses.replace(goal, target="False"), *rest]

    def _left_right(self, tokens: Sequence[Token], goals: list[Goal]) -> list[Goal]:
        goal, rest = self._main(goals)
        split = connective(goal.target)
        if split is None or split[0] != "∨":
            raise TacticFailure(
                f"Tactic `{tokens[0].text}` failed: the goal is not a disjunction\n\n"
                f"{goal.render()}"
            )
        side = split[1] if tokens[0].text == "left" else split[2]
        return [Goal(goal.hypotheses, side, "h"), *rest]

    def _apply(self, tokens: Sequence[Token], goals: list[Goal]) -> list[Goal]:
        goal, rest = self._main(goals)
        term = tokens[1:]
        if not term:
            raise TacticFailure("expected term")
        head = term[0].text
        if len(term) == 1 and head in ("And.intro", "Iff.intro"):
            return self._constructor_goals(goal, "apply") + rest
        if len(term) == 1 and head in ("Or.inl", "Or.inr"):
            return self._left_right(
                [Token("ident", "left" if head == "Or.inl" else "right", 0, 0)], goals
            )
        if head == "?":
            raise TacticFailure(
                f"Tactic `apply` failed: could not unify the type of `{join_tokens(term)}`"
                f" with the goal\n  {goal.target}\n\n{goal.render()}"
            )
        unknown = self.unknown_head(term, goal)
        if unknown is not None:
            raise TacticFailure(f"Unknown identifier `{unknown.text}`", [unknown])
        hypothesis = goal.hypothesis(head) if len(term) == 1 else None
        if hypothesis is not None:
            return self._apply_hypothesis(head, hypothesis, goal) + rest
        if evaluate_statement(goal.target) is False and not self._contradictory(goal):
            raise TacticFailure(
                f"Tactic `apply` failed: could not unify the conclusion of `{join_tokens(term)}`"
                f" with the goal\n  {goal.target}\n\n{goal.render()}"
            )
        return rest  # a library lemma or declaration: assumed to close the goal

    @staticmethod
    def _apply_hypothesis(name: str, kind: str, goal: Goal) -> list[Goal]:
        premises: list[str] = []
        conclusion = normalize(kind)
        while _canonical(conclusion) != _canonical(goal.target):
            split = connective(conclusion)
            inner = negated(conclusion)
            if split is not None and split[0] == "→":
                premises.append(split[1])
                conclusion = split[2]
            elif inner is not None:
                premises.append(inner)
                conclusion = "False"
            else:
                raise TacticFailure(
                    f"Tactic `apply` failed: could not unify the conclusion of `{name}`\n"
                    f"  {normalize(kind)}\nwith the goal\n  {goal.target}\n\n{goal.render()}"
                )
        # anonymous premises inherit the main goal's case tag, as Lean's `apply` does
        return [Goal(goal.hypotheses, premise, goal.case) for premise in premises]

    def _refine(self, tokens: Sequence[Token], goals: list[Goal]) -> list[Goal]:
        goal, rest = self._main(goals)
        term = list(tokens[1:])
        if not term:
            raise TacticFailure("expected term")
        if not any(t.text == "?_" for t in term):
            self.elaborate_term(term, goal, goal.target)
            return rest
        if term[0].text == "⟨" and matching_close(term, 0) == len(term) - 1:
            parts = split_top_level(term[1:-1], ",")
            split = connective(goal.target)
            if split is not None and split[0] in ("∧", "↔") and len(parts) == 2:
                shaped = self._constructor_goals(goal, "refine")
                return self._fill(parts, shaped, goal) + rest
            binder = leading_binder(goal.target)
            if binder is not None and binder[0] == "∃" and len(parts) == 2:
                variable = binder[1][0][0]
                body = normalize(substitute(binder[2], variable, join_tokens(parts[0])))
                return self._fill(parts[1:], [Goal(goal.hypotheses, body)], goal) + rest
        return [goal, *rest]

    def _fill(self, parts: list[list[Token]], shaped: list[Goal], goal: Goal) -> list[Goal]:
        """Goals for the `?_` parts of an anonymous constructor; other parts are elaborated."""
        new_goals: list[Goal] = []
        for part, target_goal in zip(parts, shaped, strict=False):
            if [t.text for t in part] == ["?_"]:
                new_goals.append(target_goal)
            elif part:
                self.elaborate_term(part, goal, target_goal.target)
        return new_goals

    def _have(self, tokens: Sequence[Token], goals: list[Goal]) -> list[Goal]:
        goal, rest = self._main(goals)
        pieces = split_top_level(tokens[1:], ":=")
        declaration = pieces[0]
        proof = [t for piece in pieces[1:] for t in piece] if len(pieces) > 1 else None
        typed = split_top_level(declaration, ":")
        names = typed[0]
        name = names[0].text if names and names[0].kind == "ident" else "this"
        if len(typed) > 1:
            kind = join_tokens([t for piece in typed[1:] for t in piece])
        elif proof and len(proof) == 1 and goal.hypothesis(proof[0].text) is not None:
            kind = goal.hypothesis(proof[0].text) or "?"
        elif proof is not None:
            kind = "?"
        else:
            raise TacticFailure("expected ':' or ':='")
        claim = Goal(goal.hypotheses, kind)
        if proof is None:
            return [claim, goal.with_hypothesis(name, kind), *rest]
        if not proof:
            raise TacticFailure("expected term")
        if proof[0].text == "by":
            self.run_block(proof[0], proof[1:], claim)
        else:
            self.elaborate_term(proof, goal, kind)
        return [goal.with_hypothesis(name, kind), *rest]

    def _show(self, tokens: Sequence[Token], goals: list[Goal]) -> list[Goal]:
        goal, rest = self._main(goals)
        pieces = split_top_level(tokens[1:], "from")
        if len(pieces) > 1:
            self.elaborate_term(pieces[1], goal, goal.target)
            return rest
        return [dataclasses.replace(goal, target=join_tokens(tokens[1:])), *rest]

    def _by_cases(self, tokens: Sequence[Token], goals: list[Goal]) -> list[Goal]:
        goal, rest = self._main(goals)
        body = tokens[1:]
        name = f"h{INACCESSIBLE}"
        if len(body) > 2 and body[0].kind == "ident" and body[1].text == ":":
            name, body = body[0].text, body[2:]
        if not body:
            raise TacticFailure("expected term")
        proposition = join_tokens(body)
        if goal.hypothesis(proposition) == "Bool":  # a Bool is coerced to `b = true`
            proposition = f"{proposition} = true"
        positive = dataclasses.replace(goal.with_hypothesis(name, proposition), case="pos")
        negative = dataclasses.replace(goal.with_hypothesis(name, negate(proposition)), case="neg")
        return [positive, negative, *rest]

    # --- case analysis and induction ---------------------------------------------------------
    def _cases(self, tokens: Sequence[Token], goals: list[Goal]) -> list[Goal]:
        goal, rest = self._main(goals)
        head = tokens[0].text
        if head == "obtain":
            pieces = split_top_level(tokens[1:], ":=")
            if len(pieces) < 2:
                raise TacticFailure("obtain: expected ':='")
            subject, pattern = pieces[1], pieces[0]
            alternatives: list[list[Token]] = []
        else:
            pieces = split_top_level(tokens[1:], "with")
            subject = pieces[0]
            after = pieces[1] if len(pieces) > 1 else []
            structured = bool(after) and after[0].text == "|"
            alternatives = split_top_level(after, "|")[1:] if structured else []
            pattern = [] if structured else after
        cases = self._case_split(goal, subject)
        if head in ("rcases", "obtain"):
            return [*self._rcases_patterns(cases, pattern), *rest]
        names = [t.text for t in pattern if t.kind == "ident"]
        return self._name_and_run(cases, names, alternatives) + rest

    def _rcases_patterns(
        self, cases: list[tuple[Goal, list[str]]], pattern: Sequence[Token]
    ) -> list[Goal]:
        """`rcases h with ⟨a, b, c⟩ | d`: one `|` alternative per case when they line up."""
        alternatives = split_top_level(pattern, "|")
        if len(alternatives) != len(cases):
            alternatives = [list(pattern)] * len(cases)
        return [
            self._destructure(goal, new, [t.text for t in alternative if t.kind == "ident"])
            for (goal, new), alternative in zip(cases, alternatives, strict=True)
        ]

    def _destructure(self, goal: Goal, new: list[str], names: list[str]) -> Goal:
        """Name the new hypotheses in order, splitting the last one further while names remain."""
        while len(names) > len(new) > 0:
            for old, fresh in zip(new[:-1], names, strict=False):
                goal = self._rename(goal, old, fresh)
            names = names[len(new) - 1 :]
            try:
                deeper = self._case_split(goal, [Token("ident", new[-1], 0, 0)])
            except TacticFailure:
                return self._rename(goal, new[-1], names[0])
            if len(deeper) != 1:
                return self._rename(goal, new[-1], names[0])
            goal, new = deeper[0]
        for old, fresh in zip(new, names, strict=False):
            goal = self._rename(goal, old, fresh)
        return goal

    def _induction(self, tokens: Sequence[Token], goals: list[Goal]) -> list[Goal]:
        goal, rest = self._main(goals)
        pieces = split_top_level(tokens[1:], "with")
        subject = pieces[0]
        after = pieces[1] if len(pieces) > 1 else []
        structured = bool(after) and after[0].text == "|"
        alternatives = split_top_level(after, "|")[1:] if structured else []
        names = [] if structured else [t.text for t in after if t.kind == "ident"]
        variable = join_tokens(subject)
        kind = goal.hypothesis(variable)
        if kind is None or normalize(kind) not in _NAT_TYPES:
            raise TacticFailure(
                f"Tactic `induction` failed: the simulator only inducts on a natural-number "
                f"variable, not `{variable}`\n\n{goal.render()}"
            )
        base = goal.without_hypothesis(variable)
        predecessor, hypothesis = f"{variable}{INACCESSIBLE}", f"a{INACCESSIBLE}"
        zero = self._substituted(base, variable, "0", "zero")
        step = self._substituted(base, variable, predecessor, "succ")
        step = step.with_hypothesis(predecessor, kind)
        step = step.with_hypothesis(
            hypothesis, normalize(substitute(goal.target, variable, predecessor))
        )
        step = dataclasses.replace(
            step, target=normalize(substitute(goal.target, variable, f"{predecessor} + 1"))
        )
        cases = [(zero, []), (step, [predecessor, hypothesis])]
        return self._name_and_run(cases, names, alternatives) + rest

    @staticmethod
    def _substituted(goal: Goal, variable: str, value: str, case: str) -> Goal:
        hypotheses = tuple(
            (n, normalize(substitute(k, variable, value))) for n, k in goal.hypotheses
        )
        target = normalize(substitute(goal.target, variable, value))
        return Goal(hypotheses, target, case)

    def _case_split(self, goal: Goal, subject: Sequence[Token]) -> list[tuple[Goal, list[str]]]:
        """Goals after case analysis on `subject`, each with its new (inaccessible) hypotheses."""
        name = join_tokens(subject)
        kind = goal.hypothesis(name) if len(subject) == 1 else None
        if kind is None:
            if len(subject) == 1 and subject[0].kind == "number":  # `cases 1` generalizes a numeral
                return self._nat_cases(goal, name, "Nat")
            raise TacticFailure(
                f"Tactic `cases` failed: the simulator can only split a hypothesis or a numeral, "
                f"not `{name}`\n\n{goal.render()}"
            )
        kind = normalize(kind)
        base = goal.without_hypothesis(name)
        split = connective(kind)
        hidden = INACCESSIBLE
        if split is not None and split[0] == "∧":
            left, right = f"left{hidden}", f"right{hidden}"
            both = base.with_hypothesis(left, split[1]).with_hypothesis(right, split[2])
            return [(dataclasses.replace(both, case="intro"), [left, right])]
        if split is not None and split[0] == "↔":
            forward, backward = f"mp{hidden}", f"mpr{hidden}"
            both = base.with_hypothesis(forward, f"{split[1]} → {split[2]}")
            both = both.with_hypothesis(backward, f"{split[2]} → {split[1]}")
            return [(dataclasses.replace(both, case="intro"), [forward, backward])]
        if split is not None and split[0] == "∨":
            h = f"h{hidden}"
            return [
                (dataclasses.replace(base.with_hypothesis(h, split[1]), case="inl"), [h]),
                (dataclasses.replace(base.with_hypothesis(h, split[2]), case="inr"), [h]),
            ]
        binder = leading_binder(kind)
        if binder is not None and binder[0] == "∃":
            _, binders, body = binder
            variable, variable_kind = binders[0]
            witness, proof = f"w{hidden}", f"h{hidden}"
            remaining = binders[1:]
            body = f"∃ {_binders_text(remaining)}, {body}" if remaining else body
            opened = base.with_hypothesis(witness, variable_kind or "?")
            opened = opened.with_hypothesis(proof, normalize(substitute(body, variable, witness)))
            return [(dataclasses.replace(opened, case="intro"), [witness, proof])]
        if kind == "False":
            return []
        if kind in _NAT_TYPES:
            return self._nat_cases(goal, name, kind)
        if kind == "Bool":
            return [
                (self._substituted(base, name, "false", "false"), []),
                (self._substituted(base, name, "true", "true"), []),
            ]
        raise TacticFailure(
            f"Tactic `cases` failed: the simulator cannot split `{name} : {kind}`\n\n"
            f"{goal.render()}"
        )

    def _nat_cases(self, goal: Goal, name: str, kind: str) -> list[tuple[Goal, list[str]]]:
        base = goal.without_hypothesis(name)
        predecessor = f"n{INACCESSIBLE}"
        zero = self._substituted(base, name, "0", "zero")
        step = self._substituted(base, name, f"{predecessor} + 1", "succ")
        return [(zero, []), (step.with_hypothesis(predecessor, kind), [predecessor])]

    def _name_and_run(
        self,
        cases: list[tuple[Goal, list[str]]],
        names: list[str],
        alternatives: list[list[Token]],
    ) -> list[Goal]:
        """Rename new hypotheses after `names` (in order), then run structured alternatives."""
        pending = list(names)
        goals: list[Goal] = []
        for goal, new in cases:
            for old in new:
                if not pending:
                    break
                goal = self._rename(goal, old, pending.pop(0))
            goals.append(goal)
        for alternative in alternatives:
            arrow = next((i for i, t in enumerate(alternative) if t.text == "=>"), None)
            if arrow is None or arrow == 0:
                raise TacticFailure("expected '=>' in alternative", alternative[:1])
            tag = alternative[0].text
            index = next((i for i, g in enumerate(goals) if g.case == tag), None)
            if index is None:
                raise TacticFailure(f"Invalid alternative name `{tag}`", alternative[:1])
            target_goal = goals.pop(index)
            new = next(new for g, new in cases if g.case == tag)
            for old, fresh in zip(new, [t.text for t in alternative[1:arrow]], strict=False):
                target_goal = self._rename(target_goal, old, fresh)
            self._focused(alternative[arrow + 1 :], target_goal, alternative)
        return goals

    @staticmethod
    def _rename(goal: Goal, old: str, new: str) -> Goal:
        hypotheses = tuple(
            (new if n == old else n, normalize(substitute(k, old, new))) for n, k in goal.hypotheses
        )
        return Goal(hypotheses, normalize(substitute(goal.target, old, new)), goal.case)

    # --- rewriting and friends ----------------------------------------------------------------
    def _rewrite(self, tokens: Sequence[Token], goals: list[Goal]) -> list[Goal]:
        goal, rest = self._main(goals)
        opening = next((i for i, t in enumerate(tokens) if t.text == "["), None)
        if opening is None:
            raise TacticFailure("expected '['")
        closing = matching_close(tokens, opening)
        rules = [r for r in split_top_level(tokens[opening + 1 : closing], ",") if r]
        after = tokens[closing + 1 :]
        location = after[1].text if len(after) > 1 and after[0].text == "at" else None
        current = goal.target if location is None else goal.hypothesis(location)
        if current is None:
            raise TacticFailure(f"Unknown hypothesis `{location}`")
        used_lemma = False
        for rule in rules:
            backwards = rule[0].text in ("←", "<-")
            term = rule[1:] if backwards else rule
            if not term:
                raise TacticFailure("expected term")
            equation = goal.hypothesis(term[0].text) if len(term) == 1 else None
            if equation is None:
                unknown = self.unknown_head(term, goal)
                if unknown is not None:
                    raise TacticFailure(f"Unknown identifier `{unknown.text}`", [unknown])
                used_lemma = True
                continue
            sides = relation(equation)
            split = connective(equation)
            if sides is not None and sides[0] == "=":
                lhs, rhs = sides[1], sides[2]
            elif split is not None and split[0] == "↔":
                lhs, rhs = split[1], split[2]
            else:
                raise TacticFailure(f"equality or iff proof expected\n  {equation}")
            if backwards:
                lhs, rhs = rhs, lhs
            rewritten = self._replace(current, lhs, rhs)
            if rewritten is None:
                raise TacticFailure(
                    "Tactic `rewrite` failed: Did not find an instance of the pattern in the "
                    f"target expression\n  {lhs}\n\n{goal.render()}"
                )
            current = rewritten
        if location is not None:
            hypotheses = tuple((n, current if n == location else k) for n, k in goal.hypotheses)
            return [Goal(hypotheses, goal.target, goal.case), *rest]
        goal = dataclasses.replace(goal, target=current)
        closes = self._closed_by_rfl(current) or (
            used_lemma
            and self._reflexive_shape(current)
            and evaluate_statement(current) is not False
        )
        if closes:
            return rest
        if tokens[0].text == "rwa":
            return self._assumption(tokens, [goal, *rest])
        return [goal, *rest]

    @staticmethod
    def _replace(text: str, lhs: str, rhs: str) -> str | None:
        if len(tokenize(lhs)) == 1:
            if not any(t.text == lhs for t in tokenize(text)):
                return None
            return normalize(substitute(text, lhs, rhs))
        whole, pattern = normalize(text), normalize(lhs)
        if pattern not in whole:
            return None
        replacement = normalize(rhs)
        if len(tokenize(replacement)) > 1 and whole != pattern:
            replacement = f"({replacement})"
        return normalize(whole.replace(pattern, replacement))

    @staticmethod
    def _closed_by_rfl(target: str) -> bool:
        found = relation(target)
        if found is not None and found[0] in ("=", "≤", "≥"):
            return normalize(found[1]) == normalize(found[2]) or (
                found[0] == "=" and evaluate_statement(target) is True
            )
        split = connective(target)
        return split is not None and split[0] == "↔" and normalize(split[1]) == normalize(split[2])

    def _use(self, tokens: Sequence[Token], goals: list[Goal]) -> list[Goal]:
        goal, rest = self._main(goals)
        for witness in split_top_level(tokens[1:], ","):
            binder = leading_binder(goal.target)
            if binder is None or binder[0] != "∃" or not witness:
                raise TacticFailure(
                    f"Tactic `use` failed: the goal is not an existential\n\n{goal.render()}"
                )
            _, binders, body = binder
            variable = binders[0][0]
            remaining = binders[1:]
            body = f"∃ {_binders_text(remaining)}, {body}" if remaining else body
            goal = dataclasses.replace(
                goal, target=normalize(substitute(body, variable, join_tokens(witness)))
            )
        target = goal.target
        if target == "True" or self._closed_by_rfl(target) or evaluate_statement(target) is True:
            return rest
        if any(_canonical(k) == _canonical(target) for _, k in goal.hypotheses):
            return rest
        return [goal, *rest]

    def _specialize(self, tokens: Sequence[Token], goals: list[Goal]) -> list[Goal]:
        goal, rest = self._main(goals)
        if len(tokens) < 3 or goal.hypothesis(tokens[1].text) is None:
            raise TacticFailure("specialize: expected a hypothesis applied to arguments")
        name = tokens[1].text
        kind = normalize(goal.hypothesis(name) or "")
        for argument in tokens[2:]:
            binder = leading_binder(kind)
            split = connective(kind)
            if binder is not None and binder[0] == "∀":
                _, binders, body = binder
                remaining = binders[1:]
                body = f"∀ {_binders_text(remaining)}, {body}" if remaining else body
                kind = normalize(substitute(body, binders[0][0], argument.text))
            elif split is not None and split[0] == "→":
                kind = split[2]
            else:
                raise TacticFailure(f"specialize: `{name}` takes no further argument")
        hypotheses = tuple((n, kind if n == name else k) for n, k in goal.hypotheses)
        return [Goal(hypotheses, goal.target, goal.case), *rest]

    def _contradiction(self, tokens: Sequence[Token], goals: list[Goal]) -> list[Goal]:
        goal, rest = self._main(goals)
        if self._contradictory(goal):
            return rest
        raise TacticFailure(f"Tactic `contradiction` failed\n\n{goal.render()}")

    def _assumption(self, tokens: Sequence[Token], goals: list[Goal]) -> list[Goal]:
        goal, rest = self._main(goals)
        wanted = _canonical(goal.target)
        if any(_canonical(kind) == wanted for _, kind in goal.hypotheses) or self._contradictory(
            goal
        ):
            return rest
        raise TacticFailure(f"Tactic `assumption` failed\n\n{goal.render()}")

    def _done(self, tokens: Sequence[Token], goals: list[Goal]) -> list[Goal]:
        if goals:
            raise TacticFailure("unsolved goals\n" + render_goals(goals))
        return goals

    # --- combinators ---------------------------------------------------------------------------
    def _all_goals(self, tokens: Sequence[Token], goals: list[Goal]) -> list[Goal]:
        return [g for goal in goals for g in self._run_block_tokens(tokens[1:], [goal])]

    def _any_goals(self, tokens: Sequence[Token], goals: list[Goal]) -> list[Goal]:
        result: list[Goal] = []
        first_failure: TacticFailure | None = None
        succeeded = False
        for goal in goals:
            snapshot = self._snapshot()
            try:
                result.extend(self._run_block_tokens(tokens[1:], [goal]))
                succeeded = True
            except TacticFailure as failure:
                self._restore(snapshot)
                first_failure = first_failure or failure
                result.append(goal)
        if not succeeded:
            raise first_failure or TacticFailure("No goals to be solved")
        return result

    def _try(self, tokens: Sequence[Token], goals: list[Goal]) -> list[Goal]:
        snapshot = self._snapshot()
        try:
            return self._run_block_tokens(tokens[1:], goals)
        except TacticFailure:
            self._restore(snapshot)
            return goals

    def _first(self, tokens: Sequence[Token], goals: list[Goal]) -> list[Goal]:
        last: TacticFailure | None = None
        for alternative in split_top_level(tokens[1:], "|"):
            if not alternative:
                continue
            snapshot = self._snapshot()
            try:
                return self._run_block_tokens(alternative, goals)
            except TacticFailure as failure:
                self._restore(snapshot)
                last = failure
        raise last or TacticFailure("first: no alternatives")

    def _repeat(self, tokens: Sequence[Token], goals: list[Goal]) -> list[Goal]:
        for _ in range(64):
            snapshot = self._snapshot()
            try:
                after = self._run_block_tokens(tokens[1:], goals)
            except TacticFailure:
                self._restore(snapshot)
                break
            if after == goals:
                break
            goals = after
        return goals

    def _focused(self, body: Sequence[Token], goal: Goal, where: Sequence[Token]) -> None:
        """Run `body` on `goal` alone; unsolved goals are logged at `where` and admitted."""
        remaining = self._run_block_tokens(body, [goal])
        if remaining:
            self._log(
                "error", "unsolved goals\n" + render_goals(remaining), where[0].start, where[-1].end
            )
            self.uses_sorry = True

    def _focus(self, tokens: Sequence[Token], goals: list[Goal]) -> list[Goal]:
        goal, rest = self._main(goals)
        self._focused(tokens[1:], goal, tokens)
        return rest

    def _braces(self, tokens: Sequence[Token], goals: list[Goal]) -> list[Goal]:
        goal, rest = self._main(goals)
        closing = matching_close(tokens, 0)
        self._focused(tokens[1:closing], goal, tokens[closing : closing + 1])
        return rest

    def _parenthesized(self, tokens: Sequence[Token], goals: list[Goal]) -> list[Goal]:
        closing = matching_close(tokens, 0)
        return self._run_block_tokens(tokens[1:closing], goals)

    def _case(self, tokens: Sequence[Token], goals: list[Goal]) -> list[Goal]:
        arrow = next((i for i, t in enumerate(tokens) if t.text == "=>"), None)
        if arrow is None:
            raise TacticFailure("expected '=>'")
        if tokens[0].text == "next":
            goal, rest = self._main(goals)
            arguments = [t.text for t in tokens[1:arrow]]
        else:
            if arrow < 2:
                raise TacticFailure("expected a case tag")
            tag = tokens[1].text
            index = next((i for i, g in enumerate(goals) if tag == "_" or g.case == tag), None)
            if index is None:
                raise TacticFailure(f"Case tag `{tag}` not found.")
            goal, rest = goals[index], goals[:index] + goals[index + 1 :]
            arguments = [t.text for t in tokens[2:arrow]]
        hidden = [n for n, _ in goal.hypotheses if n.endswith(INACCESSIBLE)]
        for old, new in zip(hidden[len(hidden) - len(arguments) :], arguments, strict=False):
            goal = self._rename(goal, old, new)
        self._focused(tokens[arrow + 1 :], dataclasses.replace(goal, case=None), tokens)
        return rest
