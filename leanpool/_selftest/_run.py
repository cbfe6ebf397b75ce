"""Running the checks in order, each isolated: one that raises is a failed row, not a crash."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import asdict

from leanpool._selftest._agreement import check_agreement
from leanpool._selftest._answers import check_answers
from leanpool._selftest._checkpoints import check_checkpoints
from leanpool._selftest._memory_check import check_memory
from leanpool._selftest._pool_check import check_pool
from leanpool._selftest._protocol import check_protocol
from leanpool._selftest._report import CheckResult, Report
from leanpool._selftest._sandbox_check import check_sandbox
from leanpool._selftest._target import SelftestOptions, Target, set_up
from leanpool._selftest._verdicts import check_verdicts

__all__ = ["CHECKS", "run_check", "run_selftest"]

Check = Callable[[Target, SelftestOptions], CheckResult]
# In the order they run: cheap and basic first; a REPL that does not answer stops the rest.
CHECKS: tuple[tuple[str, Check], ...] = (
    ("answers", check_answers),
    ("protocol", check_protocol),
    ("simulator agreement", check_agreement),
    ("verdicts", check_verdicts),
    ("sandbox", check_sandbox),
    ("checkpoints", check_checkpoints),
    ("memory", check_memory),
    ("pool", check_pool),
)


def run_check(name: str, check: Check, target: Target, options: SelftestOptions) -> CheckResult:
    started = time.monotonic()
    try:
        return check(target, options)
    except Exception as exc:
        return CheckResult(
            name,
            "fail",
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300],
            {"error": str(exc), "traceback": traceback.format_exc()},
            time.monotonic() - started,
            target.simulated,
        )


def run_selftest(
    options: SelftestOptions, on_result: Callable[[CheckResult], None] | None = None
) -> Report:
    """Set up, then run every check; `on_result` sees each result as it comes."""
    report = Report(options=asdict(options))

    def record(result: CheckResult) -> None:
        report.add(result)
        if on_result is not None:
            on_result(result)

    setup, target = set_up(options)
    record(setup)
    if target is None:
        for name, _check in CHECKS:
            record(CheckResult(name, "skip", "setup failed", simulated=options.sim))
        return report
    report.target = target.describe()
    stop_reason = ""
    for name, check in CHECKS:
        if stop_reason:
            record(CheckResult(name, "skip", stop_reason, simulated=target.simulated))
            continue
        result = run_check(name, check, target, options)
        record(result)
        if name == "answers" and result.status == "fail":
            stop_reason = "the REPL does not answer (see answers)"
    return report
