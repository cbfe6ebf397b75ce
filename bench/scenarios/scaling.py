"""Scenario 2: scaling on CPU-bound commands (``cpu_ms`` of real CPU each).

The single-server rate is a leanpool `LeanServer` run sequentially; ideal for k workers is k times
it. Pools are driven closed-loop with 4 requests in flight per worker (enough to keep every
worker busy, few enough that latency means service time plus a short wait). LeanInteract's
`LeanServerPool` gets the same closed loop from a thread per in-flight request (its `run` blocks).
Every variant's throughput is the best of `repeats` interleaved runs (the machine is shared).

Then the same commands on `workers` workers with the Ray backend (``backend="ray"``), against a
local Ray the scenario starts (``ray.init(address="local", num_cpus=workers)``: never another
process's cluster) and shuts down before it returns. Ray's own processes (GCS, raylet, agents)
run beside the pools while it is up, so the loky pool is measured again then, interleaved with
the Ray pool: `ray_vs_loky_throughput` divides the two, same commands, same background. Ray is
started only after the measurements above, so that its processes do not slow them. Without Ray
installed (or when it cannot start) that part is skipped and `ray_skipped` says why.
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from bench.measure import Run, best_of, drive_sequential, drive_window
from bench.scenarios import Context
from bench.systems import leaninteract_config, leanpool_config, warm_leanpool

IN_FLIGHT_PER_WORKER = 4
RAY = "leanpool_LeanPool_{k}w_ray"  # the Ray backend's variant
LOKY_BESIDE_RAY = "leanpool_LeanPool_{k}w_loky_ray_running"  # loky, interleaved with it


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
        ray_skipped, ray_repeats = _ray_runs(ctx, config, pools[workers])
        repeats.update(ray_repeats)
    runs = [best_of(measured) for measured in repeats.values()]

    by_name = {r.name: r for r in runs}
    single = by_name["leanpool_LeanServer_single"]
    single_rate = single.throughput or 0.0
    li_single = by_name.get("leaninteract_LeanServer_single")
    li_single_rate = li_single.throughput if li_single else None

    def efficiency(name: str, workers: int, base: float | None) -> float | None:
        rate = by_name[name].throughput if name in by_name else None
        return round(rate / (workers * base), 4) if rate and base else None

    ray_rate = by_name[RAY.format(k=workers)].throughput if not ray_skipped else None
    loky_beside = by_name.get(LOKY_BESIDE_RAY.format(k=workers))
    loky_alone = by_name.get(f"leanpool_LeanPool_{workers}w")

    def over(rate: float | None, base: Run | None) -> float | None:
        return round(rate / base.throughput, 4) if rate and base and base.throughput else None

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
        "ray_skipped": ray_skipped,
        "ray_vs_loky_throughput": over(ray_rate, loky_beside),
        "ray_vs_loky_throughput_loky_alone": over(ray_rate, loky_alone),
        "_plot": {
            "throughput": {r.name: r.throughput for r in runs},
            "ideal": {f"{k}w": k * single_rate for k in sorted({1, workers})},
        },
    }


def _ray_runs(ctx: Context, config: Any, loky_pool: Any) -> tuple[str | None, dict[str, list[Run]]]:
    """The Ray backend's runs and loky's beside them (the module's docstring): why they were
    skipped (None if they were not), and the runs by variant (none when skipped). Ray is shut
    down before this returns, whatever happened."""
    from leanpool import LeanPool

    sizes, workers = ctx.sizes, ctx.workers
    n, cpu_ms = sizes.cpu_requests, sizes.cpu_ms
    repeats: dict[str, list[Run]] = {}
    try:
        import ray
    except ImportError as exc:
        why = f"Ray is not installed (pip install 'leanpool[ray]'): {exc}"
        ctx.log(f"s2: Ray backend skipped: {why}")
        return why, {}
    try:
        # "local": a new instance of our own, even where another process runs one
        ray.init(address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False)
        with LeanPool(config, max_workers=workers, backend="ray", progress=False) as ray_pool:
            warm_leanpool(ray_pool, workers)
            warm_leanpool(loky_pool, workers)
            variants = [
                (0, RAY.format(k=workers), ray_pool),
                (1_000_000, LOKY_BESIDE_RAY.format(k=workers), loky_pool),
            ]
            for repeat in range(sizes.repeats):
                ctx.log(f"s2: Ray backend and loky, {workers} workers, repetition {repeat + 1}")
                base = 50_000_000 + repeat * 10_000_000  # commands distinct from all above
                for offset, name, pool in variants[:: 1 if repeat % 2 == 0 else -1]:
                    repeats.setdefault(name, []).append(
                        drive_window(
                            Run(name),
                            pool.submit,
                            _commands(base + offset, n, cpu_ms),
                            IN_FLIGHT_PER_WORKER * workers,
                            ctx.deadline_s,
                        )
                    )
    except Exception as exc:  # the loky measurements above still stand
        ctx.log(f"s2: the Ray backend's run failed:\n{traceback.format_exc()}")
        return f"the Ray backend's run failed: {type(exc).__name__}: {exc}", {}
    finally:
        with contextlib.suppress(Exception):
            ray.shutdown()
    return None, repeats
