"""The pool-wide memory budget: REPLs that grow with every request stay, together, under the
budget; every request is answered, and by its own result; no request fails for the budget."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psutil
import pytest

from leanpool import LeanPool
from leanpool._memory import MB, pss_bytes
from leanpool._memory_budget import DEFAULT_FRACTION, MemoryBudget, SlotMemory, machine_memory_mb
from leanpool.protocol import CommandResponse
from leanpool.testing import sim_config

GROWING = [f"#eval {i} --!sim rss_mb=60 cpu_ms=20" for i in range(40)]


@contextmanager
def peak_pss_mb() -> Iterator[list[float]]:
    """The peak, sampled every 20 ms, of the PSS of all this process's descendants (workers and
    REPLs; PSS counts pages they share once)."""
    peak = [0.0]
    stop = threading.Event()

    def sample() -> None:
        me = psutil.Process()
        while not stop.is_set():
            total = 0
            for child in me.children(recursive=True):
                try:
                    if "resource_tracker" not in " ".join(child.cmdline()):
                        total += pss_bytes(child.pid)
                except psutil.Error:
                    pass
            peak[0] = max(peak[0], total / MB)
            stop.wait(0.02)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join(timeout=5)


def values(results: list[object]) -> list[str]:
    out = []
    for result in results:
        assert isinstance(result, CommandResponse), result
        out.append(result.messages[0].data)
    return out


def test_growing_repls_stay_under_the_budget_and_every_request_is_answered() -> None:
    budget = 500.0
    with (
        peak_pss_mb() as peak,
        LeanPool(sim_config(), 2, timeout=60, progress=False, memory_budget_mb=budget) as pool,
    ):
        assert values(list(pool.map(GROWING))) == [str(i) for i in range(40)]
        stats = pool.stats()
    assert peak[0] <= budget, peak  # 40 x 60 MB = 2.4 GB of growth, under 500 MB
    assert stats.memory["budget_mb"] == budget and stats.memory["budget_peak_mb"] <= budget
    assert stats.recycles.get("memory_budget", 0) >= 3  # REPLs replaced to make room
    assert stats.failed == {} and stats.restarts == {}


def test_without_a_budget_the_same_work_grows_past_it() -> None:
    """The check above can fail: the same commands with no budget hold far more."""
    with (
        peak_pss_mb() as peak,
        LeanPool(sim_config(), 2, timeout=60, progress=False, memory_budget_mb=None) as pool,
    ):
        assert values(list(pool.map(GROWING))) == [str(i) for i in range(40)]
        assert "budget_mb" not in pool.stats().memory
    assert peak[0] > 2 * 500


def test_a_budget_too_small_for_one_fresh_repl_still_runs_everything() -> None:
    """Nothing to free and nothing running: one request at a time still goes (it meets its own
    per-REPL limit if it does not fit); the budget never stalls the pool."""
    with LeanPool(sim_config(), 2, timeout=60, progress=False, memory_budget_mb=1) as pool:
        started = time.monotonic()
        assert values(list(pool.map([f"#eval {i}" for i in range(6)]))) == [
            str(i) for i in range(6)
        ]
        assert time.monotonic() - started < 60


def test_the_default_budget_follows_the_machine_and_bad_values_are_refused() -> None:
    with LeanPool(sim_config(), 1, progress=False) as pool:
        assert pool.memory_budget_mb == pytest.approx(DEFAULT_FRACTION * machine_memory_mb())
    for wrong in (0, -5, "lots", float("nan")):
        with pytest.raises(ValueError, match="memory_budget_mb"):
            LeanPool(sim_config(), 1, memory_budget_mb=wrong)  # type: ignore[arg-type]


def test_the_victim_is_the_largest_idle_repl_then_the_largest_busy_one_past_the_budget() -> None:
    budget = MemoryBudget(1000)
    slots = [
        SlotMemory(0, busy=True, private_mb=600, shared_mb=0),
        SlotMemory(1, busy=False, private_mb=200, shared_mb=50),
        SlotMemory(2, busy=False, private_mb=250, shared_mb=0),
    ]
    assert budget.victim(slots, 800) is None  # below the high-water mark
    assert budget.victim(slots, budget.total_mb(slots)) == 2  # 1100: idle ones first
    busy_only = [SlotMemory(0, True, 600, 0), SlotMemory(1, True, 450, 0)]
    assert budget.victim(busy_only, 900) is None  # near, but nothing idle: wait
    assert budget.victim(busy_only, 1050) == 0  # past the budget: the largest busy one
    assert budget.peak_mb == 1100
