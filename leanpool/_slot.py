"""A slot: one worker process, as the parent sees it.

A slot keeps at most `depth` tasks in flight on its worker (one running, the next already queued
so the worker never idles), remembers which import headers its worker holds (an LRU mirroring the
order in which they were sent), and replaces its worker when it has served
`max_tasks_per_worker` requests (recycling, staggered across slots) or when the worker died.
Each replacement starts a new *generation*: whatever the old worker held is gone.

Slots are only touched by the dispatcher thread, so they need no locks.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from leanpool._scheduling import remaining_work
from leanpool._worker import WorkerCounts, WorkerReport

if TYPE_CHECKING:
    from concurrent.futures import Future

    from leanpool._backends import WorkerFactory, WorkerHandle
    from leanpool._config import LeanREPLConfig
    from leanpool._dispatcher import Pending
    from leanpool._worker import WorkItem, WorkResult

logger = logging.getLogger("leanpool")

_task_ids = itertools.count(1)
_tickets = itertools.count(1)  # numbers of requests on workers' control pages
# A new worker process imports leanpool and starts its REPL before its first heartbeat.
_FIRST_BEAT_SECONDS = 60.0


class SlotState(Enum):
    """Where a slot's worker is in its life; only `UP` slots are sent work."""

    STARTING = "starting"  # waits for a place to run (a Ray actor): no work until it answers
    UP = "up"
    DRAINING = "draining"  # served its quota (max_tasks): finishes what it holds, then recycles
    DOWN = "down"  # no worker (not started yet, retired, or stopped)


@dataclass
class Task:
    """One batch of requests submitted to a slot's worker."""

    task_id: int
    slot_index: int
    generation: int  # of the slot's worker it was submitted to
    pendings: list[Pending]
    future: Future[tuple[list[WorkResult], WorkerReport]]


@dataclass
class Slot:
    index: int
    factory: WorkerFactory
    config: LeanREPLConfig
    server_options: dict[str, Any]
    depth: int = 2
    max_headers: int = 8
    max_tasks: int | None = None
    first_recycle_at: int | None = None
    generation: int = -1
    worker: WorkerHandle | None = None
    state: SlotState = SlotState.DOWN
    in_flight: dict[int, Task] = field(default_factory=dict)
    closed_bases: set[int] = field(default_factory=set)  # of closed sessions, to tell the worker
    headers: OrderedDict[tuple[str, ...], None] = field(default_factory=OrderedDict)
    pinned: deque[Pending] = field(default_factory=deque)  # session requests bound here
    served_this_generation: int = 0
    recycle_at: int | None = None
    sessions: int = 0
    report: WorkerReport | None = None
    recycles: Counter[str] = field(default_factory=Counter)
    # what the earlier generations of this slot's worker did (their last reports, added up)
    past_counts: WorkerCounts = field(default_factory=WorkerCounts)
    running_since: float = 0.0  # when the task now running on the worker began (monotonic)
    started_at: float = 0.0  # when the current generation's worker was started (monotonic)

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Start a new worker process (a new generation)."""
        self.generation += 1
        self.started_at = time.monotonic()
        self.worker = self.factory(self.config, self.server_options)
        placed_at_once = not getattr(self.worker, "needs_placement", False)
        self.state = SlotState.UP if placed_at_once else SlotState.STARTING
        self.headers.clear()
        self.served_this_generation = 0
        if self.max_tasks is not None:
            first = self.first_recycle_at if self.generation == 0 else None
            self.recycle_at = first or self.max_tasks
        if self.report is not None:
            self.past_counts += self.report.counts
            self.report = None

    def stop(self, kill: bool, wait: bool = False) -> None:
        worker, self.worker = self.worker, None
        self.state = SlotState.DOWN
        if worker is not None:
            if kill:
                worker.kill(wait=wait)
            else:
                worker.shutdown(wait=wait)

    def retire(self, reason: str) -> None:
        """End the current worker; the next `start` begins a new generation."""
        logger.info("slot %d: replacing worker (%s)", self.index, reason)
        self.recycles[reason] += 1
        # An idle worker (recycling) may finish politely; a broken one is killed.
        self.stop(kill=bool(self.in_flight) or reason != "max_tasks")
        self.in_flight.clear()

    def warm_up(self) -> Task:
        """Start the worker process and its REPL before the first request needs them."""
        assert self.worker is not None
        task = Task(next(_task_ids), self.index, self.generation, [], self.worker.warm_up())
        self._add(task)
        return task

    def _add(self, task: Task) -> None:
        if not self.in_flight:
            self.running_since = time.monotonic()
        self.in_flight[task.task_id] = task

    # ---------------------------------------------------------------- dispatch
    @property
    def accepting(self) -> bool:
        return self.state is SlotState.UP and len(self.in_flight) < self.depth and self.quota != 0

    @property
    def quota(self) -> int | None:
        """Requests this worker may still be sent before it is recycled (None: no limit), so
        that it serves exactly `recycle_at` of them however many tasks are in flight."""
        if self.recycle_at is None:
            return None
        sent = self.served_this_generation + sum(len(t.pendings) for t in self.in_flight.values())
        return max(0, self.recycle_at - sent)

    @property
    def load(self) -> int:
        return sum(len(task.pendings) for task in self.in_flight.values()) + len(self.pinned)

    def holds(self, key: tuple[str, ...]) -> bool:
        return key in self.headers

    def note_header(self, key: tuple[str, ...]) -> None:
        """The worker holds (or is about to import) this header."""
        self.headers[key] = None
        self.headers.move_to_end(key)
        while len(self.headers) > self.max_headers:
            self.headers.popitem(last=False)

    @staticmethod
    def next_ticket() -> int:
        return next(_tickets)

    def cancel(self, pending: Pending) -> None:
        """Ask the worker to skip `pending` if it has not started it (best effort)."""
        worker = self.worker
        sent_here = pending.task is not None and pending.task.generation == self.generation
        if worker is not None and worker.control is not None and sent_here:
            worker.control.cancel(pending.ticket)

    def serving_ticket(self) -> int | None:
        """The ticket of the request the worker's REPL serves now (0: none; None: unknown).

        A worker without a control page (Ray) cannot tell; but if its whole machine is gone,
        no request killed it, and none is charged (0)."""
        worker = self.worker
        if worker is None:
            return None
        if worker.control is not None:
            return worker.control.serving()
        node_lost = getattr(worker, "node_lost", None)
        return 0 if node_lost is not None and node_lost(self.node) else None

    @property
    def node(self) -> str | None:
        """The Ray node the current worker runs on (None: local, or not known yet)."""
        return self.report.node if self.report is not None else None

    def waiting_for_placement(self, now: float) -> float | None:
        """Seconds a worker waiting for a place has waited past its `placement_timeout`
        (None: not waiting, or within its time)."""
        worker = self.worker
        if self.state is not SlotState.STARTING or worker is None:
            return None
        timeout = getattr(worker, "placement_timeout", None)
        if timeout is None:
            return None
        waited = now - self.started_at
        return waited if waited > timeout else None

    def unresponsive(self, now: float, grace: float) -> str | None:
        """Why the worker seems unable to answer (None: it looks fine, or cannot be watched)."""
        control = self.worker.control if self.worker is not None else None
        if control is None:
            return None
        beat = control.heartbeat()
        if not beat:
            waited = now - self.started_at
            if waited > max(grace, _FIRST_BEAT_SECONDS):
                return f"no sign of life {waited:.1f} s after it was started"
            return None
        if now - beat > grace:
            return f"no heartbeat for {now - beat:.1f} s"
        deadline = control.deadline()
        if deadline is not None and now - deadline > grace:
            return f"the request its REPL serves is {now - deadline:.1f} s past its deadline"
        return None

    def submit(self, pendings: list[Pending], items: list[WorkItem]) -> Task:
        assert self.worker is not None
        for pending in pendings:
            if pending.header is not None:
                self.note_header(pending.header.key)
        for item in items:  # states rebuilt here import their headers too
            for recipe in item.recipes:
                if recipe.header is not None:
                    self.note_header(recipe.header.key)
        future = self.worker.submit(items)
        task = Task(next(_task_ids), self.index, self.generation, pendings, future)
        self._add(task)
        for pending in pendings:
            pending.task = task
        return task

    def busy_for(self, per_request: float, now: float) -> float:
        """How long the worker will still be busy with its tasks in flight (`remaining_work`),
        when each request takes `per_request` seconds."""
        if not self.in_flight:
            return 0.0
        expected = per_request * sum(len(task.pendings) for task in self.in_flight.values())
        return remaining_work(expected, now - self.running_since)

    def finished(self, task: Task, report: WorkerReport | None) -> None:
        """Book-keeping after a task completed normally."""
        self.in_flight.pop(task.task_id, None)
        if self.in_flight:
            self.running_since = time.monotonic()  # the next task starts running now
        if task.generation == self.generation:
            if report is not None:
                self.report = report
            if self.state is SlotState.STARTING:  # it runs somewhere now: it may take work
                self.state = SlotState.UP
        self.served_this_generation += len(task.pendings)
        if (
            self.state is SlotState.UP
            and self.recycle_at is not None
            and self.served_this_generation >= self.recycle_at
        ):
            self.state = SlotState.DRAINING

    @property
    def ready_to_recycle(self) -> bool:
        return self.state is SlotState.DRAINING and not self.in_flight

    # ---------------------------------------------------------------- stats
    def counts(self) -> WorkerCounts:
        """What every generation of this slot's worker did, the current one included."""
        return self.past_counts + self.report.counts if self.report else self.past_counts

    def import_timing(self) -> tuple[float, int]:
        """Seconds spent importing headers in front of requests, and how many imports."""
        counts = self.counts()
        return counts.import_seconds, counts.timed_imports

    def snapshot(self) -> dict[str, Any]:
        report = self.report
        return {
            "slot": self.index,
            "state": self.state.value,
            "generation": self.generation,
            "pid": report.pid if report else None,
            "node": {"id": report.node, "host": report.host} if report else None,
            "repl_pid": report.repl_pid if report else None,
            "rss_mb": round(report.rss_mb, 1) if report else None,
            "pss_mb": round(report.pss_mb, 1) if report else None,
            "private_mb": round(report.private_mb, 1) if report else None,
            "in_flight": self.load,
            "served": self.served_this_generation,
            "headers": len(self.headers),
            "sessions": self.sessions,
        }
