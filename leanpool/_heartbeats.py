"""A heartbeat budget: `set_option maxHeartbeats 0` rewritten to a finite limit before Lean runs.

``set_option maxHeartbeats 0`` switches Lean's deterministic resource limit off, and a proof that
runs away then runs until the wall-clock timeout kills its REPL (a restart), sometimes after
taking many GB. With a budget, every such setting in the submission (a command on its own, the
``set_option maxHeartbeats 0 in`` prefix of a declaration, and ``set_option maxHeartbeats 0 in``
before a tactic) is rewritten to the budget, and optionally every value above the budget too: a
runaway then fails fast, as a Lean error, and the REPL lives on.

The option, in Lean 4 core (``src/Lean/CoreM.lean``, ``register_builtin_option maxHeartbeats``):
"maximum amount of heartbeats per command. A heartbeat is number of (small) memory allocations
(in thousands), 0 means no limit"; default 200000 (``Core.getMaxHeartbeats`` multiplies the value
by 1000). A budget is given in the option's own unit: thousands of heartbeats.

Only the value is replaced, as Lean reads it: comments, string and character literals are never
touched, nor is ``synthInstance.maxHeartbeats`` (a separate limit, per type-class problem, that
cannot be switched off for a whole command's elaboration: its 0 would still be bounded by the
command's ``maxHeartbeats``, which the budget bounds). Every other position in the text is kept:
lines never move, and only the rest of a rewritten line after the value shifts, by the difference
in length between the two values (`original_column` maps a column back).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from leanpool._lean_text import code_only

__all__ = ["DEFAULT_MAX_HEARTBEATS", "HeartbeatRewrite", "apply_heartbeat_budget"]

# Lean's default `maxHeartbeats` (src/Lean/CoreM.lean), in thousands of heartbeats.
DEFAULT_MAX_HEARTBEATS = 200_000

_NAME_END = r"(?![\w.'!?])"
# `set_option` takes a numeric literal (decimal, 0x, 0b, 0o) for a Nat option; the name may be
# written with guillemets.
_SETTING = re.compile(
    r"(?<![\w.'!?])set_option\s+(?:maxHeartbeats|«maxHeartbeats»)\s+"
    r"(?P<value>0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|[0-9][0-9_]*)" + _NAME_END
)
_IN = re.compile(r"\s+in" + _NAME_END)


@dataclass(frozen=True)
class HeartbeatRewrite:
    """One `set_option maxHeartbeats` value that was replaced by the budget."""

    line: int  # 1-based line of the value
    column: int  # 0-based column (code points) of the value in the original text
    original: int  # the value written, in thousands of heartbeats (0: no limit)
    written: str  # the value as written (``0``, ``0x0``, ...)
    budget: int  # what it became
    scoped: bool  # ``set_option ... in`` (for what follows) rather than a command

    @property
    def delta(self) -> int:
        """How far the rest of its line moved right (negative: left)."""
        return len(str(self.budget)) - len(self.written)

    def to_dict(self) -> dict[str, object]:
        return {
            "line": self.line,
            "column": self.column,
            "original": self.original,
            "budget": self.budget,
            "scoped": self.scoped,
        }


def apply_heartbeat_budget(
    code: str, budget: int, *, lower: bool = False
) -> tuple[str, tuple[HeartbeatRewrite, ...]]:
    """(`code` with every ``set_option maxHeartbeats 0`` set to `budget`, what was rewritten).

    `budget` is in Lean's unit for the option, thousands of heartbeats (Lean's default is
    200000). With `lower`, values above the budget are lowered to it as well. Comments and
    literals are left alone; see the module docstring for what happens to positions.
    """
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValueError(
            f"heartbeat_budget must be a positive whole number of thousands of heartbeats "
            f"(Lean's default is {DEFAULT_MAX_HEARTBEATS}), got {budget!r}"
        )
    masked = code_only(code)
    rewrites: list[HeartbeatRewrite] = []
    pieces: list[str] = []
    done = 0
    line_starts = [0] + [m.end() for m in re.finditer("\n", code)]
    line = 0
    for match in _SETTING.finditer(masked):
        written = match.group("value")
        value = _nat(written)
        if value is None or not (value == 0 or (lower and value > budget)):
            continue
        start, end = match.span("value")
        while line + 1 < len(line_starts) and line_starts[line + 1] <= start:
            line += 1
        scoped = _IN.match(masked, end) is not None
        rewrites.append(
            HeartbeatRewrite(line + 1, start - line_starts[line], value, written, budget, scoped)
        )
        pieces += [code[done:start], str(budget)]
        done = end
    if not rewrites:
        return code, ()
    pieces.append(code[done:])
    return "".join(pieces), tuple(rewrites)


def original_column(rewrites: Sequence[HeartbeatRewrite], line: int, column: int) -> int:
    """The column in the original text of `column` on `line` of the rewritten text (a column
    inside a rewritten value maps into the original value)."""
    shift = 0
    for rewrite in sorted((r for r in rewrites if r.line == line), key=lambda r: r.column):
        start = rewrite.column + shift  # where the budget starts in the rewritten text
        end = start + len(str(rewrite.budget))
        if column < start:
            break
        if column < end:
            return rewrite.column + min(column - start, len(rewrite.written))
        shift += rewrite.delta
    return column - shift


def _nat(written: str) -> int | None:
    digits = written.replace("_", "")
    try:
        if len(digits) > 1 and digits[0] == "0" and digits[1] in "xXbBoO":
            return int(digits, 0)
        return int(digits, 10)
    except ValueError:
        return None
