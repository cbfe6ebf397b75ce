"""Scenario 2: scaling on CPU-bound commands (``cpu_ms`` of real CPU each).

The single-server rate is a leanpool `LeanServer` run sequentially; ideal for k workers is k times
it. Pools are driven closed-loop with 4 requests in flight per worker (enough to keep every
worker busy, few enough that latency means service time plus a short wait). LeanInteract's
`LeanServerPool` gets the same closed loop from a thread per in-flight request (its `run` blocks).
Every variant's throughput is the best of `repeats` interleaved runs (the machine is shared).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from bench.measure import Run, best_of, drive_sequential, drive_window
from bench.scenarios import Context
from bench.systems import leaninteract_config, leanpool_config, warm_leanpool

IN_FLIGHT_PER_WORKER = 4


def _commands(base: int, count: int, cpu_ms: int) -> list[str]:
    return [f"#eval {base + i} --!sim cpu_ms={cpu_ms}" for i in range(count)]


def run(ctx: Context) -> dict[str, Any]:
    from leanpool import Command, LeanPool, LeanServer

    sizes = ctx.sizes
    n, cpu_ms, workers = sizes.cpu_requests, sizes.cpu_ms, ctx.workers
    config = leanpool_config()
    repeats: dict[str, list[Run]] = {}

    def measure(name: str, measured: Run) -> None:
        repeats.setdefault(name, []).append(measured)

    with contextlib.ExitStack() as stack:
        server = stack.enter_context(LeanServer(config))
        server.run(Command(cmd="#eval 0"))
        pools = {}
        for k in sorted({1, workers}):
            pools[k] = stack.enter_context(LeanPool(config, max_workers=k, progress=False))
            warm_leanpool(pools[k], k)
        li_server: Any = None
        li_submit: Callable[[str], Future[Any]] | None = None
        if ctx.with_leaninteract:
            from lean_interact import Command as LICommand
            from lean_interact import LeanServer as LILeanServer
            from lean_interact import LeanServerPool

            li_config = leaninteract_config(ctx.workdir, "plain")
            li_server = stack.enter_context(LILeanServer(li_config))
            li_server.run(LICommand(cmd="#eval 0"))
            li_pool = stack.enter_context(LeanServerPool(li_config, num_workers=workers))
            threads = stack.enter_context(
                ThreadPoolExecutor(IN_FLIGHT_PER_WORKER * workers, thread_name_prefix="li-client")
            )

            def li_submit(text: str) -> Future[Any]:
                return threads.submit(li_pool.run, LICommand(cmd=text))

        for repeat in range(sizes.repeats):
            ctx.log(f"s2: {n} x cpu_ms={cpu_ms}, repetition {repeat + 1} of {sizes.repeats}")
            base = repeat * 10_000_000
            measure(
                "leanpool_LeanServer_single",
                drive_sequential(
                    Run("leanpool_LeanServer_single"),
                    lambda c: server.run(Command(cmd=c)),
                    _commands(base, n, cpu_ms),
                    ctx.deadline_s,
                ),
            )
            for k, pool in pools.items():
                measure(
                    f"leanpool_LeanPool_{k}w",
                    drive_window(
                        Run(f"leanpool_LeanPool_{k}w"),
                        pool.submit,
                        _commands(base + k * 1_000_000, n, cpu_ms),
                        IN_FLIGHT_PER_WORKER * k,
                        ctx.deadline_s,
                    ),
                )
            if li_server is not None and li_submit is not None:
                measure(
                    "leaninteract_LeanServer_single",
                    drive_sequential(
                        Run("leaninteract_LeanServer_single"),
                        lambda c: li_server.run(LICommand(cmd=c)),
                        _commands(base, n, cpu_ms),
                        ctx.deadline_s,
                    ),
                )
                measure(
                    f"leaninteract_LeanServerPool_{workers}w",
                    drive_window(
                        Run(f"leaninteract_LeanServerPool_{workers}w"),
                        li_submit,
                        _commands(base, n, cpu_ms),
                        IN_FLIGHT_PER_WORKER * workers,
                        ctx.deadline_s,
                    ),
                )
    runs = [best_of(measured) for measured in repeats.values()]

    by_name = {r.name: r for r in runs}
    single = by_name["leanpool_LeanServer_single"]
    single_rate = single.throughput or 0.0
    li_single = by_name.get("leaninteract_LeanServer_single")
    li_single_rate = li_single.throughput if li_single else None

    def efficiency(name: str, workers: int, base: float | None) -> float | None:
        rate = by_name[name].throughput if name in by_name else None
        return round(rate / (workers * base), 4) if rate and base else None

    return {
        "description": f"distinct CPU-bound commands (cpu_ms={cpu_ms}); ideal = k x single rate",
        "variants": [r.as_dict() for r in runs],
        "single_server_rps": round(single_rate, 2),
        "ideal_rps": {f"{k}w": round(k * single_rate, 2) for k in sorted({1, workers})},
        "scaling_efficiency": {
            "leanpool_1w": efficiency("leanpool_LeanPool_1w", 1, single_rate),
            f"leanpool_{workers}w": efficiency(
                f"leanpool_LeanPool_{workers}w", workers, single_rate
            ),
            f"leaninteract_{workers}w_vs_leanpool_single": efficiency(
                f"leaninteract_LeanServerPool_{workers}w", workers, single_rate
            ),
            f"leaninteract_{workers}w_vs_leaninteract_single": efficiency(
                f"leaninteract_LeanServerPool_{workers}w", workers, li_single_rate
            ),
        },
        "_plot": {
            "throughput": {r.name: r.throughput for r in runs},
            "ideal": {f"{k}w": k * single_rate for k in sorted({1, workers})},
        },
    }
