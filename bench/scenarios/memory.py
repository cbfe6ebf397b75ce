"""Scenario 5: memory over a long run of leaking commands (``--!sim rss_mb=N``: each command
keeps N MB for the life of its REPL process).

Three runs of the same commands on 2 workers: without any limit; with ``memory_limit_mb`` (a
REPL near it is restarted between requests) plus ``max_tasks_per_worker`` (staggered worker
recycling); and with the same memory as one pool-wide ``memory_budget_mb`` (workers x the
per-REPL limit), whose peak total the report sets against the budget. A sampler records, every
100 ms, the memory of all of the bench's descendant processes (pool workers and REPLs) and of
the largest REPL, three ways (`measure.descendants_memory_mb`): RSS, PSS (shared pages counted
once) and private memory (resident minus shared). PSS costs the kernel a walk of the page
tables, leaked heap included (a sample with it takes about 25 ms on 2 cores once the REPLs of
the quick run hold 2 GB each): it is read on every sample while that costs at most 20 ms, else
less often (`MemoryProbe`; `pss_samples` counts the samples that read it, `pss_sample_ms` their
cost).
"""

from __future__ import annotations

from typing import Any

from bench.measure import (
    MemoryProbe,
    Run,
    Sampler,
    drive_window,
    memory_summary,
    probe_cost,
)
from bench.scenarios import Context
from bench.systems import leanpool_config, warm_leanpool

IN_FLIGHT_PER_WORKER = 4


def run(ctx: Context) -> dict[str, Any]:
    from leanpool import LeanPool

    sizes = ctx.sizes
    n = sizes.leak_requests
    config = leanpool_config()
    variants: list[dict[str, Any]] = []
    series: dict[str, list[tuple[float, dict[str, Any]]]] = {}
    budget_mb = sizes.leak_memory_limit_mb * ctx.workers
    settings: dict[str, dict[str, Any]] = {
        "unlimited": {"memory_budget_mb": None},
        "limited": {
            "memory_limit_mb": sizes.leak_memory_limit_mb,
            "max_tasks_per_worker": sizes.leak_max_tasks,
            "memory_budget_mb": None,
        },
        # the same memory for the whole pool, as one budget instead of a limit per REPL
        "budget": {"memory_budget_mb": budget_mb},
    }
    for label, options in settings.items():
        ctx.log(f"s5: {n} commands leaking {sizes.leak_mb} MB each, {label} {options}")
        commands = [
            f"#eval {i} --!sim cpu_ms={sizes.leak_cpu_ms} rss_mb={sizes.leak_mb}" for i in range(n)
        ]
        with LeanPool(config, max_workers=ctx.workers, progress=False, **options) as pool:
            warm_leanpool(pool, ctx.workers)
            probe = MemoryProbe()
            with Sampler(probe, 0.1) as sampler:
                measured = drive_window(
                    Run(f"leanpool_{label}"),
                    pool.submit,
                    commands,
                    IN_FLIGHT_PER_WORKER * ctx.workers,
                    ctx.deadline_s,
                )
            stats = pool.stats()
        measured.notes.update(
            {
                "settings": options,
                **memory_summary(sampler.samples),
                "pss_sample_ms": probe_cost(probe),
                "repl_restarts": stats.restarts,
                "worker_recycles": stats.recycles,
            }
        )
        if options.get("memory_budget_mb"):
            measured.notes["budget_mb"] = options["memory_budget_mb"]
            measured.notes["budget_peak_estimate_mb"] = stats.memory.get("budget_peak_mb")
        variants.append(measured.as_dict())
        series[label] = sampler.samples
    budgeted = next((v for v in variants if v.get("budget_mb")), {})
    peak = budgeted.get("peak_total_pss_mb")
    return {
        # peak total PSS of workers and REPLs over the pool's memory budget (<= 1: kept)
        "budget_peak_vs_budget": round(peak / budget_mb, 3) if peak else None,
        "description": (
            f"{n} commands each leaking {sizes.leak_mb} MB (cpu_ms={sizes.leak_cpu_ms}), "
            f"{ctx.workers} workers; RSS, PSS and private memory of all workers and REPLs sampled "
            "every 100 ms"
        ),
        "variants": variants,
        "_plot": {"rss": series},
    }
