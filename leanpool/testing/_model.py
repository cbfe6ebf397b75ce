"""The toy Lean state: goals, declarations, environments and proof states, and their pickles.

Everything is immutable, like the REPL's stored states: a command or a tactic step builds new
values and older ids stay usable, which is what branching search relies on.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

__all__ = [
    "Binder",
    "Declaration",
    "Environment",
    "Goal",
    "ProofState",
    "read_pickle",
    "write_pickle",
]

INACCESSIBLE = "✝"


@dataclass(frozen=True)
class Goal:
    """One goal as the REPL prints it: optional `case` tag, hypotheses, then `⊢ target`."""

    hypotheses: tuple[tuple[str, str], ...]
    target: str
    case: str | None = None

    def render(self) -> str:
        lines = [f"case {self.case}"] if self.case else []
        names: list[str] = []
        for index, (name, kind) in enumerate(self.hypotheses):
            names.append(name)
            following = self.hypotheses[index + 1][1] if index + 1 < len(self.hypotheses) else None
            if following != kind:  # Lean groups consecutive hypotheses of one type: `x y : Nat`
                lines.append(f"{' '.join(names)} : {kind}")
                names = []
        lines.append(f"⊢ {self.target}")
        return "\n".join(lines)

    def hypothesis(self, name: str) -> str | None:
        for hyp_name, kind in reversed(self.hypotheses):
            if hyp_name == name:
                return kind
        return None

    def with_hypothesis(self, name: str, kind: str) -> Goal:
        """Add `name : kind`; an older hypothesis of that name becomes inaccessible (`h✝`)."""
        renamed = tuple((f"{n}{INACCESSIBLE}" if n == name else n, k) for n, k in self.hypotheses)
        return dataclasses.replace(self, hypotheses=(*renamed, (name, kind)))

    def without_hypothesis(self, name: str) -> Goal:
        return dataclasses.replace(
            self, hypotheses=tuple(h for h in self.hypotheses if h[0] != name)
        )


def render_goals(goals: tuple[Goal, ...] | list[Goal]) -> str:
    """Several goals in one message, separated by a blank line (as in `unsolved goals`)."""
    return "\n\n".join(goal.render() for goal in goals)


@dataclass(frozen=True)
class Binder:
    name: str
    type: str
    bracket: str = "("  # "(", "{", "[" or "⦃"


_CLOSING = {"(": ")", "{": "}", "[": "]", "⦃": "⦄"}


def render_binders(binders: tuple[Binder, ...]) -> str:
    """`(a b : Nat) {x : Int}` as `#check` shows a signature's binders."""
    groups: list[str] = []
    index = 0
    while index < len(binders):
        first = binders[index]
        names = [first.name]
        index += 1
        while (
            index < len(binders)
            and binders[index].type == first.type
            and binders[index].bracket == first.bracket
        ):
            names.append(binders[index].name)
            index += 1
        groups.append(f"{first.bracket}{' '.join(names)} : {first.type}{_CLOSING[first.bracket]}")
    return " ".join(groups)


@dataclass(frozen=True)
class Declaration:
    name: str
    binders: tuple[Binder, ...] = ()
    type: str | None = None
    value: str | None = None  # a definition's body, so `#eval` can use it
    axioms: tuple[str, ...] = ()  # what `#print axioms` lists: its own closure, in order

    def signature(self) -> str:
        parts = [self.name]
        if self.binders:
            parts.append(render_binders(self.binders))
        text = " ".join(parts)
        return f"{text} : {self.type}" if self.type else text

    def closed_type(self) -> str:
        """The type as a closed term, binders as `∀`: what `#check @name` shows after the name."""
        kind = self.type or "?"
        if not self.binders:
            return kind
        return f"∀ {render_binders(self.binders)}, {kind}"


@dataclass(frozen=True)
class Environment:
    """What a command's `env` id stands for."""

    imports: tuple[str, ...] = ()
    declarations: tuple[Declaration, ...] = ()
    opens: tuple[str, ...] = ()
    variables: tuple[Binder, ...] = ()
    namespace: tuple[str, ...] = ()

    @cached_property
    def _by_name(self) -> dict[str, Declaration]:
        return {d.name: d for d in self.declarations}

    def resolve(self, name: str) -> Declaration | None:
        """The declaration `name` denotes, through the current namespace and open namespaces."""
        prefixes = [".".join(self.namespace[:i]) for i in range(len(self.namespace), 0, -1)]
        for prefix in [*prefixes, *self.opens, ""]:
            found = self._by_name.get(f"{prefix}.{name}" if prefix else name)
            if found is not None:
                return found
        return None

    def qualified(self, name: str) -> str:
        return ".".join((*self.namespace, name))

    def declare(self, declaration: Declaration) -> Environment:
        return dataclasses.replace(self, declarations=(*self.declarations, declaration))


@dataclass(frozen=True)
class ProofState:
    """What a `proofState` id stands for."""

    goals: tuple[Goal, ...]
    environment: Environment = field(default_factory=Environment)
    uses_sorry: bool = False
    # Opened by a `sorry` inside a tactic step: its root is the enclosing proof, which still has
    # holes when this branch is finished (REPL/Main.lean: ``createProofStepReponse`` gives its
    # sorries the enclosing proof's root goals, which ``getProofStatus`` judges).
    detached: bool = False

    def status(self) -> str:
        if self.goals:
            return "Incomplete: open goals remain"
        if self.detached:
            return "Incomplete: contains metavariable(s)"
        if self.uses_sorry:
            return "Incomplete: contains sorry"
        return "Completed"


# --- pickles: the simulator's own format (JSON), written where the request says ----------------
_PICKLE_TAG = "simrepl-pickle"


def _environment_from(data: dict[str, Any]) -> Environment:
    return Environment(
        imports=tuple(data["imports"]),
        declarations=tuple(
            Declaration(
                name=d["name"],
                binders=tuple(Binder(**b) for b in d["binders"]),
                type=d["type"],
                value=d["value"],
                axioms=tuple(d.get("axioms", ())),
            )
            for d in data["declarations"]
        ),
        opens=tuple(data["opens"]),
        variables=tuple(Binder(**b) for b in data["variables"]),
        namespace=tuple(data["namespace"]),
    )


def _goal_from(data: dict[str, Any]) -> Goal:
    return Goal(
        hypotheses=tuple((name, kind) for name, kind in data["hypotheses"]),
        target=data["target"],
        case=data["case"],
    )


def write_pickle(path: str, value: Environment | ProofState) -> None:
    """Write `value`; OSError propagates (the REPL treats a failed write as fatal)."""
    kind = "environment" if isinstance(value, Environment) else "proofState"
    payload = {_PICKLE_TAG: 1, "kind": kind, "value": dataclasses.asdict(value)}
    Path(path).write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")


def read_pickle(path: str) -> Environment | ProofState:
    """Read a pickle written by `write_pickle`; OSError or ValueError when it is not one."""
    payload = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(payload, dict) or payload.get(_PICKLE_TAG) != 1:
        raise ValueError(f"{path}: not a simrepl pickle")
    value = payload["value"]
    if payload["kind"] == "environment":
        return _environment_from(value)
    return ProofState(
        goals=tuple(_goal_from(g) for g in value["goals"]),
        environment=_environment_from(value["environment"]),
        uses_sorry=value["uses_sorry"],
        detached=value["detached"],
    )
