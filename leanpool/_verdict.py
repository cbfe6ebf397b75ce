"""What `passed` means: one verdict policy for every way leanpool judges a submission.

Lean accepting a command is not a proof of the statement you meant. Code written by a model can
elaborate without an error or a `sorry` and still prove nothing: it can add `axiom cheat : False`
and use it, prove a different statement than the dataset's, switch the kernel's check off
(`set_option debug.skipKernelTC true`), trust compiled code (`native_decide`), or change what the
checking commands themselves do (a macro named `#print`). A false `passed` is a wrong reward that
a learning model exploits (an injected axiom did exactly that in an RL reward: PrimeIntellect
`verifiers` issue #2177). So the policy passes a submission only when all of these hold:

1. **Lean accepted it**: no error message (else ``lean_error``).
2. **Nothing turns checking off, or runs code at elaboration time** (found in the text, before
   anything runs): the options in `FORBIDDEN_OPTIONS`, and the commands in
   `FORBIDDEN_COMMANDS` (custom axioms, syntax extensions and metaprograms: they could add
   declarations the kernel never saw, or rewrite what the checks below print); ``rejected`` with
   ``forbidden_option:NAME`` / ``forbidden_command:NAME``. ``allow_metaprograms=True`` lets the
   metaprogramming commands through; ``axiom`` declarations pass only when `allowed_axioms`
   names axioms beyond the standard three (check 4 then holds every theorem to that list).
3. **No `sorry`** unless allowed (``rejected``, ``sorry``).
4. **Only allowed axioms**, asked of Lean itself with ``#print axioms`` for every theorem the
   submission declares, in its own environment: default `propext`, `Classical.choice`,
   `Quot.sound`; `sorryAx` is ``sorry``, native computation (``Lean.ofReduceBool``,
   ``Lean.trustCompiler``, and since Lean 4.29 the ``..._native...`` auxiliary axioms) is
   ``native:NAME`` unless ``allow_native``, anything else ``axiom:NAME``.
5. **The statement is the reference's**, when one is given: the submission declares a theorem of
   the reference's name whose type is the reference's type, elaborated before the submission (in
   the trusted header's environment) and compared by Lean (``with_reducible rfl`` between the two
   types: bound names and notation do not matter, a changed statement does):
   ``statement_missing`` / ``statement_mismatch``.
6. In tactic mode, the proof's status is ``Completed`` (``incomplete`` otherwise).

With a ``heartbeat_budget``, ``set_option maxHeartbeats 0`` (and, with ``lower_heartbeats``,
values above the budget) is rewritten to the budget before Lean runs (`leanpool._heartbeats`): a
runaway is then ``lean_error`` with the reasons ``error`` and ``max_heartbeats``, not a timeout.

Which level of the Lean reference manual's escalation ("Validating a Lean Proof") this gives:
checks 1 and 3 are level 1 (a clean build), check 4 is level 2 (``#print axioms``). Level 3 and
the gold standard (lean4checker replaying declarations through the kernel, Comparator) need the
submission as a module file and tools outside the REPL; check 2 closes the holes level 2 leaves
open inside a REPL (metaprograms that bypass the kernel or forge the checks' output) by refusing
them. Statuses: ``passed``, ``lean_error`` (Lean refused it), ``rejected`` (Lean accepted it, the
policy did not), ``fault`` (no verdict: a timeout, a crash, a reference statement that does not
elaborate).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from leanpool._lean_text import code_only

Status = Literal["passed", "lean_error", "rejected", "fault"]
STATUSES: tuple[Status, ...] = ("passed", "lean_error", "rejected", "fault")
STANDARD_AXIOMS = ("propext", "Classical.choice", "Quot.sound")

# Options that switch a check off (set with `set_option NAME ...` or `set_option NAME ... in`).
FORBIDDEN_OPTIONS = {
    # the kernel does not type-check declarations: an ill-typed proof is accepted
    "debug.skipKernelTC": "the kernel skips type checking",
}
# Commands that add axioms, extend the syntax or run code while elaborating. Each could make the
# checks below meaningless: a declaration added by a metaprogram never meets the kernel, and a
# macro or elaborator can change what `#print axioms` or the statement check print.
CUSTOM_AXIOM_COMMANDS = frozenset({"axiom"})
METAPROGRAM_COMMANDS = frozenset(
    {
        "macro", "macro_rules", "syntax", "elab", "elab_rules", "notation", "infix", "infixl",
        "infixr", "prefix", "postfix", "declare_syntax_cat", "run_cmd", "run_elab", "run_meta",
        "#eval", "#exit", "initialize", "builtin_initialize",
    }
)  # fmt: skip
# Attributes that install code (an elaborator, a macro, a replacement of compiled code).
METAPROGRAM_ATTRIBUTES = frozenset(
    {"command_elab", "term_elab", "tactic", "macro", "extern", "implemented_by", "csimp", "init"}
)
FORBIDDEN_COMMANDS = CUSTOM_AXIOM_COMMANDS | METAPROGRAM_COMMANDS

_WORD = re.compile(r"(?<![\w.'!?#])(#?[A-Za-z_][\w.'!?]*)")
_ATTRIBUTE = re.compile(r"@\[([^\]]*)\]")
_SET_OPTION = re.compile(r"\bset_option\s+([\w.]+)")
_NATIVE_TACTIC = re.compile(r"\bnative_decide\b|\bdecide\s*\+\s*native\b|\bbv_decide\b")


@dataclass(frozen=True)
class VerdictPolicy:
    """What a submission must satisfy to pass (see the module docstring)."""

    allow_sorry: bool = False
    allowed_axioms: tuple[str, ...] = STANDARD_AXIOMS
    allow_native: bool = False
    allow_metaprograms: bool = False
    check_axioms: bool = True  # ask Lean (one extra command); False: errors and sorry only
    # Thousands of heartbeats (Lean's unit for `maxHeartbeats`; its default is 200000): every
    # `set_option maxHeartbeats 0` (no limit) of a submission is set to it before Lean runs, so
    # a runaway fails fast as a Lean error (`leanpool._heartbeats`). None: the text as written.
    heartbeat_budget: int | None = None
    lower_heartbeats: bool = False  # also lower values above the budget to it

    def __post_init__(self) -> None:
        budget = self.heartbeat_budget
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int)):
            raise TypeError(f"heartbeat_budget must be an int or None, got {budget!r}")
        if budget is not None and budget < 1:
            raise ValueError(
                "heartbeat_budget must be at least 1 (thousand heartbeats); 0 would mean no "
                f"limit, None leaves the text as written; got {budget}"
            )

    def forbidden(self, code: str) -> list[str]:
        """Reasons the text alone refuses: options that switch checks off, commands that add
        axioms or run code while elaborating (comments and strings are not looked at)."""
        text = strip_comments_and_strings(code)
        reasons: list[str] = []

        def add(reason: str) -> None:
            if reason not in reasons:
                reasons.append(reason)

        for option in _SET_OPTION.findall(text):
            if option in FORBIDDEN_OPTIONS:
                add(f"forbidden_option:{option}")
        for name in FORBIDDEN_OPTIONS:  # also when built or set another way
            if name in text:
                add(f"forbidden_option:{name}")
        # Custom axioms are refused unless the caller allowed some beyond the standard ones;
        # then `#print axioms` holds every theorem to exactly that list.
        custom = set(self.allowed_axioms) - set(STANDARD_AXIOMS)
        commands = (frozenset() if custom else CUSTOM_AXIOM_COMMANDS) | (
            frozenset() if self.allow_metaprograms else METAPROGRAM_COMMANDS
        )
        for line in text.splitlines():
            for word in _WORD.findall(line):
                if word in commands:
                    add(f"forbidden_command:{word}")
        if not self.allow_metaprograms:
            for attributes in _ATTRIBUTE.findall(text):
                for attribute in re.split(r"[,\s]+", attributes):
                    if attribute in METAPROGRAM_ATTRIBUTES:
                        add(f"forbidden_command:@[{attribute}]")
        return reasons

    def native_in_tactics(self, tactic: str) -> list[str]:
        """Reasons a tactic step (no declaration to ask `#print axioms` about) is refused."""
        if self.allow_native:
            return []
        found = _NATIVE_TACTIC.findall(strip_comments_and_strings(tactic))
        names = dict.fromkeys("".join(name.split()) for name in found)
        return [f"native:{name}" for name in names]

    def axiom_reasons(self, axioms: list[str]) -> list[str]:
        """Reasons a theorem's axioms refuse it (empty: all allowed)."""
        reasons: list[str] = []
        for name in axioms:
            if name in self.allowed_axioms:
                continue
            if name == "sorryAx":
                reason = "sorry" if not self.allow_sorry else ""
            elif is_native_axiom(name):
                reason = "" if self.allow_native else f"native:{name}"
            else:
                reason = f"axiom:{name}"
            if reason and reason not in reasons:
                reasons.append(reason)
        return reasons


def strip_comments_and_strings(code: str) -> str:
    """`code` with comments, string and character literals blanked out, newlines kept: what is
    left is what Lean elaborates as code (`_lean_text.code_only`)."""
    return code_only(code)


def is_native_axiom(name: str) -> bool:
    """Axioms that trust compiled code (lean4 PR #12217 renamed them in Lean 4.29)."""
    return name in ("Lean.ofReduceBool", "Lean.trustCompiler") or "._native." in name


@dataclass(frozen=True)
class Verdict:
    """A status and the machine-readable reasons behind it (empty when it passed)."""

    status: Status
    reasons: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def __str__(self) -> str:
        return self.status + (f" ({', '.join(self.reasons)})" if self.reasons else "")


def parse_axioms_message(data: str) -> tuple[str, list[str]] | None:
    """(name, axioms) from `#print axioms`' info message, in either of Lean's two forms."""
    found = re.fullmatch(r"'(.+)' depends on axioms: \[(.*)\]", data.strip(), re.DOTALL)
    if found is not None:
        names = [part.strip() for part in found.group(2).split(",") if part.strip()]
        return found.group(1), names
    found = re.fullmatch(r"'(.+)' does not depend on any axioms", data.strip())
    if found is not None:
        return found.group(1), []
    return None
