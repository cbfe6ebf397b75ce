"""Scenario 6: the parent's memory while many trivial requests stream through
`LeanPool.imap_unordered` from a generator (nothing is materialised up front).

The parent's RSS is sampled every 100 ms; bounded memory means it levels off instead of growing
with the number of requests.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from bench.measure import Run, Sampler, own_rss_mb
from bench.scenarios import Context
from bench.systems import leanpool_config, warm_leanpool


def _requests(count: int) -> Iterator[str]:
    for i in range(count):
        yield f"#eval {i}"


def run(ctx: Context) -> dict[str, Any]:
    from leanpool import LeanPool

    n = ctx.sizes.stream_requests
    ctx.log(f"s6: streaming {n} trivial requests through imap_unordered, {ctx.workers} workers")
    measured = Run(f"leanpool_{ctx.workers}w_imap_unordered")
    with LeanPool(leanpool_config(), max_workers=ctx.workers, progress=False) as pool:
        warm_leanpool(pool, ctx.workers)
        rss_before = own_rss_mb()
        measured.submitted = n
        with Sampler(own_rss_mb, 0.1) as sampler:
            begin = time.perf_counter()
            for result in pool.imap_unordered(_requests(n), return_exceptions=True):
                measured.add(result)
            measured.seconds = time.perf_counter() - begin
        max_in_flight = pool.max_in_flight
    values = [mb for _t, mb in sampler.samples]
    halfway = [mb for t, mb in sampler.samples if t >= measured.seconds / 2]
    measured.notes.update(
        {
            "parent_rss_before_mb": round(rss_before, 1),
            "parent_rss_peak_mb": round(max(values), 1) if values else None,
            "parent_rss_end_mb": round(values[-1], 1) if values else None,
            "parent_rss_growth_mb": round(max(values) - rss_before, 1) if values else None,
            "parent_rss_growth_second_half_mb": (
                round(max(halfway) - min(halfway), 1) if halfway else None
            ),
            "max_in_flight": max_in_flight,
        }
    )
    return {
        "description": f"{n} trivial requests from a generator through imap_unordered",
        "requests": n,
        "variants": [measured.as_dict()],
        "_plot": {"parent_rss": sampler.samples},
    }
