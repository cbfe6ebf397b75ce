"""Scenario 5: memory over a long run of leaking commands (``--!sim rss_mb=N``: each command
keeps N MB for the life of its REPL process).

Two runs of the same commands on 2 workers: without any limit, and with ``memory_limit_mb``
(a REPL near it is restarted between requests) plus ``max_tasks_per_worker`` (staggered worker
recycling). A sampler records, every 100 ms, the RSS of all of the bench's descendant processes
(pool workers and REPLs) and of the largest REPL.
"""

from __future__ import annotations

from typing import Any

from bench.measure import Run, Sampler, descendants_rss_mb, drive_window
from bench.scenarios import Context
from bench.systems import leanpool_config, warm_leanpool

IN_FLIGHT_PER_WORKER = 4


def run(ctx: Context) -> dict[str, Any]:
    from leanpool import LeanPool

    sizes = ctx.sizes
    n = sizes.leak_requests
    config = leanpool_config()
    variants: list[dict[str, Any]] = []
    series: dict[str, list[tuple[float, dict[str, float]]]] = {}
    settings: dict[str, dict[str, Any]] = {
        "unlimited": {},
        "limited": {
            "memory_limit_mb": sizes.leak_memory_limit_mb,
            "max_tasks_per_worker": sizes.leak_max_tasks,
        },
    }
    for label, options in settings.items():
        ctx.log(f"s5: {n} commands leaking {sizes.leak_mb} MB each, {label} {options}")
        commands = [
            f"#eval {i} --!sim cpu_ms={sizes.leak_cpu_ms} rss_mb={sizes.leak_mb}" for i in range(n)
        ]
        with LeanPool(config, max_workers=ctx.workers, progress=False, **options) as pool:
            warm_leanpool(pool, ctx.workers)
            with Sampler(descendants_rss_mb, 0.1) as sampler:
                measured = drive_window(
                    Run(f"leanpool_{label}"),
                    pool.submit,
                    commands,
                    IN_FLIGHT_PER_WORKER * ctx.workers,
                    ctx.deadline_s,
                )
            stats = pool.stats()
        totals = [sample["total_mb"] for _t, sample in sampler.samples]
        largest = [sample["largest_repl_mb"] for _t, sample in sampler.samples]
        measured.notes.update(
            {
                "settings": options,
                "peak_total_rss_mb": round(max(totals), 1) if totals else None,
                "final_total_rss_mb": round(totals[-1], 1) if totals else None,
                "peak_repl_rss_mb": round(max(largest), 1) if largest else None,
                "repl_restarts": stats.restarts,
                "worker_recycles": stats.recycles,
                "samples": len(totals),
            }
        )
        variants.append(measured.as_dict())
        series[label] = sampler.samples
    return {
        "description": (
            f"{n} commands each leaking {sizes.leak_mb} MB (cpu_ms={sizes.leak_cpu_ms}), "
            f"{ctx.workers} workers; RSS of all workers and REPLs sampled every 100 ms"
        ),
        "variants": variants,
        "_plot": {"rss": series},
    }
