"""Scenario 3: import-heavy work.

Commands are ``import <header>`` + a small theorem (``cpu_ms`` each), cycling over 4 headers that
each cost `import_ms` and `import_mb` in the simulator (time on every import, memory once per
process). Every variant gets the same command texts in the same order:

* leanpool with header affinity (default): each worker imports a header once, bodies run on it;
* leanpool with ``header_affinity=False``: commands go verbatim, so the REPL re-imports each time;
* (not in the ratios) leanpool with affinity fed by a closed loop of 4 requests per worker instead
  of all at once: how the scheduler does when requests trickle in;
* the seed's recipe: spawn `Pool`, a new LeanInteract `AutoLeanServer` per command;
* LeanInteract's `LeanServerPool`, used as well as it can be: each header run once through the
  pool (a session-cached env), bodies sent with that env via `run_batch`, so a worker imports a
  header once (or replays it when it did not have it).

Everything is submitted at once (as `Pool.starmap` and `run_batch` do) unless said otherwise.
Pools are started before the clock starts (processes and REPLs up); imports are timed.
The per-command baselines (seed recipe, no affinity) cost the same for every command, so in quick
mode they run a stratified prefix (`import_commands_slow`, equal per header) and their time for
the full count is scaled linearly; the JSON says so (`measured_commands`, `scaled_from`).

After each variant's clock stopped, with its processes still up, one sample of the memory of the
bench's descendant processes (`measure.memory_snapshot_mb`: totals of workers + REPLs and the
largest REPL's, as RSS, PSS and private memory) shows how the imported modules' pages count: the
simulator maps each module's file read-only and shared, as Lean maps ``.olean`` files, so RSS
counts a module once per REPL that imported it, PSS once, and private memory not at all. Every
variant's REPLs are descendants of the bench process (leanpool's under its workers,
LeanInteract's under this process, the seed recipe's under its spawn pool), but the seed
recipe's live for one command each: its sample, taken after the last one, holds its pool's
processes and no REPL (`repls` is 0).
"""

from __future__ import annotations

from typing import Any

from bench.measure import Run, drive_window, memory_snapshot_mb, timed
from bench.scenarios import Context
from bench.systems import (
    HEADERS,
    import_options,
    leaninteract_config,
    leanpool_config,
    warm_leanpool,
)


def _body(i: int, cpu_ms: int) -> str:
    return f"theorem imp{i} : {i} + 0 = {i} := by\n  simp --!sim cpu_ms={cpu_ms}"


def _workload(count: int, cpu_ms: int) -> list[tuple[str, str]]:
    """(header module, body) pairs, headers interleaved."""
    return [(HEADERS[i % len(HEADERS)], _body(i, cpu_ms)) for i in range(count)]


def _full_text(header: str, body: str) -> str:
    return f"import {header}\n{body}"


def _scaled(run: Run, target: int) -> dict[str, Any]:
    """The run's dict, with its time scaled to `target` commands when it measured fewer."""
    result = run.as_dict()
    measured = run.results
    result["measured_commands"] = measured
    if measured and measured < target:
        result["scaled_from"] = measured
        result["seconds_measured"] = result["seconds"]
        result["seconds"] = round(run.seconds * target / measured, 4)
    return result


def run(ctx: Context) -> dict[str, Any]:
    from leanpool import LeanPool

    sizes = ctx.sizes
    n, n_slow = sizes.import_commands, min(sizes.import_commands_slow, sizes.import_commands)
    sim = import_options(sizes.import_ms, sizes.import_mb)
    work = _workload(n, sizes.import_body_cpu_ms)
    texts = [_full_text(h, b) for h, b in work]
    timeout = 60.0 + 4 * sizes.import_ms / 1000
    config = leanpool_config(**sim)
    variants: dict[str, dict[str, Any]] = {}

    closed_loop = 4 * ctx.workers
    leanpool_variants = (
        ("leanpool_affinity", True, n, n),
        ("leanpool_no_affinity", False, n_slow, n_slow),
        (f"leanpool_affinity_closed_loop_{closed_loop}", True, n, closed_loop),
    )
    for name, affinity, count, window in leanpool_variants:
        ctx.log(f"s3: {name}, {count} commands, {window} in flight")
        options: dict[str, Any] = {"header_affinity": affinity, "timeout": timeout}
        with LeanPool(config, max_workers=ctx.workers, progress=False, **options) as pool:
            warm_leanpool(pool, ctx.workers)
            measured = drive_window(Run(name), pool.submit, texts[:count], window, ctx.deadline_s)
            measured.notes["in_flight"] = window
            measured.notes["header_imports"] = pool.stats().header_imports
            measured.notes["memory_at_end"] = memory_snapshot_mb()
        variants[name] = _scaled(measured, n)

    if ctx.with_leaninteract:
        from bench.seed_recipe import start_pool, verify_one

        li_config = leaninteract_config(ctx.workdir, "imports", **sim)
        ctx.log(f"s3: seed recipe (spawn Pool + AutoLeanServer per command), {n_slow} commands")
        seed = Run("seed_recipe")
        with start_pool(ctx.workers) as mp_pool:
            mp_pool.map(abs, range(ctx.workers))  # processes up before the clock starts
            seed.submitted = n_slow
            with timed() as elapsed:
                outcomes = mp_pool.starmap(
                    verify_one, [(li_config, text, timeout) for text in texts[:n_slow]]
                )
            seed.seconds = elapsed[0]
            seed.notes["memory_at_end"] = memory_snapshot_mb()  # no REPL left: one per command
        for kind, seconds in outcomes:
            seed.results += 1
            seed.kinds[kind] += 1
            seed.latencies.append(seconds)
        variants["seed_recipe"] = _scaled(seed, n)

        ctx.log(f"s3: LeanInteract LeanServerPool (session-cached header envs), {n} commands")
        variants["leaninteract_pool"] = _leaninteract_pool(ctx, li_config, work, timeout)

    affinity_s = variants["leanpool_affinity"]["seconds"]

    def speedup(name: str) -> float | None:
        seconds = variants.get(name, {}).get("seconds")
        return round(seconds / affinity_s, 3) if seconds and affinity_s else None

    return {
        "description": (
            f"{n} commands over {len(HEADERS)} headers of {sizes.import_ms} ms and "
            f"{sizes.import_mb} MB each, body cpu_ms={sizes.import_body_cpu_ms}"
        ),
        "commands": n,
        "variants": list(variants.values()),
        "time_vs_leanpool_affinity": {name: speedup(name) for name in variants},
        "_plot": {"seconds": {name: v["seconds"] for name, v in variants.items()}},
    }


def _leaninteract_pool(
    ctx: Context, li_config: Any, work: list[tuple[str, str]], timeout: float
) -> dict[str, Any]:
    from lean_interact import Command as LICommand
    from lean_interact import LeanServerPool

    result = Run("leaninteract_pool")
    with LeanServerPool(li_config, num_workers=ctx.workers) as li_pool:
        with timed() as elapsed:
            headers = li_pool.run_batch(
                [LICommand(cmd=f"import {h}") for h in HEADERS], timeout_per_cmd=timeout
            )
            envs = {h: getattr(r, "env", None) for h, r in zip(HEADERS, headers, strict=True)}
            requests: list[Any] = [LICommand(cmd=body, env=envs[header]) for header, body in work]
            result.submitted = len(requests)
            outcomes = li_pool.run_batch(requests, timeout_per_cmd=timeout)
        result.notes["memory_at_end"] = memory_snapshot_mb()
    result.seconds = elapsed[0]
    for outcome in outcomes:
        result.add(outcome)
    result.notes["header_envs"] = {h: e for h, e in envs.items()}
    return result.as_dict()
