"""Chaos: requests mixing every fault; each gets exactly one result, of the right kind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
from collections import Counter

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
        if expected is None:
            assert isinstance(result, CommandResponse), (i, kind, result)
            values = [m.data for m in result.messages if m.severity == "info"]
            assert values[0] == str(i * 7), (i, kind, result)
        else:
            assert isinstance(result, expected), (i, kind, result)
        seen[kind] += 1
    assert all(seen[kind] > 0 for kind in FAULTS), seen
    assert stats.done == len(requests)
    assert sum(stats.failed.get(e.__name__, 0) for _, e in FAULTS.values() if e) == sum(
        seen[k] for k in ("crash", "hang", "memory", "garbage")
    )


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
