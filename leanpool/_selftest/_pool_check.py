"""A short pool run: every request gets exactly one result, its own, even when a REPL is killed
in the middle; and when the pool is shut down no REPL is left running (no orphans)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from typing import Any

from leanpool._selftest._answers import info_texts
from leanpool._selftest._report import CheckResult
from leanpool._selftest._target import SelftestOptions, Target

__all__ = ["check_pool", "repl_processes"]


def repl_processes(argv0: str) -> list[Any]:
    """This process's descendants that are REPLs started from `argv0` (or the simulator)."""
    import psutil

    found: list[Any] = []
    for proc in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            command = " ".join(proc.cmdline())
            if argv0 in command or "leanpool.testing.simrepl" in command:
                found.append(proc)
    return found


def _values(results: list[Any], offset: int) -> tuple[int, list[str]]:
    """(right answers, problems) for requests ``#eval offset+i`` -> ``1000*(offset+i)+7``."""
    right = 0
    problems: list[str] = []
    for i, result in enumerate(results):
        expected = str(1000 * (offset + i) + 7)
        if isinstance(result, BaseException):
            problems.append(f"request {offset + i}: {type(result).__name__}: {result}"[:300])
        elif expected in info_texts(result):
            right += 1
        else:
            problems.append(f"request {offset + i}: answered {info_texts(result)}, not {expected}")
    return right, problems


def check_pool(target: Target, options: SelftestOptions) -> CheckResult:
    from leanpool._pool import LeanPool

    started = time.monotonic()
    count = 8 if options.quick else 24
    argv0 = target.config.launch.argv[0]
    before = {proc.pid for proc in repl_processes(argv0)}
    details: dict[str, Any] = {"requests": 2 * count, "workers": options.workers}
    problems: list[str] = []
    killed = None
    with LeanPool(target.config, options.workers, timeout=options.timeout, progress=False) as pool:
        first = list(
            pool.map([f"#eval 1000 * {i} + 7" for i in range(count)], return_exceptions=True)
        )
        right, wrong = _values(first, 0)
        problems += wrong
        ours = [p for p in repl_processes(argv0) if p.pid not in before]
        if ours:
            killed = ours[0].pid
            with contextlib.suppress(ProcessLookupError):
                os.kill(killed, signal.SIGKILL)
        second = list(
            pool.map(
                [f"#eval 1000 * {i} + 7" for i in range(count, 2 * count)],
                return_exceptions=True,
            )
        )
        right2, wrong2 = _values(second, count)
        # The killed REPL was idle: the next request on it gets a fresh REPL, or (at most) that
        # one request fails with the crash, never silently and never twice.
        crashes = [w for w in wrong2 if "Crash" in w]
        problems += [w for w in wrong2 if "Crash" not in w] + crashes[1:]
        stats = pool.stats()
    details.update(
        {
            "right": right + right2,
            "crash_results": len(crashes),
            "killed_repl": killed,
            "submitted": stats.submitted,
            "done": stats.done,
            "restarts": dict(stats.restarts),
            "failed": dict(stats.failed),
        }
    )
    if stats.done != stats.submitted:
        problems.append(f"{stats.submitted} requests submitted, {stats.done} done")
    if killed is None:
        problems.append("no REPL process of the pool was found to kill")
    deadline = time.monotonic() + 10.0
    left = [p for p in repl_processes(argv0) if p.pid not in before]
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = [p for p in repl_processes(argv0) if p.pid not in before]
    if left:
        details["orphans"] = [p.pid for p in left]
        problems.append(f"{len(left)} REPL process(es) still running after shutdown")
        for proc in left:
            with contextlib.suppress(Exception):
                proc.kill()
    seconds = time.monotonic() - started
    if problems:
        details["problems"] = problems
        return CheckResult(
            "pool", "fail", "; ".join(problems[:3]), details, seconds, target.simulated
        )
    summary = (
        f"{2 * count} requests on {options.workers} workers, a REPL SIGKILLed between: "
        f"each got one result, its own ({right + right2} right"
        + (f", {len(crashes)} crash error" if crashes else "")
        + "); no REPL left after shutdown"
    )
    return CheckResult("pool", "ok", summary, details, seconds, target.simulated)
