"""`leanpool selftest`: whether leanpool and this machine's Lean agree.

One module per responsibility: `_target` (options, setup, real Lean or the simulator), one module
per check (`_answers`, `_protocol` with `_compare`, `_agreement`, `_verdicts`, `_sandbox_check`,
`_memory_check`, `_pool_check`), `_run` (the order, isolation), `_report` (results, JSON). The
command itself is `leanpool._cli._selftest`; tests/test_real_lean.py runs the same checks as
tests (`make test-lean`).
"""

from __future__ import annotations

from leanpool._selftest._report import CheckResult, Report
from leanpool._selftest._run import CHECKS, run_check, run_selftest
from leanpool._selftest._target import SelftestOptions, Target, is_simulator_command, set_up

__all__ = [
    "CHECKS",
    "CheckResult",
    "Report",
    "SelftestOptions",
    "Target",
    "is_simulator_command",
    "run_check",
    "run_selftest",
    "set_up",
]
