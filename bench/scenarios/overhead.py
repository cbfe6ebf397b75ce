"""Scenario 1: client overhead on trivial commands.

Every client sends distinct ``#eval N`` commands to one simulator process. Sequential variants
send one request at a time (the latency an idle caller sees); the pool is also measured the way
a pool is used, streaming all requests through `imap_unordered` (its throughput). The headline
ratio is pool-with-1-worker streaming throughput / raw pipe loop throughput; both are the best
of `repeats` interleaved runs of `throughput_requests` requests (the machine is shared).
"""

from __future__ import annotations

import time
from typing import Any

from bench.measure import Run, best_of, drive_sequential
from bench.raw_pipe import RawPipe
from bench.scenarios import Context
from bench.systems import leaninteract_config, leanpool_config


def _commands(base: int, count: int) -> list[str]:
    return [f"#eval {base + i}" for i in range(count)]  # distinct: no deduplication applies


def run(ctx: Context) -> dict[str, Any]:
    from leanpool import AutoLeanServer, Command, LeanPool, LeanServer

    sizes = ctx.sizes
    n, n_throughput = sizes.trivial_requests, sizes.throughput_requests
    config = leanpool_config()
    runs: list[Run] = []

    ctx.log(
        f"s1: raw pipe loop vs LeanPool(1 worker) streaming, {n_throughput} requests, "
        f"best of {sizes.repeats} interleaved"
    )
    raw_runs: list[Run] = []
    stream_runs: list[Run] = []
    with RawPipe() as raw, LeanPool(config, max_workers=1, progress=False) as pool:
        raw.run({"cmd": "#eval 0"})
        pool.run("#eval 0")
        for repeat in range(sizes.repeats):
            raw_runs.append(
                drive_sequential(
                    Run("raw_pipe"),
                    lambda c: raw.run({"cmd": c}),
                    _commands(0, n_throughput),
                    ctx.deadline_s,
                )
            )
            stream = Run("leanpool_LeanPool_1w_stream")
            stream.submitted = n_throughput
            begin = time.perf_counter()
            base = (repeat + 1) * 10_000_000  # distinct texts: the result cache must not answer
            for result in pool.imap_unordered(
                _commands(base, n_throughput), return_exceptions=True
            ):
                stream.add(result)
            stream.seconds = time.perf_counter() - begin
            stream_runs.append(stream)
        ctx.log("s1: LeanPool, 1 worker, one request at a time")
        pool_sequential = drive_sequential(
            Run("leanpool_LeanPool_1w_sequential"),
            pool.run,
            _commands(1_000_000, sizes.pool_sequential_requests),
            ctx.deadline_s,
        )
    runs += [best_of(raw_runs), best_of(stream_runs)]

    ctx.log(f"s1: leanpool LeanServer / AutoLeanServer, {n} requests one at a time")
    with LeanServer(config) as server:
        server.run(Command(cmd="#eval 0"))
        runs.append(
            drive_sequential(
                Run("leanpool_LeanServer"),
                lambda c: server.run(Command(cmd=c)),
                _commands(1, n),
                ctx.deadline_s,
            )
        )
    with AutoLeanServer(config) as auto:
        auto.run(Command(cmd="#eval 0"))
        runs.append(
            drive_sequential(
                Run("leanpool_AutoLeanServer"),
                lambda c: auto.run(Command(cmd=c)),
                _commands(1, n),
                ctx.deadline_s,
            )
        )
    runs.append(pool_sequential)

    if ctx.with_leaninteract:
        from lean_interact import AutoLeanServer as LIAutoLeanServer
        from lean_interact import Command as LICommand
        from lean_interact import LeanServer as LILeanServer

        li_config = leaninteract_config(ctx.workdir, "plain")
        ctx.log("s1: LeanInteract LeanServer / AutoLeanServer")
        with LILeanServer(li_config) as li_server:
            li_server.run(LICommand(cmd="#eval 0"))
            runs.append(
                drive_sequential(
                    Run("leaninteract_LeanServer"),
                    lambda c: li_server.run(LICommand(cmd=c)),
                    _commands(1, n),
                    ctx.deadline_s,
                )
            )
        with LIAutoLeanServer(li_config) as li_auto:
            li_auto.run(LICommand(cmd="#eval 0"))
            runs.append(
                drive_sequential(
                    Run("leaninteract_AutoLeanServer"),
                    lambda c: li_auto.run(LICommand(cmd=c)),
                    _commands(1, n),
                    ctx.deadline_s,
                )
            )

    by_name = {r.name: r for r in runs}
    raw_rate = by_name["raw_pipe"].throughput or 0.0

    def vs_raw(name: str) -> float | None:
        rate = by_name[name].throughput if name in by_name else None
        return round(rate / raw_rate, 4) if rate and raw_rate else None

    return {
        "description": "distinct trivial commands (#eval N) to one simulator process",
        "variants": [r.as_dict() for r in runs],
        "throughput_vs_raw": {r.name: vs_raw(r.name) for r in runs},
        "_plot": {
            "throughput": {r.name: r.throughput for r in runs},
            "latencies": {r.name: r.latencies for r in runs if r.latencies},
        },
    }
