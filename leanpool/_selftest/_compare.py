"""Comparing live REPL responses with recorded ones, ignoring only what legitimately varies.

Always ignored (the REPL's output format makes no promise about them):

* layout: key order, line breaks and indentation of Lean's JSON printer (responses are compared
  as JSON values, not as text);
* the order of a tactic's ``usedConstants``: the REPL collects them in a hash set
  (REPL/Lean/InfoTree.lean), so their order is an artefact.

Ignored only when the recording comes from another REPL release than the one running (a
``--repl-tests`` directory; never for the REPL checkout's own test files, which were recorded
by that very release):

* message texts Lean reworded between releases: ``'sorry'`` and `` `sorry` `` (v4.28.0-rc1),
  ``unknown identifier 'x'`` and ``Unknown identifier `x` `` (v4.23.0-rc2);
* fields that appeared in later REPL releases and are absent on one side: ``proofStatus``
  (v4.19.0), ``usedConstants`` (v4.14.0).

Ids are compared exactly: env and proof-state ids are deterministic counters within a session
(the lengths of the REPL's state arrays, REPL/Main.lean), and the upstream REPL reports no
timings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from leanpool._leanjson import loads_deep

__all__ = [
    "ALWAYS_IGNORED",
    "CROSS_VERSION_IGNORED",
    "Comparison",
    "compare_sessions",
    "split_responses",
]

ALWAYS_IGNORED = (
    "layout of the JSON (key order, line breaks, indentation)",
    "order of usedConstants (a hash-set artefact)",
)
CROSS_VERSION_IGNORED = (
    "'sorry' vs `sorry` in messages (reworded in Lean v4.28.0-rc1)",
    "unknown identifier 'x' vs Unknown identifier `x` (reworded in Lean v4.23.0-rc2)",
    "proofStatus absent on one side (REPL field since v4.19.0)",
    "usedConstants absent on one side (REPL field since v4.14.0)",
)
_LATER_FIELDS = ("proofStatus", "usedConstants")
_REWORDINGS = (
    (re.compile(r"'sorry'"), "`sorry`"),
    (re.compile(r"unknown identifier '([^'\n]*)'"), r"Unknown identifier `\1`"),
)
_SHOWN = 160  # characters of a differing value shown in a difference


@dataclass
class Comparison:
    """Differences (empty: the sessions agree) and which tolerated variations occurred."""

    differences: list[str] = field(default_factory=list)
    tolerated: list[str] = field(default_factory=list)

    @property
    def agrees(self) -> bool:
        return not self.differences


def split_responses(text: str) -> list[Any]:
    """A recorded stdout (``NAME.expected.out``) as JSON values, one per response.

    Lean's printer escapes line breaks inside strings and puts a token after each of its own,
    so the only blank line in a response is the one that ends it. A block that is not JSON is
    kept as its text (a REPL that died mid-answer).
    """
    blocks: list[str] = []
    current: list[str] = []
    for line in text.split("\n"):
        if line.strip(" \t\r") == "":
            if current:
                blocks.append("\n".join(current))
                current = []
        else:
            current.append(line)
    if current:
        blocks.append("\n".join(current))
    values: list[Any] = []
    for block in blocks:
        try:
            values.append(loads_deep(block))
        except ValueError:
            values.append(block)
    return values


def compare_sessions(
    expected: list[Any], live: list[Any], *, cross_version: bool = False, limit: int = 50
) -> Comparison:
    """Compare the responses of one session, in order; at most `limit` differences listed."""
    comparison = Comparison()
    tolerated: set[str] = set()
    for index, (want, got) in enumerate(zip(expected, live, strict=False)):
        want_n = _normalize(want, cross_version, tolerated)
        got_n = _normalize(got, cross_version, tolerated)
        if cross_version:
            want_n, got_n = _drop_one_sided(want_n, got_n, tolerated)
        _diff(want_n, got_n, f"response {index + 1}", comparison.differences, limit)
    if len(expected) != len(live):
        comparison.differences.append(
            f"{len(expected)} responses recorded, {len(live)} received live"
        )
    comparison.tolerated = sorted(tolerated)
    return comparison


def _normalize(value: Any, cross_version: bool, tolerated: set[str]) -> Any:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key == "usedConstants" and isinstance(item, list):
                ordered = sorted(item, key=str)
                if ordered != item:
                    tolerated.add(ALWAYS_IGNORED[1])
                out[key] = ordered
            else:
                out[key] = _normalize(item, cross_version, tolerated)
        return out
    if isinstance(value, list):
        return [_normalize(item, cross_version, tolerated) for item in value]
    if isinstance(value, str) and cross_version:
        reworded = value
        for pattern, replacement in _REWORDINGS:
            reworded = pattern.sub(replacement, reworded)
        if reworded != value:
            tolerated.add("message texts reworded between Lean releases")
        return reworded
    return value


def _drop_one_sided(want: Any, got: Any, tolerated: set[str]) -> tuple[Any, Any]:
    """Remove fields of later REPL releases that only one side has, at every level."""
    if isinstance(want, dict) and isinstance(got, dict):
        want, got = dict(want), dict(got)
        for key in _LATER_FIELDS:
            if (key in want) != (key in got):
                want.pop(key, None)
                got.pop(key, None)
                tolerated.add(f"{key} absent on one side (a field of later REPL releases)")
        for key in set(want) & set(got):
            want[key], got[key] = _drop_one_sided(want[key], got[key], tolerated)
        return want, got
    if isinstance(want, list) and isinstance(got, list):
        pairs = [_drop_one_sided(a, b, tolerated) for a, b in zip(want, got, strict=False)]
        return (
            [a for a, _ in pairs] + want[len(pairs) :],
            [b for _, b in pairs] + got[len(pairs) :],
        )
    return want, got


def _diff(want: Any, got: Any, where: str, out: list[str], limit: int) -> None:
    if len(out) >= limit or want == got:
        return
    if isinstance(want, dict) and isinstance(got, dict):
        for key in _ordered_keys(want, got):
            if key not in got:
                out.append(f"{where}.{key}: recorded {_show(want[key])}, missing live")
            elif key not in want:
                out.append(f"{where}.{key}: not recorded, live {_show(got[key])}")
            else:
                _diff(want[key], got[key], f"{where}.{key}", out, limit)
            if len(out) >= limit:
                return
        return
    if isinstance(want, list) and isinstance(got, list):
        for index, (a, b) in enumerate(zip(want, got, strict=False)):
            _diff(a, b, f"{where}[{index}]", out, limit)
        if len(want) != len(got) and len(out) < limit:
            out.append(f"{where}: {len(want)} entries recorded, {len(got)} live")
        return
    out.append(f"{where}: recorded {_show(want)}, live {_show(got)}")


def _ordered_keys(want: dict[str, Any], got: dict[str, Any]) -> Iterable[str]:
    return [*want, *(key for key in got if key not in want)]


def _show(value: Any) -> str:
    import json

    try:
        text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    except RecursionError:  # an info tree deeper than json.dumps goes
        text = f"<a {type(value).__name__} nested too deep to show>"
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"
