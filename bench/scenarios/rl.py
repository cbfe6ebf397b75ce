"""Scenario 7: the RL-like mixed workload (plan: bench/rl_plan.py), from asyncio with a fixed
number of requests in flight, leanpool against LeanInteract's `LeanServerPool`.

* leanpool: one `PoolSession` per episode (ids stay valid on the session's worker, and states are
  rebuilt there after a crash); ``await session.async_run(...)``; the root command carries its
  import header, which the worker imports once.
* LeanInteract: its ``async_run`` starves beyond a few concurrent calls (each waiting call parks
  a default-executor thread in a blocking acquire, src/lean_interact/pool.py;
  `probe_leaninteract_async` measures it in a subprocess), so the same asyncio driver calls
  its blocking ``pool.run`` through a ThreadPoolExecutor with one thread per in-flight request.
  Used as well as it can be: each header runs once through the pool (a session-cached env, timed
  as part of the run) and roots are sent on that env; a step's new proof state is the session id
  LeanInteract caches (read from ``model_dump(by_alias=True)``: its ``.proof_state`` keeps the
  REPL's id). A root's proof state comes from its ``sorry`` and is a REPL id of whichever worker
  ran it: LeanInteract caches only a command's env, so it has nothing better.

Both sides use the same per-request timeout. Each result is checked against the plan: a step's
goals must name its own episode (else ``wrong_state``), planned crashes should come back as
crashes, hangs as timeouts, everything else as a response or a Lean error.

With faults, LeanInteract drops the steps whose parent state was lost, so its time and
leanpool's measure unequal work. The same plan generator and seed without crashes and hangs
(``crash_rate=0, hang_rate=0``) is therefore run too, by leanpool's RL configuration
(`RL_CONFIGURATION`) and by LeanInteract: variants ending in ``_nofaults``, whose times the
headline ratio ``speedup_vs_leaninteract_pool_nofaults`` compares.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from bench.measure import Run, episode_markers
from bench.modes import Sizes
from bench.rl_plan import Episode, make_plan, plan_summary
from bench.scenarios import Context
from bench.systems import (
    HEADERS,
    import_options,
    leaninteract_config,
    leaninteract_repl_dir,
    leanpool_config,
    warm_leanpool,
)

PICKLE_COSTS = {"pickle_ms": 10, "unpickle_ms": 10}
_EXPECTED = {"open": {"ok"}, "leaf": {"ok", "lean_error"}, "crash": {"crash"}, "hang": {"timeout"}}


class LeanPoolClient:
    name = "leanpool"

    def __init__(self, pool: Any, timeout: float) -> None:
        from leanpool import Command, ProofStep

        self.pool = pool
        self.timeout = timeout
        self._command = Command
        self._step = ProofStep

    async def start(self) -> list[object]:
        return []

    def open_episode(self, episode: Episode) -> Any:
        return self.pool.session()

    def close_episode(self, handle: Any) -> None:
        handle.close()

    async def root(self, handle: Any, episode: Episode) -> object:
        request = self._command(cmd=episode.root_command())
        result: object = await handle.async_run(request, timeout=self.timeout)
        return result

    async def step(self, handle: Any, state: int, tactic: str) -> object:
        request = self._step(proof_state=state, tactic=tactic)
        result: object = await handle.async_run(request, timeout=self.timeout)
        return result

    def root_state(self, result: Any) -> int | None:
        sorries = getattr(result, "sorries", None)
        return sorries[0].proof_state if sorries else None

    def step_state(self, result: Any) -> int | None:
        state = getattr(result, "proof_state", None)
        return state if isinstance(state, int) else None


class LeanInteractClient:
    name = "leaninteract"

    def __init__(self, pool: Any, threads: ThreadPoolExecutor, timeout: float) -> None:
        from lean_interact import Command, ProofStep

        self.pool = pool
        self.threads = threads
        self.timeout = timeout
        self._command = Command
        self._step = ProofStep
        self.envs: dict[str, int | None] = {}

    async def _call(self, request: Any) -> object:
        loop = asyncio.get_running_loop()
        call = partial(self.pool.run, request, timeout=self.timeout)
        result: object = await loop.run_in_executor(self.threads, call)
        return result

    async def start(self) -> list[object]:
        """Run each header once through the pool: its session-cached env serves every root."""
        results: list[object] = await asyncio.gather(
            *(self._call(self._command(cmd=f"import {h}")) for h in HEADERS),
            return_exceptions=True,
        )
        for header, result in zip(HEADERS, results, strict=True):
            self.envs[header] = getattr(result, "env", None)
        return results

    def open_episode(self, episode: Episode) -> Any:
        return None

    def close_episode(self, handle: Any) -> None:
        pass

    async def root(self, handle: Any, episode: Episode) -> object:
        return await self._call(self._command(cmd=episode.theorem, env=self.envs[episode.header]))

    async def step(self, handle: Any, state: int, tactic: str) -> object:
        return await self._call(self._step(proof_state=state, tactic=tactic))

    def root_state(self, result: Any) -> int | None:
        sorries = getattr(result, "sorries", None)
        return sorries[0].proof_state if sorries else None

    def step_state(self, result: Any) -> int | None:
        if not hasattr(result, "model_dump"):
            return None
        state = result.model_dump(by_alias=True).get("proofState")  # the session id
        return state if isinstance(state, int) else None


async def execute(
    client: Any, plan: list[Episode], in_flight: int, deadline_s: float
) -> dict[str, Any]:
    """Run the plan; returns the run's dict with plan checks."""
    run = Run(client.name)
    checks: Counter[str] = Counter()
    unexpected: Counter[str] = Counter()
    slots = asyncio.Semaphore(in_flight)

    async def request(call: Any) -> tuple[object, str]:
        async with slots:
            run.submitted += 1
            started = time.perf_counter()
            try:
                result = await call()
            except Exception as exc:
                result = exc
            return result, run.add(result, time.perf_counter() - started)

    def check(episode: Episode, result: object, kind: str, expect: str) -> None:
        markers = episode_markers(result)
        if markers and markers != {episode.index}:
            checks["wrong_state"] += 1
        if kind not in _EXPECTED[expect]:
            unexpected[f"{expect}->{kind}"] += 1
        else:
            checks["as_planned"] += 1

    async def episode_task(episode: Episode) -> None:
        loop = asyncio.get_running_loop()
        handle = client.open_episode(episode)
        states: dict[int, asyncio.Future[int | None]] = {0: loop.create_future()}
        for step in episode.steps:
            states[step.key] = loop.create_future()

        async def root() -> None:
            result, kind = await request(lambda: client.root(handle, episode))
            check(episode, result, kind, "open")
            states[0].set_result(client.root_state(result) if kind == "ok" else None)

        async def step_task(step: Any) -> None:
            state = await states[step.parent]
            if state is None:
                checks["skipped_parent_failed"] += 1
                states[step.key].set_result(None)
                return
            result, kind = await request(lambda: client.step(handle, state, step.tactic))
            check(episode, result, kind, step.expect)
            usable = step.expect == "open" and step.duplicate_of is None and kind == "ok"
            states[step.key].set_result(client.step_state(result) if usable else None)

        try:
            await asyncio.gather(root(), *(step_task(s) for s in episode.steps))
        finally:
            client.close_episode(handle)

    setup_requests = 0
    begin = time.perf_counter()
    try:
        setup_results = await asyncio.wait_for(client.start(), deadline_s)
        setup_requests = len(setup_results)
        run.submitted += setup_requests
        for result in setup_results:
            run.add(result)
        await asyncio.wait_for(
            asyncio.gather(*(episode_task(e) for e in plan)),
            max(1.0, deadline_s - (time.perf_counter() - begin)),
        )
    except asyncio.TimeoutError:
        run.notes["deadline_exceeded"] = True
    run.seconds = time.perf_counter() - begin
    correct = run.kinds["ok"] + run.kinds["lean_error"] - checks["wrong_state"]
    run.notes.update(
        {
            "setup_requests": setup_requests,
            "checks": dict(checks),
            "unexpected_outcomes": dict(sorted(unexpected.items())),
            "useful_results": correct,
            "useful_results_per_s": round(correct / run.seconds, 2) if run.seconds else None,
        }
    )
    return run.as_dict()


# leanpool's configurations in this scenario (name -> LeanPool options): the defaults, and the
# one an RL team would pick (a warm standby REPL per worker, so restarts after crashes and
# timeouts do not re-import headers on the critical path; it costs a second REPL's memory per
# worker).
LEANPOOL_CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "leanpool": {},
    "leanpool_standby": {"standby": True},
}
# The configuration the headline ratios use, and the one that runs the plan without faults:
# change it here and everything (variants, ratios, report) follows.
RL_CONFIGURATION = "leanpool_standby"
NOFAULTS = "_nofaults"  # suffix of the variants that ran the plan without faults
LEANINTERACT = "leaninteract"


def floor_seconds(summary: dict[str, int], import_ms: int, timeout_s: float, workers: int) -> float:
    """The least time anyone needs to answer a whole plan on `workers` workers: its CPU once per
    distinct request, each header imported once, and each planned hang holding a REPL until its
    timeout."""
    busy_s = (
        summary["cpu_ms_unique"] / 1000
        + len(HEADERS) * import_ms / 1000
        + summary["planned_hangs"] * timeout_s
    )
    return busy_s / workers


def _run_leanpool(
    ctx: Context, name: str, options: dict[str, Any], plan: list[Episode], sim: dict[str, Any]
) -> dict[str, Any]:
    from leanpool import LeanPool

    sizes = ctx.sizes
    requests = plan_summary(plan)["requests"]
    ctx.log(f"s7: {name}, {requests} requests, {sizes.rl_in_flight} in flight")
    with LeanPool(
        leanpool_config(**sim), max_workers=ctx.workers, progress=False, **options
    ) as pool:
        warm_leanpool(pool, ctx.workers)
        client = LeanPoolClient(pool, sizes.rl_timeout_s)
        client.name = name
        measured = asyncio.run(execute(client, plan, sizes.rl_in_flight, ctx.deadline_s))
        stats = pool.stats()
    measured["pool_stats"] = {
        "deduplicated": stats.deduplicated,
        "restarts": stats.restarts,
        "recycles": stats.recycles,
        "header_imports": stats.header_imports,
        "session_moves": stats.session_moves,
        "states_rebuilt": stats.states_rebuilt,
        "states_unpickled": stats.states_unpickled,
    }
    measured["driver"] = "asyncio: PoolSession.async_run" + "".join(
        f", {key}={value!r}" for key, value in options.items()
    )
    return measured


def _run_leaninteract(
    ctx: Context, name: str, plan: list[Episode], sim: dict[str, Any]
) -> dict[str, Any]:
    from lean_interact import LeanServerPool

    sizes = ctx.sizes
    li_config = leaninteract_config(ctx.workdir, "rl", **sim)
    ctx.log(f"s7: {name}: LeanInteract LeanServerPool through threads")
    with (
        LeanServerPool(li_config, num_workers=ctx.workers) as li_pool,
        ThreadPoolExecutor(sizes.rl_in_flight, thread_name_prefix="li-client") as threads,
    ):
        li_client = LeanInteractClient(li_pool, threads, sizes.rl_timeout_s)
        li_client.name = name
        measured = asyncio.run(execute(li_client, plan, sizes.rl_in_flight, ctx.deadline_s))
        measured["cached_states"] = len(li_pool.session_cache.keys())
    measured["driver"] = (
        f"asyncio + ThreadPoolExecutor({sizes.rl_in_flight}) calling LeanServerPool.run "
        "(its async_run starves)"
    )
    return measured


def _latency(variant: dict[str, Any] | None) -> dict[str, float | None] | None:
    if variant is None:
        return None
    latency = variant.get("latency_ms") or {}
    return {key: latency.get(key) for key in ("p50", "p90", "p99")}


def plans(sizes: Sizes, seed: int) -> tuple[list[Episode], list[Episode]]:
    """The plan with faults, and the same generator and seed without crashes or hangs (every
    request can be answered as planned, by leanpool and LeanInteract alike, so their times
    compare equal work)."""
    return (
        make_plan(sizes.rl_episodes, sizes.rl_steps, HEADERS, seed),
        make_plan(sizes.rl_episodes, sizes.rl_steps, HEADERS, seed, crash_rate=0, hang_rate=0),
    )


def run(ctx: Context) -> dict[str, Any]:
    sizes = ctx.sizes
    plan, plan_nofaults = plans(sizes, ctx.seed)
    # Checkpoints pickle every proof state a session makes: the simulator charges each pickle and
    # unpickle 10 ms of CPU (its PICKLE_COST_GROUNDS say why that is on the high side).
    sim = {**import_options(sizes.import_ms, sizes.import_mb), **PICKLE_COSTS}
    variants: dict[str, dict[str, Any]] = {}

    for name, options in LEANPOOL_CONFIGURATIONS.items():
        variants[name] = _run_leanpool(ctx, name, options, plan, sim)
    nofaults_lp = RL_CONFIGURATION + NOFAULTS
    variants[nofaults_lp] = _run_leanpool(
        ctx, nofaults_lp, LEANPOOL_CONFIGURATIONS[RL_CONFIGURATION], plan_nofaults, sim
    )

    probe: dict[str, Any] | None = None
    if ctx.with_leaninteract:
        variants[LEANINTERACT] = _run_leaninteract(ctx, LEANINTERACT, plan, sim)
        nofaults_li = LEANINTERACT + NOFAULTS
        variants[nofaults_li] = _run_leaninteract(ctx, nofaults_li, plan_nofaults, sim)
        if sizes.rl_async_probe:
            ctx.log("s7: probing LeanInteract's async_run at the same concurrency")
            probe = probe_leaninteract_async(ctx, sizes.rl_in_flight, wait_s=20.0)
    return summarize(variants, plan, plan_nofaults, sizes, ctx.workers, probe)


def summarize(
    variants: dict[str, dict[str, Any]],
    plan: list[Episode],
    plan_nofaults: list[Episode],
    sizes: Sizes,
    workers: int,
    probe: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The scenario's result from its variants (by name, each a `Run.as_dict()` plus the
    plan's checks): the ratios the report reads, the latency table, the floors."""
    summary, summary_nofaults = plan_summary(plan), plan_summary(plan_nofaults)
    timeout = sizes.rl_timeout_s
    for name, variant in variants.items():
        variant["faults"] = not name.endswith(NOFAULTS)

    def seconds(name: str) -> float | None:
        value = variants.get(name, {}).get("seconds")
        return float(value) if value else None

    lp, li = seconds(RL_CONFIGURATION), seconds(LEANINTERACT)
    lp_nofaults = seconds(RL_CONFIGURATION + NOFAULTS)
    li_nofaults = seconds(LEANINTERACT + NOFAULTS)
    floor = floor_seconds(summary, sizes.import_ms, timeout, workers)
    floor_nofaults = floor_seconds(summary_nofaults, sizes.import_ms, timeout, workers)
    systems = [*LEANPOOL_CONFIGURATIONS, LEANINTERACT]
    return {
        "description": (
            f"{summary['episodes']} episodes over {len(HEADERS)} headers "
            f"({sizes.import_ms} ms, {sizes.import_mb} MB), proof-state branching, step costs "
            f"log-uniform 5-200 ms, 2% crashes, 1% hangs, 10% duplicates, "
            f"{sizes.rl_in_flight} in flight, timeout {timeout} s per request; the same plan "
            f"without crashes and hangs (same generator and seed) run by {RL_CONFIGURATION} "
            f"and LeanInteract (variants ending in {NOFAULTS})"
        ),
        "plan": summary,
        "plan_nofaults": summary_nofaults,
        "timeout_s": timeout,
        "variants": list(variants.values()),
        "rl_configuration": RL_CONFIGURATION,
        "workers": workers,
        "floor_seconds": round(floor, 2),
        "floor_seconds_nofaults": round(floor_nofaults, 2),
        "floor_vs_leanpool": round(floor / lp, 3) if lp else None,
        "leaninteract_time_vs_leanpool_nofaults": (
            round(li_nofaults / lp_nofaults, 3) if lp_nofaults and li_nofaults else None
        ),
        "leaninteract_time_vs_leanpool": round(li / lp, 3) if lp and li else None,
        "leaninteract_time_vs_floor": round(li / floor, 3) if li else None,
        "latency": {
            system: {
                "faults": _latency(variants.get(system)),
                "nofaults": _latency(variants.get(system + NOFAULTS)),
            }
            for system in systems
            if system in variants
        },
        "leaninteract_async_probe": probe,
        "_plot": {
            "seconds": {name: v["seconds"] for name, v in variants.items()},
            "useful": {name: v["useful_results"] for name, v in variants.items()},
            "planned": summary["requests"],
            "planned_nofaults": summary_nofaults["requests"],
        },
    }


def probe_leaninteract_async(ctx: Context, concurrency: int, wait_s: float) -> dict[str, Any]:
    """Run `concurrency` LeanServerPool.async_run calls at once in a subprocess (it may hang)."""
    repl_dir, lake = leaninteract_repl_dir(ctx.workdir, "plain")
    command = [
        sys.executable,
        "-m",
        "bench.leaninteract_async_probe",
        str(repl_dir),
        str(lake),
        str(ctx.workers),
        str(concurrency),
        str(wait_s),
    ]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=wait_s + 60, cwd=os.getcwd()
        )
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        return dict(json.loads(lines[-1])) if lines else {"error": done.stderr[-2000:]}
    except subprocess.TimeoutExpired:
        return {"error": f"the probe did not finish in {wait_s + 60} s"}
