"""Verdicts on real Lean: a table of cheats and honest proofs, through `LeanPool.verify`, with the
statuses and reasons the verdict policy promises.

`CASES` is the table; tests/test_verify.py runs it on the simulator, so the simulator and real
Lean are held to the same expectations. Without Mathlib, ``norm_num`` (a Mathlib
tactic) is replaced by core Lean's ``decide``, which gives the same verdicts on these closed
statements; with Mathlib every case runs after ``import Mathlib``. Native computation is named
by the release: ``Lean.ofReduceBool`` and ``Lean.trustCompiler`` up to Lean 4.28, one auxiliary
``..._native...`` axiom per computation since 4.29 (lean4 PR #12217), so a native case agrees
when its reasons are all ``native:`` ones of its release's form.
"""

from __future__ import annotations

import time
from typing import Any

from leanpool._selftest._report import CheckResult
from leanpool._selftest._target import SelftestOptions, Target
from leanpool._versions import LeanVersion, parse_lean_version

__all__ = ["CASES", "STATEMENT", "case_code", "check_verdicts", "reasons_agree"]

STATEMENT = "theorem add_comm' (a b : Nat) : a + b = b + a := by sorry"

# (id, code, formal statement or None, status, reasons)
CASES: list[tuple[str, str, str | None, str, tuple[str, ...]]] = [
    ("honest", "theorem t1 : 2 + 2 = 4 := by norm_num", None, "passed", ()),
    ("honest_term", "theorem t2 (a : Nat) : a = a := rfl", None, "passed", ()),
    (
        "custom_axiom",
        "axiom cheat : False\ntheorem t3 : 2 + 2 = 5 := cheat.elim",
        None,
        "rejected",
        ("forbidden_command:axiom",),
    ),
    (
        "skip_kernel",
        "set_option debug.skipKernelTC true in\ntheorem t4 : 2 + 2 = 4 := by norm_num",
        None,
        "rejected",
        ("forbidden_option:debug.skipKernelTC",),
    ),
    (
        "native",
        "theorem t5 : 2 + 2 = 4 := by native_decide",
        None,
        "rejected",
        ("native:t5._native.native_decide.ax_1_1",),
    ),
    (
        "native_flag",
        "theorem t6 : 10 < 20 := by decide +native",
        None,
        "rejected",
        ("native:t6._native.native_decide.ax_1_1",),
    ),
    ("sorry", "theorem t7 : 1 = 1 := by sorry", None, "rejected", ("sorry",)),
    (
        "sorry_in_a_helper",
        "theorem helper : 1 = 1 := sorry\ntheorem t8 : 1 = 1 := helper",
        None,
        "rejected",
        ("sorry",),
    ),
    (
        "print_hijack",
        'macro "#print" "axioms" _x:ident : command => `(#check 1)\ntheorem t9 : 1 = 1 := rfl',
        None,
        "rejected",
        ("forbidden_command:macro",),
    ),
    ("lean_error", "theorem t10 : 2 + 2 = 5 := by norm_num", None, "lean_error", ("error",)),
    (
        "statement_ok",
        "theorem add_comm' (x y : Nat) : x + y = y + x := by omega",
        STATEMENT,
        "passed",
        (),
    ),
    (
        "extra_hypothesis",
        "theorem add_comm' (a b : Nat) (h : a = b) : a + b = b + a := by omega",
        STATEMENT,
        "rejected",
        ("statement_mismatch",),
    ),
    (
        "weakened",
        "theorem add_comm' (a b : Nat) : a + b = a + b := by rfl",
        STATEMENT,
        "rejected",
        ("statement_mismatch",),
    ),
    (
        "renamed",
        "theorem my_comm (a b : Nat) : a + b = b + a := by omega",
        STATEMENT,
        "rejected",
        ("statement_missing",),
    ),
]
_SEPARATE_NATIVE_AXIOMS = LeanVersion(4, 29, 0, 1)  # lean4 PR #12217 (first in v4.29.0-rc1)


def case_code(code: str, mathlib: bool) -> str:
    """The case as run: ``norm_num`` needs Mathlib; without it core's ``decide`` stands in."""
    return code if mathlib else code.replace("by norm_num", "by decide")


def reasons_agree(expected: tuple[str, ...], got: tuple[str, ...], version: str | None) -> bool:
    if not any(reason.startswith("native:") for reason in expected):
        return tuple(got) == tuple(expected)
    if not got or not all(reason.startswith("native:") for reason in got):
        return False
    parsed = parse_lean_version(version) if version else None
    if parsed is not None and parsed < _SEPARATE_NATIVE_AXIOMS:
        return set(got) <= {"native:Lean.ofReduceBool", "native:Lean.trustCompiler"}
    return all("_native" in reason for reason in got)


def check_verdicts(target: Target, options: SelftestOptions) -> CheckResult:
    from leanpool._pool import LeanPool

    started = time.monotonic()
    header = "import Mathlib" if target.mathlib else None
    rows: list[dict[str, Any]] = []
    with LeanPool(target.config, options.workers, timeout=options.timeout, progress=False) as pool:
        futures = [
            (
                case,
                pool.submit_verification(
                    case_code(case[1], target.mathlib), formal_statement=case[2], header=header
                ),
            )
            for case in CASES
        ]
        for (name, code, _statement, status, reasons), future in futures:
            verification = future.result()
            agrees = verification.status == status and reasons_agree(
                reasons, verification.reasons, target.lean_version
            )
            rows.append(
                {
                    "case": name,
                    "code": case_code(code, target.mathlib),
                    "expected": [status, list(reasons)],
                    "got": [verification.status, list(verification.reasons)],
                    "axioms": verification.axioms,
                    "agrees": agrees,
                    "seconds": round(verification.seconds, 3),
                }
            )
    wrong = [row for row in rows if not row["agrees"]]
    summary = f"{len(rows) - len(wrong)}/{len(rows)} cheats and honest proofs judged as expected"
    if header:
        summary += " (after import Mathlib)"
    else:
        summary += " (core Lean: norm_num replaced by decide)"
    if wrong:
        summary += "; wrong: " + ", ".join(
            f"{row['case']} got {row['got'][0]} {tuple(row['got'][1])}" for row in wrong[:4]
        )
    return CheckResult(
        "verdicts",
        "fail" if wrong else "ok",
        summary,
        {"header": header, "cases": rows},
        time.monotonic() - started,
        target.simulated,
    )
