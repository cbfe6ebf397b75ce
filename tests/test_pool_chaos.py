"""Chaos: requests mixing every fault; each gets exactly one result, of the right kind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import threading
import time
from collections import Counter
from concurrent.futures import CancelledError

from leanpool import (
    LeanCrashError,
    LeanError,
    LeanMemoryError,
    LeanPool,
    LeanPoolError,
    LeanTimeoutError,
    ProofStep,
    ProofStepResponse,
    ProtocolError,
    StateLostError,
    WorkerCrashedError,
)
from leanpool.protocol import CommandResponse
from leanpool.testing import sim_config

FAULTS = {
    "crash": ("--!sim crash", LeanCrashError),
    "hang": ("--!sim hang", LeanTimeoutError),
    "memory": ("--!sim rss_mb=300", LeanMemoryError),
    "garbage": ("--!sim garbage", ProtocolError),
    "stderr": ("--!sim stderr_kb=256", None),  # noisy but healthy
}


def test_chaos_exactly_one_result_of_the_right_kind() -> None:
    rng = random.Random(20261125)
    kinds: list[str] = []
    requests: list[str] = []
    for i in range(320):
        kind = rng.choices(["ok", *FAULTS], weights=[80, 4, 2, 3, 3, 8])[0]
        kinds.append(kind)
        directive = FAULTS[kind][0] if kind in FAULTS else ""
        requests.append(f"#eval {i} * 7 {directive}".rstrip())
    with LeanPool(sim_config(), 2, timeout=1.0, memory_limit_mb=200, dedup=False) as pool:
        results = list(pool.map(requests, return_exceptions=True))
        stats = pool.stats()
    assert len(results) == len(requests)
    seen: Counter[str] = Counter()
    for i, (kind, result) in enumerate(zip(kinds, results, strict=True)):
        expected = FAULTS[kind][1] if kind in FAULTS else None
        if kind == "memory" and isinstance(result, CommandResponse):
            # The limit is checked by samples and once more at the answer, on a live REPL: a
            # request that grows faster than the samples and whose REPL a later request kills
            # (`crash`) before its answer is read cannot be measured, and keeps its answer.
            # That answer must still be its own.
            expected = None
        if expected is None:
            assert isinstance(result, CommandResponse), (i, kind, result)
            values = [m.data for m in result.messages if m.severity == "info"]
            assert values[0] == str(i * 7), (i, kind, result)
        else:
            assert isinstance(result, expected), (i, kind, result)
        seen[kind] += 1
    assert all(seen[kind] > 0 for kind in FAULTS), seen
    memory = [r for k, r in zip(kinds, results, strict=True) if k == "memory"]
    assert sum(isinstance(r, LeanMemoryError) for r in memory) >= len(memory) - 2, memory
    assert stats.done == len(requests)
    faults = sum(n for kind, n in stats.failed.items() if kind not in ("lean_errors", "LeanError"))
    # Counted from the results, not the plan: a memory request may keep its answer (above).
    assert faults == sum(isinstance(r, LeanPoolError) for r in results), stats.failed


def test_search_sessions_under_repl_and_worker_kills_get_one_right_result_each() -> None:
    """RL-style: branching tactic sessions while REPLs and workers are SIGKILLed (one every 120
    steps). Every step gets one result within bounded time, never another episode's goal, and a
    state is never reported lost (it is rebuilt, or the step gets the fault that hit it)."""
    rng = random.Random(7)
    tactics = ["skip", "skip --!sim cpu_ms=10", "omega", "constructor", "skip --!sim crash"]
    seen: Counter[str] = Counter()
    config = sim_config(imports={"HA": (200, 20)})

    def kill_one(pool: LeanPool) -> None:
        worker = rng.choice(pool.stats().workers)
        pid = worker["pid"] if rng.random() < 0.5 else worker["repl_pid"]
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                seen["kills"] += 1

    async def episode(pool: LeanPool, e: int, steps: int) -> None:
        with pool.session() as session:
            text = f"import HA\ntheorem t{e} (x{e} : Nat) : x{e} = x{e} := by sorry"
            root = await asyncio.wait_for(session.async_run(text, timeout=5), 60)
            states = [root.sorries[0].proof_state]
            for _ in range(steps):
                tactic = rng.choices(tactics, [40, 30, 10, 10, 2])[0]
                step = ProofStep(proof_state=rng.choice(states), tactic=tactic)
                try:
                    result = await asyncio.wait_for(session.async_run(step, timeout=5), 60)
                except StateLostError:
                    seen["state_lost"] += 1
                    continue
                except LeanPoolError as exc:
                    seen[type(exc).__name__] += 1
                    continue
                finally:
                    seen["steps"] += 1
                    if seen["steps"] % 120 == 0:
                        kill_one(pool)
                assert isinstance(result, ProofStepResponse | LeanError)
                seen[type(result).__name__] += 1
                if isinstance(result, ProofStepResponse):
                    assert all(f"x{e}" in goal for goal in result.goals), result.goals
                    if tactic.startswith("skip"):
                        states.append(result.proof_state)

    async def main(pool: LeanPool) -> None:
        await asyncio.gather(*(episode(pool, e, 80) for e in range(16)))

    with LeanPool(config, 2, progress=False, standby=True) as pool:
        started = time.monotonic()
        asyncio.run(main(pool))
        assert time.monotonic() - started < 120
    assert seen["steps"] == 16 * 80 and seen["state_lost"] == 0, seen
    assert seen["kills"] >= 5, seen
    assert seen["ProofStepResponse"] >= 640, seen  # most steps answered normally


def test_chaos_with_stopped_workers_stray_output_and_cancellations() -> None:
    """Workers and REPLs stopped (SIGSTOP) for a moment or for good, REPLs that talk out of
    turn, callers that give up on requests at random moments, on top of the faults above.
    Every request ends exactly once: its own answer, its own fault, a cancellation its caller
    asked for, or the typed error of a stop it met; never another request's answer."""
    rng = random.Random(20261204)
    kinds: list[str] = []
    requests: list[str] = []
    directives = {**{k: v[0] for k, v in FAULTS.items()}, "stray": "--!sim stray_ms=5"}
    for i in range(400):
        kind = rng.choices(["ok", "stray", *FAULTS], weights=[70, 10, 3, 2, 2, 3, 5])[0]
        kinds.append(kind)
        directive = directives.get(kind, "")
        requests.append(f"#eval {i} * 7 --!sim sleep_ms=5 {directive}".rstrip())
    stops: Counter[str] = Counter()
    done_submitting = threading.Event()

    def stop_things(pool: LeanPool) -> None:
        while not done_submitting.wait(rng.uniform(0.2, 0.6)):
            workers = [w for w in pool.stats().workers if w["pid"]]
            if not workers:
                continue
            worker = rng.choice(workers)
            pid = worker["pid"] if rng.random() < 0.5 else worker["repl_pid"]
            if not pid:
                continue
            pause = rng.choice([0.1, 0.5, 2.5])  # the last outlasts the grace
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
                stops["stopped"] += 1
                time.sleep(pause)
                os.kill(pid, signal.SIGCONT)

    with LeanPool(
        sim_config(), 2, timeout=1.0, worker_grace=1.5, memory_limit_mb=200, dedup=False
    ) as pool:
        stopper = threading.Thread(target=stop_things, args=(pool,), daemon=True)
        stopper.start()
        futures = []
        cancelled: set[int] = set()
        for request in requests:
            futures.append(pool.submit(request))
            if rng.random() < 0.05:  # a caller gives up on an earlier request
                victim = rng.randrange(len(futures))
                if futures[victim].cancel():
                    cancelled.add(victim)
            time.sleep(0.002)
        outcomes = []
        for future in futures:
            try:
                outcomes.append(future.result(timeout=120))
            except BaseException as exc:  # CancelledError included
                outcomes.append(exc)
        done_submitting.set()
        stopper.join(timeout=10)
        stats = pool.stats()
    seen: Counter[str] = Counter()
    stop_errors = (LeanTimeoutError, WorkerCrashedError, LeanCrashError)
    for i, (kind, outcome) in enumerate(zip(kinds, outcomes, strict=True)):
        if i in cancelled:
            assert isinstance(outcome, CancelledError), (i, kind, outcome)
            seen["cancelled"] += 1
        elif isinstance(outcome, CommandResponse):
            values = [m.data for m in outcome.messages if m.severity == "info"]
            assert values[0] == str(i * 7), (i, kind, outcome)  # its own answer, always
            # A memory request may slip under the watchdog (it samples every 50 ms) while its
            # REPL is being stopped and continued: it is still its own, right answer.
            assert kind in ("ok", "stray", "stderr", "memory"), (i, kind, outcome)
            seen["answered"] += 1
        else:
            expected = FAULTS[kind][1] if kind in FAULTS else None
            assert isinstance(outcome, (*stop_errors, *([expected] if expected else []))), (
                i,
                kind,
                outcome,
            )
            seen[type(outcome).__name__] += 1
    assert stops["stopped"] >= 5, stops
    assert seen["answered"] >= 250, seen  # most requests are answered despite it all
    assert stats.done + stats.cancelled == stats.submitted == len(requests), stats
