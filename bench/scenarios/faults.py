"""Scenario 4: faults.

* Throughput and latency of ``cpu_ms`` commands with a share of them crashing their REPL
  (``--!sim crash``, after paying their CPU time), against the same commands without crashes;
  closed loop, 4 in flight per worker; each variant's best of `fault_repeats` interleaved runs.
* Recovery after a hang: a ``--!sim hang`` request with a timeout; the clock starts when its
  `LeanTimeoutError` reaches the caller and stops when the worker answers again (trivial requests
  sent one after another from then on until one succeeds; 1 worker, so it is the same worker).
* Recovery after SIGKILL: of the worker process, and separately of its REPL process; the clock
  starts at the kill and stops when the worker answers again (same loop); requests that failed in
  between are listed by kind.
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import statistics
import time
from typing import Any

from bench.measure import Run, best_of, classify, drive_window
from bench.scenarios import Context
from bench.systems import leanpool_config, warm_leanpool

IN_FLIGHT_PER_WORKER = 4


def _commands(base: int, count: int, cpu_ms: int, crashing: set[int]) -> list[str]:
    return [
        f"#eval {base + i} --!sim cpu_ms={cpu_ms}{' crash' if i in crashing else ''}"
        for i in range(count)
    ]


def _summary(values: list[float]) -> dict[str, Any]:
    ms = [round(v * 1000, 2) for v in values]
    return {
        "samples_ms": ms,
        "median_ms": round(statistics.median(ms), 2) if ms else None,
        "max_ms": max(ms) if ms else None,
    }


def run(ctx: Context) -> dict[str, Any]:
    from leanpool import LeanPool

    sizes = ctx.sizes
    n = sizes.fault_requests
    rng = random.Random(ctx.seed)
    crash_count = max(1, round(n * sizes.crash_rate))
    crashing = set(rng.sample(range(n), crash_count))
    config = leanpool_config()
    repeats: dict[str, list[Run]] = {}
    for repeat in range(sizes.fault_repeats):
        for label, faults in (("without_faults", set()), ("with_crashes", crashing)):
            ctx.log(
                f"s4: {n} x cpu_ms={sizes.fault_cpu_ms}, {label} ({len(faults)} crashes), "
                f"repetition {repeat + 1} of {sizes.fault_repeats}"
            )
            with LeanPool(config, max_workers=ctx.workers, progress=False) as pool:
                warm_leanpool(pool, ctx.workers)
                base = (2 * repeat + (1 if faults else 0)) * 1_000_000
                measured = drive_window(
                    Run(f"leanpool_{ctx.workers}w_{label}"),
                    pool.submit,
                    _commands(base, n, sizes.fault_cpu_ms, faults),
                    IN_FLIGHT_PER_WORKER * ctx.workers,
                    ctx.deadline_s,
                )
                measured.notes["injected_crashes"] = len(faults)
                measured.notes["repl_restarts"] = pool.stats().restarts
            repeats.setdefault(label, []).append(measured)
    runs = [best_of(measured) for measured in repeats.values()]
    clean, faulty = runs
    retained = (
        round(faulty.throughput / clean.throughput, 4)
        if faulty.throughput and clean.throughput
        else None
    )
    p99_clean, p99_faulty = (r.as_dict()["latency_ms"]["p99"] for r in runs)  # milliseconds or None

    ctx.log("s4: recovery after a hang's timeout, and after SIGKILL")
    recovery = _recovery(ctx, config, LeanPool)
    return {
        "description": (
            f"{n} commands of cpu_ms={sizes.fault_cpu_ms}, {crash_count} of them crash their "
            f"REPL ({crash_count / n:.1%}), {ctx.workers} workers"
        ),
        "variants": [r.as_dict() for r in runs],
        "throughput_retained": retained,
        "p99_ratio_with_vs_without": (
            round(p99_faulty / p99_clean, 3) if p99_faulty and p99_clean else None
        ),
        "recovery": recovery,
        "_plot": {"throughput": {r.name: r.throughput for r in runs}},
    }


def _recovery(ctx: Context, config: Any, pool_class: Any) -> dict[str, Any]:
    repeats = ctx.sizes.recovery_repeats
    timeout = ctx.sizes.hang_timeout_s
    after_hang: list[float] = []
    timeout_overshoot: list[float] = []
    hang_outcomes: list[str] = []
    after_kill: dict[str, list[float]] = {"pid": [], "repl_pid": []}
    failed_after_kill: dict[str, list[str]] = {"pid": [], "repl_pid": []}
    fresh = itertools.count(10_000)  # distinct texts: a repeated one would come from the cache

    def until_served(pool: Any, failures: list[str]) -> None:
        """Send trivial requests until one is answered (failures are recorded, at most 20)."""
        while True:
            try:
                pool.run(f"#eval {next(fresh)}")
                return
            except Exception as exc:
                failures.append(classify(exc))
                if len(failures) >= 20:
                    return

    with pool_class(config, max_workers=1, progress=False) as pool:
        pool.run("#eval 0")
        for k in range(repeats):
            started = time.perf_counter()
            hung = pool.submit(f"#eval {k} --!sim hang", timeout=timeout)
            try:
                hung.result()
                hang_outcomes.append("ok")
            except Exception as exc:
                hang_outcomes.append(classify(exc))
            timed_out = time.perf_counter()
            timeout_overshoot.append(timed_out - started - timeout)
            until_served(pool, hang_outcomes)
            after_hang.append(time.perf_counter() - timed_out)

        for _ in range(repeats):
            for which, samples in after_kill.items():
                pool.run(f"#eval {next(fresh)} --!sim sleep_ms=1")  # fresh stats: its pids
                pid = _worker_info(pool, which)
                if pid is None:
                    continue
                killed = time.perf_counter()
                os.kill(pid, signal.SIGKILL)
                until_served(pool, failed_after_kill[which])
                samples.append(time.perf_counter() - killed)
        stats = pool.stats()
    return {
        "hang_timeout_s": timeout,
        "hang_request_outcomes": hang_outcomes,
        "timeout_overshoot": _summary(timeout_overshoot),
        "after_hang_timeout": _summary(after_hang),
        "after_worker_sigkill": _summary(after_kill["pid"]),
        "after_repl_sigkill": _summary(after_kill["repl_pid"]),
        "failed_requests_after_worker_sigkill": failed_after_kill["pid"],
        "failed_requests_after_repl_sigkill": failed_after_kill["repl_pid"],
        "pool_restarts": stats.restarts,
        "pool_recycles": stats.recycles,
    }


def _worker_info(pool: Any, key: str) -> int | None:
    workers = pool.stats().workers
    value = workers[0].get(key) if workers else None
    return value if isinstance(value, int) else None
