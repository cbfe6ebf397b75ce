"""A pool-wide memory budget: the workers and their REPLs together stay under `budget_mb`.

Per-REPL limits do not stop a machine running out of memory when every REPL grows at once (the
Kimina Lean Server's users saw hundreds of GB, project-numina/kimina-lean-server#25), and a
per-REPL limit tight enough to prevent that fails requests that would fit in a fresh REPL. The
budget acts on the pool instead, between requests:

* the pool's memory is estimated every quarter second, from what each worker and REPL holds
  privately (one read of ``/proc/<pid>/statm`` each) plus the REPL's share of the pages it shares
  with others (its PSS minus its private memory, from its last report): shared ``.olean`` pages
  count once for the pool, not once per REPL;
* only as many requests are sent as fit below `HIGH_WATER` of the budget, each counted at the
  most a request grew its REPL lately (`UNMEASURED_GROWTH` of the budget before any was
  measured); the others wait in the queue, new imports with them;
* while near it, the REPL holding the most private memory among idle workers is replaced,
  which frees what it grew; past the budget itself a busy one is too (its requests run again on
  a fresh REPL, through no fault of theirs).

No request fails because of the budget: one that does not fit in a fresh REPL meets its own
per-REPL limit (`memory_limit_mb`), or Lean's.
"""

from __future__ import annotations

from dataclasses import dataclass

from leanpool._memory import MB, RssProbe, container_memory_limit_bytes

HIGH_WATER = 0.85  # of the budget: from here on, no new work and idle REPLs are replaced
DEFAULT_FRACTION = 0.8  # of the machine's (or container's) memory, the default budget
# Until the pool has seen what a request adds to its REPL, each is assumed to add this fraction
# of the budget: a guess, safe for budgets a few requests can fill, replaced by the largest
# growth measured over the last tasks as soon as one finishes.
UNMEASURED_GROWTH = 1 / 8


@dataclass(frozen=True)
class SlotMemory:
    """One worker's share of the pool's memory, in MB."""

    index: int
    busy: bool
    private_mb: float  # the worker's and its REPL's private memory, now
    shared_mb: float  # the REPL's share of pages it shares (PSS minus private, last report)

    @property
    def total_mb(self) -> float:
        return self.private_mb + self.shared_mb


def machine_memory_mb() -> float:
    """The memory this process may use: the machine's, or its container's limit if lower."""
    import psutil

    total = float(psutil.virtual_memory().total)
    limit = container_memory_limit_bytes()
    if limit is not None:
        total = min(total, float(limit))
    return total / MB


def default_budget_mb() -> float:
    return DEFAULT_FRACTION * machine_memory_mb()


class MemoryBudget:
    """The budget's book-keeping (the dispatcher acts on its answers)."""

    def __init__(self, budget_mb: float) -> None:
        if not budget_mb > 0:
            raise ValueError(f"memory_budget_mb must be a positive number, got {budget_mb!r}")
        self.budget_mb = float(budget_mb)
        self.high_mb = HIGH_WATER * self.budget_mb
        self.peak_mb = 0.0  # the highest total estimated so far
        self.holds = 0  # times new work was held back
        self._probes: dict[int, RssProbe] = {}

    def private_mb(self, *pids: int | None) -> float:
        """Private memory of these processes, now (statm: resident minus shared)."""
        total = 0
        for pid in pids:
            if pid is None:
                continue
            probe = self._probes.get(pid)
            if probe is None:
                probe = self._probes[pid] = RssProbe(pid)
            resident, shared = probe.sample()
            total += resident - shared
        return total / MB

    def forget_gone(self, live: set[int]) -> None:
        """Close the probes of processes that are no longer workers or REPLs."""
        for pid in [p for p in self._probes if p not in live]:
            self._probes.pop(pid).close()

    def total_mb(self, slots: list[SlotMemory]) -> float:
        total = sum(slot.total_mb for slot in slots)
        self.peak_mb = max(self.peak_mb, total)
        return total

    def admits(self, total_mb: float) -> bool:
        return total_mb < self.high_mb

    def victim(self, slots: list[SlotMemory], total_mb: float) -> int | None:
        """The slot whose REPL to replace now (None: none): near the budget, the idle one holding
        the most private memory; past it, the largest busy one if none is idle."""
        if total_mb < self.high_mb:
            return None
        idle = [s for s in slots if not s.busy and s.private_mb > 0]
        if idle:
            return max(idle, key=lambda s: s.private_mb).index
        if total_mb >= self.budget_mb:
            busy = [s for s in slots if s.private_mb > 0]
            if busy:
                return max(busy, key=lambda s: s.private_mb).index
        return None

    def close(self) -> None:
        self.forget_gone(set())
