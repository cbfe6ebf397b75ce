"""The pool's scheduler: one thread that owns every queue, slot and pending request.

Callers (any thread, or an event loop) only put *events* on a queue: a new request, a finished
task, a shutdown. The dispatcher thread handles them in order and then *pumps*: every slot with
room gets a batch chosen by `_take`. Because only this thread touches slots and queues, the
scheduling code needs no locks; statistics are published under a small lock for `stats()`.

Routing (`_take`): a session's requests go to the session's slot (placed at its first request,
see `_place`). Other requests wait in one queue per import header (plus one for commands
without a header); a free slot serves, in order of preference, the oldest request whose header
it already holds (or that has none), then the oldest whose header no slot holds (so headers
spread over slots instead of every slot importing every header), then the oldest whose header
is worth importing there (the slots holding it would need longer for its queue than an import
takes). A free slot with nothing to take may *steal* a session from a slot that is stuck or far
behind (`_steal_for`), when waiting there would cost more than rebuilding the session's states
(and importing their header) on the free slot.

Batches: a slot keeps `depth` tasks in flight; a task carries up to ``ceil(pending /
(slots x depth))`` requests (at most `max_batch`, and about 50 ms of work), so a lone request
goes alone (low latency) and a backlog travels in batches that the worker pipelines through its
REPL (high throughput).

Each of these decisions is a pure function of plain numbers in `_scheduling`; this module
gathers the numbers from its slots and queues and acts on the answer.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import queue
import threading
import time
from collections import Counter, OrderedDict, deque
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from leanpool._backends import WorkerFactory, is_worker_death
from leanpool._channel import SKIPPED
from leanpool._errors import (
    LeanPoolError,
    PoolShutdownError,
    WorkerCrashedError,
    retry_on_fresh_repl,
)
from leanpool._futures import PoolFuture, callback_runner, mark_dispatcher_thread
from leanpool._memory_budget import UNMEASURED_GROWTH, MemoryBudget, SlotMemory
from leanpool._routing import HeaderSplit
from leanpool._scheduling import (
    HeaderQueue,
    SlotLoad,
    batch_limit,
    choose_queue,
    import_estimate,
    place_session,
    rebuild_cost,
    steal_gain,
    updated_service_estimate,
)
from leanpool._slot import Slot, SlotState, Task
from leanpool._stats import StatsBook, result_kind
from leanpool._worker import WorkerCounts, WorkerReport, WorkItem, WorkResult
from leanpool.protocol import BaseREPLQuery

if TYPE_CHECKING:
    from leanpool._config import LeanREPLConfig
    from leanpool._pool_session import SessionRecord

logger = logging.getLogger("leanpool")

HeaderKey = tuple[str, ...] | None
_seq = itertools.count(1)
_STEAL_SCAN = 512  # waiting session requests looked at per steal attempt
_WAKE_SECONDS = 0.25  # the dispatcher looks at its workers' heartbeats at least this often
_BUDGET_REFRESH_SECONDS = 0.02  # a memory-budget estimate is reused this long by dispatch
_MAX_REQUEUES = 5  # lost workers a request survives when its REPL was not serving it


def next_seq() -> int:
    return next(_seq)


@dataclass
class Pending:
    """One submitted request (and the futures of identical requests folded into it)."""

    seq: int
    request: BaseREPLQuery
    timeout: float | None
    futures: list[PoolFuture]
    header: HeaderSplit | None = None
    session: SessionRecord | None = None
    key: str | None = None  # deduplication key
    submitted: float = field(default_factory=time.monotonic)
    worker_deaths: int = 0  # deaths of a worker while its REPL served this request
    requeues: int = 0  # times it went back to the queue because its worker was lost
    fresh_repl_retries: int = 0  # times it ran again after its REPL failed for the machine
    urgent: bool = False  # queued ahead of what waits
    task: Task | None = None  # the task it was last sent in (its slot, its worker's generation)
    ticket: int = 0  # its number on that worker's control page (0: not on a worker now)
    id_base: int | None = None  # session requests: their states get ids -(id_base | k)

    def __post_init__(self) -> None:
        for future in self.futures:
            future.owner = self


# ---------------------------------------------------------------- events
# What callers (any thread) and task-completion callbacks put on the dispatcher's queue.
@dataclass(frozen=True)
class _Submit:
    pending: Pending


@dataclass(frozen=True)
class _TaskDone:
    slot_index: int
    task: Task


@dataclass(frozen=True)
class _Cancel:
    future: PoolFuture


@dataclass(frozen=True)
class _CloseSession:
    session: SessionRecord


@dataclass(frozen=True)
class _Publish:
    published: threading.Event  # set once a fresh stats snapshot is out


@dataclass(frozen=True)
class _Shutdown:
    cancel_futures: bool
    kill: bool


_Event = _Submit | _TaskDone | _Cancel | _CloseSession | _Publish | _Shutdown


@dataclass
class DispatcherOptions:
    workers: int
    depth: int = 2
    max_batch: int = 64
    max_headers_per_worker: int = 8
    max_tasks_per_worker: int | None = None
    worker_death_retries: int = 1
    # runs again on a fresh REPL for a request whose REPL failed for infrastructure reasons
    infrastructure_retries: int = 1
    result_cache_size: int = 4096
    worker_grace: float = 10.0  # seconds without a sign of life before a worker is replaced
    memory_budget_mb: float | None = None  # the workers' and REPLs' total (see _memory_budget)


class Dispatcher:
    def __init__(
        self,
        config: LeanREPLConfig,
        server_options: dict[str, Any],
        options: DispatcherOptions,
        factory: WorkerFactory,
    ) -> None:
        self.options = options
        self.stats = StatsBook()
        self._events: queue.SimpleQueue[_Event] = queue.SimpleQueue()
        self.slots = [
            Slot(
                index=i,
                factory=factory,
                config=config,
                server_options=server_options,
                depth=options.depth,
                max_headers=options.max_headers_per_worker,
                max_tasks=options.max_tasks_per_worker,
                first_recycle_at=_staggered(options.max_tasks_per_worker, i, options.workers),
            )
            for i in range(options.workers)
        ]
        self._queues: OrderedDict[HeaderKey, deque[Pending]] = OrderedDict()
        self._in_flight_keys: dict[str, Pending] = {}
        self._results: OrderedDict[str, Any] = OrderedDict()
        self._closing = False
        self._service_estimate: float | None = None  # seconds per request in a worker
        self._session_moves = 0
        self._retried = 0  # requests sent again because their worker was lost
        # per machine (Ray node id, else host name): requests served, workers lost there
        self._nodes: dict[str, Counter[str]] = {}
        self._node_hosts: dict[str, str] = {}
        self._last_publish = 0.0
        self._budget = (
            MemoryBudget(options.memory_budget_mb) if options.memory_budget_mb is not None else None
        )
        self._budget_total = 0.0  # the last estimate of the pool's memory, in MB
        self._budget_checked = 0.0  # when it was made (monotonic)
        self._growth_mb: deque[float] = deque(maxlen=32)  # per request, in recent tasks
        self._room: int | None = None  # requests the budget lets `_pump` send now
        self._cancel_queued = False
        self._next_watch = 0.0
        self._kill = False
        self._done = threading.Event()
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="leanpool-dispatcher", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._start_error is not None:
            raise self._start_error

    # ================================================================ any thread
    def submit(self, pending: Pending) -> None:
        if self._closing:
            raise PoolShutdownError("The pool is shut down; it accepts no new requests.")
        self.stats.submitted(1)
        self._events.put(_Submit(pending))

    def shutdown(self, wait: bool, cancel_futures: bool, kill: bool = False) -> None:
        self._closing = True
        self._events.put(_Shutdown(cancel_futures, kill))
        if wait and threading.current_thread() is not self._thread:
            self._done.wait()

    @property
    def closing(self) -> bool:
        return self._closing

    def refresh_stats(self, timeout: float = 1.0) -> None:
        """Have the dispatcher publish a fresh snapshot now (when it is still running)."""
        if self._done.is_set() or threading.current_thread() is self._thread:
            return
        published = threading.Event()
        self._events.put(_Publish(published))
        published.wait(timeout)

    def close_session(self, session: SessionRecord) -> None:
        """A caller closed a session: unbind it from its slot and forget its states."""
        self._events.put(_CloseSession(session))

    def future_cancelled(self, future: PoolFuture) -> None:
        """A caller cancelled `future` (any thread): its worker may skip the request."""
        self._events.put(_Cancel(future))

    # ================================================================ dispatcher thread
    def _run(self) -> None:
        mark_dispatcher_thread()
        try:
            for slot in self.slots:
                self._start_slot(slot)
        except BaseException as exc:  # e.g. a backend that cannot start workers
            self._start_error = exc
            self._started.set()
            self._done.set()
            return
        self._started.set()
        try:
            self._loop()
        except BaseException:  # pragma: no cover - a bug; never leave callers hanging
            logger.exception("leanpool dispatcher crashed")
            self._fail_everything(LeanPoolError("The pool's dispatcher crashed; see the log."))
        finally:
            self._stop_slots()
            if self._budget is not None:
                self._budget.close()
            self._done.set()

    def _loop(self) -> None:
        while True:
            try:
                event = self._events.get(timeout=_WAKE_SECONDS)
            except queue.Empty:
                event = None
            while event is not None:
                self._handle(event)
                try:
                    event = self._events.get_nowait()
                except queue.Empty:
                    event = None
            if self._kill:
                self._fail_everything(PoolShutdownError("The pool was shut down abruptly."))
                return
            now = time.monotonic()
            if now >= self._next_watch:
                self._next_watch = now + _WAKE_SECONDS
                self._watch_workers(now)
                self._watch_placement(now)
                self._watch_budget(now)
                callback_runner().unstick()
            self._pump()
            if now - self._last_publish > 0.05:
                self._publish()
                self._last_publish = now
            if self._closing and self._idle():
                return

    def _handle(self, event: _Event) -> None:
        if isinstance(event, _Submit):
            self._accept(event.pending)
        elif isinstance(event, _TaskDone):
            self._task_done(self.slots[event.slot_index], event.task)
        elif isinstance(event, _Cancel):
            self._cancelled(event.future)
        elif isinstance(event, _CloseSession):
            self._close_session(event.session)
        elif isinstance(event, _Publish):
            self._publish()
            event.published.set()
        else:
            self._closing = True
            if event.cancel_futures:
                self._cancel_all_queued()
            if event.kill:
                self._kill = True

    # ---------------------------------------------------------------- accepting
    def _accept(self, pending: Pending) -> None:
        if self._cancel_queued:
            for future in pending.futures:
                future.cancel()
            return
        if pending.key is not None:
            if pending.key in self._results:
                self._results.move_to_end(pending.key)
                result = self._results[pending.key]
                self.stats.deduplicated(len(pending.futures), result_kind(result))
                self._settle(pending, result, record=False)
                return
            leader = self._in_flight_keys.get(pending.key)
            if leader is not None:
                leader.futures.extend(pending.futures)
                for future in pending.futures:
                    future.owner = leader
                self.stats.deduplicated(len(pending.futures))
                return
            self._in_flight_keys[pending.key] = pending
        if pending.header is not None:
            self.stats.header_requests()
        self._enqueue(pending, front=pending.urgent)

    def _enqueue(self, pending: Pending, front: bool = False) -> None:
        """Queue a request: on its session's slot, else in the queue of its import header."""
        session = pending.session
        if session is not None:
            if session.slot_index is None:
                self._place(session, pending)
            assert session.slot_index is not None
            waiting = self.slots[session.slot_index].pinned
        else:
            key = pending.header.key if pending.header is not None else None
            found = self._queues.get(key)
            waiting = found if found is not None else self._queues.setdefault(key, deque())
        if front:
            waiting.appendleft(pending)
        else:
            waiting.append(pending)

    def _place(self, session: SessionRecord, first: Pending) -> None:
        """Bind a new session to a slot (`place_session`) at its first request."""
        key = first.header.key if first.header is not None else None
        running = [slot for slot in self.slots if slot.state is not SlotState.STARTING]
        loads = [
            SlotLoad(slot.index, slot.sessions, key is not None and slot.holds(key), slot.load)
            for slot in running or self.slots  # not on a worker that has no place yet
        ]
        slot = self.slots[place_session(loads)]
        self._bind(session, slot)
        if key is not None:
            slot.note_header(key)  # later sessions with this header see it there already

    def _close_session(self, session: SessionRecord) -> None:
        if session.slot_index is not None and not session.closed:
            slot = self.slots[session.slot_index]
            slot.sessions -= 1
            slot.closed_bases.update(session.bases())  # its worker drops them with the next task
        session.close()

    @staticmethod
    def _bind(session: SessionRecord, slot: Slot) -> None:
        session.slot_index = slot.index
        slot.sessions += 1

    # ---------------------------------------------------------------- dispatching
    def _pump(self) -> None:
        while True:
            progressed = False
            self._room = self._budget_room()
            if self._room == 0:
                return
            for slot in sorted(self.slots, key=lambda s: s.load):
                if slot.accepting and self._room != 0:
                    batch = self._take(slot)
                    if not batch and self._steal_for(slot):
                        batch = self._take(slot)
                    if batch:
                        self._send(slot, batch)
                        progressed = True
                        if self._room is not None:
                            self._room = max(0, self._room - len(batch))
            if not progressed:
                return

    def _waiting(self) -> int:
        """Requests waiting for a worker: in the header queues and pinned to slots."""
        return sum(len(q) for q in self._queues.values()) + sum(len(s.pinned) for s in self.slots)

    def _batch_limit(self) -> int:
        return batch_limit(
            self._waiting(),
            len(self.slots),
            self.options.depth,
            self.options.max_batch,
            self._service_estimate,
        )

    def _take(self, slot: Slot) -> list[Pending]:
        limit = self._batch_limit()
        if slot.quota is not None:
            limit = min(limit, slot.quota)
        if self._room is not None:  # the memory budget's room
            limit = min(limit, self._room)
        batch: list[Pending] = []
        while slot.pinned and len(batch) < limit:
            pending = slot.pinned.popleft()
            if self._claim(pending):
                batch.append(pending)
        while len(batch) < limit:
            chosen = self._choose_queue(slot)
            if chosen is None:
                break
            key: HeaderKey = chosen.key  # type: ignore[assignment]
            waiting = self._queues[key]
            while waiting and len(batch) < limit:
                pending = waiting.popleft()
                if self._claim(pending):
                    batch.append(pending)
            if not waiting:
                del self._queues[key]
            if batch:
                break  # one header per batch keeps the worker's work simple to reason about
        return batch

    def _choose_queue(self, slot: Slot) -> HeaderQueue | None:
        live = [other for other in self.slots if other.state is SlotState.UP]
        queues = [
            HeaderQueue(
                key=key,
                oldest=waiting[0].seq,
                length=len(waiting),
                held_here=key is None or slot.holds(key),
                holders=0 if key is None else sum(1 for other in live if other.holds(key)),
            )
            for key, waiting in self._queues.items()
            if waiting
        ]
        return choose_queue(queues, self._service_estimate, self._measured_import_seconds())

    def _steal_for(self, thief: Slot) -> bool:
        """Move one session whose requests wait on another slot to `thief`, which has nothing
        else to do, when that pays: when the session's first waiting request would wait longer
        there (the other worker's estimated remaining work, `Slot.busy_for`, plus the requests
        ahead of it) than on `thief` (its own remaining work, which grows while a task of its
        overruns, so a stuck thief steals nothing) plus rebuilding the states the request names
        from the session's recipes (`_rebuild_cost`)."""
        if self._closing:
            return False
        now = time.monotonic()
        estimate = self._service_estimate
        per_request = estimate or 0.0
        thief_busy = thief.busy_for(per_request, now)
        best: tuple[float, SessionRecord, Slot] | None = None
        for victim in self.slots:
            if victim is thief or not victim.pinned:
                continue
            if victim.state is SlotState.STARTING:
                busy = math.inf  # a worker waiting for a place (a lost node's): none to expect
            elif estimate is None:
                continue  # nothing measured yet to weigh a move with
            else:
                busy = victim.busy_for(per_request, now) if victim.state is SlotState.UP else 0.0
            firsts: dict[int, tuple[int, Pending]] = {}
            for position, pending in enumerate(itertools.islice(victim.pinned, _STEAL_SCAN)):
                session = pending.session
                if session is not None and id(session) not in firsts:
                    firsts[id(session)] = (position, pending)
            for position, pending in firsts.values():
                assert pending.session is not None
                rebuild = self._rebuild_cost(pending, thief, per_request)
                gain = steal_gain(busy, position, per_request, thief_busy, rebuild)
                if gain > 0 and (best is None or gain > best[0]):
                    best = (gain, pending.session, victim)
        if best is None:
            return False
        _gain, session, victim = best
        moved = [p for p in victim.pinned if p.session is session]
        victim.pinned = deque(p for p in victim.pinned if p.session is not session)
        thief.pinned.extend(moved)
        victim.sessions -= 1
        self._bind(session, thief)
        self._session_moves += 1
        logger.debug(
            "slot %d took session %d over from slot %d",
            thief.index,
            session.session_id,
            victim.index,
        )
        return True

    def _rebuild_cost(self, pending: Pending, slot: Slot, per_request: float) -> float:
        """Seconds `slot` would need before it can run `pending`, a session request whose
        states it lacks (`rebuild_cost`)."""
        assert pending.session is not None
        chain = pending.session.chain(pending.request)
        headers = {r.header.key for r in chain if r.header is not None}
        if pending.header is not None:
            headers.add(pending.header.key)
        missing = sum(1 for key in headers if not slot.holds(key))
        return rebuild_cost(len(chain), missing, per_request, import_estimate(*self._imports()))

    def _imports(self) -> tuple[float, int]:
        """Seconds the workers spent importing headers in front of requests, and how many."""
        seconds, imports = 0.0, 0
        for slot in self.slots:
            slot_seconds, slot_imports = slot.import_timing()
            seconds, imports = seconds + slot_seconds, imports + slot_imports
        return seconds, imports

    def _measured_import_seconds(self) -> float | None:
        seconds, imports = self._imports()
        return seconds / imports if imports else None

    def _claim(self, pending: Pending) -> bool:
        """Drop the request's cancelled futures; False when every one of them was cancelled."""
        live = [f for f in pending.futures if not f.cancelled()]
        self.stats.cancelled(len(pending.futures) - len(live))
        if not live:
            if pending.key is not None and self._in_flight_keys.get(pending.key) is pending:
                del self._in_flight_keys[pending.key]
            return False
        pending.futures = live
        return True

    def _cancelled(self, future: PoolFuture) -> None:
        """Every caller of a request gave it up: have its worker skip it if not started."""
        pending = future.owner
        if not isinstance(pending, Pending) or not all(f.cancelled() for f in pending.futures):
            return
        if pending.key is not None and self._in_flight_keys.get(pending.key) is pending:
            del self._in_flight_keys[pending.key]  # a new identical request runs on its own
        if pending.ticket and pending.task is not None:
            self.slots[pending.task.slot_index].cancel(pending)

    def _send(self, slot: Slot, batch: list[Pending]) -> None:
        items: list[WorkItem] = []
        for pending in batch:
            pending.ticket = slot.next_ticket()
            if not any(f.sent for f in pending.futures):  # its first send: how long it queued
                self.stats.waited(time.monotonic() - pending.submitted, len(pending.futures))
            for future in pending.futures:
                future.sent = True
            recipes: tuple[Any, ...] = ()
            if pending.session is not None:
                recipes = pending.session.recipes_to_send(pending.request, slot)
            items.append(
                WorkItem(
                    seq=pending.seq,
                    request=pending.request,
                    timeout=pending.timeout,
                    header=pending.header,
                    id_base=pending.id_base,
                    recipes=recipes,
                    ticket=pending.ticket,
                    forget=tuple(sorted(slot.closed_bases)) if not items else (),
                )
            )
        slot.closed_bases.clear()
        try:
            task = slot.submit(batch, items)
        except Exception as exc:  # the worker is unusable: treat it as dead, retry the batch
            logger.warning("slot %d: submit failed (%s); replacing its worker", slot.index, exc)
            self._worker_died(slot, exc)
            self._requeue(batch, exc)
            return
        self._watch(slot, task)

    def _watch(self, slot: Slot, task: Task) -> None:
        index = slot.index

        def done(_future: Future[Any]) -> None:
            self._events.put(_TaskDone(index, task))

        task.future.add_done_callback(done)

    def _start_slot(self, slot: Slot) -> None:
        """Start the slot's next worker and warm it up (process, imports, REPL) right away."""
        slot.start()
        try:
            self._watch(slot, slot.warm_up())
        except Exception as exc:  # reported by the first real task instead
            logger.debug("slot %d: warm-up not sent (%s)", slot.index, exc)

    # ---------------------------------------------------------------- completion
    def _task_done(self, slot: Slot, task: Task) -> None:
        if slot.in_flight.get(task.task_id) is not task:
            return  # a task of a worker we already gave up on
        try:
            results, report = task.future.result()
        except BaseException as exc:
            if is_worker_death(exc) or slot.generation != task.generation:
                self._worker_died(slot, exc)
            else:
                slot.finished(task, None)
                error = LeanPoolError(f"The pool worker failed unexpectedly: {exc!r}")
                for pending in task.pendings:
                    self._settle(pending, error)
                if slot.ready_to_recycle:
                    self._replace(slot, "max_tasks")
            return
        self._measure_service(slot, report, results)
        self._note_growth(slot, report, len(results))
        slot.finished(task, report)
        self._node_tally(report)["served"] += len(results)
        if not task.pendings:  # a warm-up
            return
        by_seq = {pending.seq: pending for pending in task.pendings}
        for work in results:
            answered = by_seq.pop(work.seq, None)
            if answered is not None:
                self._settle(answered, work.value)
        for pending in by_seq.values():  # defensive: a worker must answer every item
            self._settle(pending, LeanPoolError("The worker returned no result for this request."))
        if slot.ready_to_recycle:
            self._replace(slot, "max_tasks")

    def _measure_service(self, slot: Slot, report: WorkerReport, results: list[WorkResult]) -> None:
        """Update the running estimate of a request's time in a worker, imports excluded."""
        if not results:
            return
        self.stats.worked(max(r.seconds for r in results))
        before = (
            slot.report.counts.import_seconds
            if slot.report and slot.report.pid == report.pid
            else 0.0
        )
        busy = max(r.seconds for r in results) - max(0.0, report.counts.import_seconds - before)
        self._service_estimate = updated_service_estimate(
            self._service_estimate, busy, len(results)
        )

    def _worker_died(
        self, slot: Slot, error: BaseException, reason: str = "worker_died", charged: bool = True
    ) -> None:
        """`charged`: whether the request its REPL served may be to blame (False: the pool
        ended the worker itself, and charges no request)."""
        tasks = sorted(slot.in_flight.values(), key=lambda t: t.task_id)
        slot.in_flight.clear()
        serving = slot.serving_ticket() if charged else 0  # before the worker is gone
        if slot.report is not None:
            self._node_tally(slot.report)["worker_deaths"] += 1
        self._replace(slot, reason)
        pendings = [p for task in tasks for p in task.pendings]
        self._requeue(pendings, error, serving)

    def _watch_workers(self, now: float) -> None:
        """Replace workers that stopped answering (their requests are retried once)."""
        for slot in self.slots:
            if not slot.in_flight:
                continue
            problem = slot.unresponsive(now, self.options.worker_grace)
            if problem is None:
                continue
            logger.warning("slot %d: worker unresponsive (%s); replacing it", slot.index, problem)
            error = WorkerCrashedError(
                f"The pool worker stopped responding ({problem}); it was killed.",
                returncode=None,
                stderr_tail="",
            )
            self._worker_died(slot, error, "unresponsive")

    # ---------------------------------------------------------------- memory budget
    def _slot_memory(self, slot: Slot) -> SlotMemory:
        assert self._budget is not None
        report = slot.report
        busy = bool(slot.in_flight)
        if report is None:
            return SlotMemory(slot.index, busy, 0.0, 0.0)
        shared = max(0.0, report.pss_mb - report.private_mb)
        if slot.worker is not None and slot.worker.control is not None:  # a local worker
            private = self._budget.private_mb(report.pid, report.repl_pid)
        else:
            private = report.private_mb
        return SlotMemory(slot.index, busy, private, shared)

    def _budget_estimate(self, now: float) -> tuple[float, list[SlotMemory]]:
        assert self._budget is not None
        memories = [self._slot_memory(slot) for slot in self.slots]
        self._budget_total = self._budget.total_mb(memories)
        self._budget_checked = now
        return self._budget_total, memories

    def _budget_room(self) -> int | None:
        """How many more requests may be sent now (None: any number). Each request in flight
        may still grow its REPL by the most a request grew one lately, so the room is what is
        left below the high-water mark after those, in such requests. With nothing running
        one request always may go: work must go on, and a request too large for a fresh REPL
        meets its own limit."""
        if self._budget is None:
            return None
        now = time.monotonic()
        if now - self._budget_checked >= _BUDGET_REFRESH_SECONDS:
            self._budget_estimate(now)
        running = sum(len(t.pendings) for slot in self.slots for t in slot.in_flight.values())
        if self._growth_mb:
            growth = max(self._growth_mb)
        else:  # nothing measured yet: assume the worst a budget can be asked to hold
            growth = self._budget.budget_mb * UNMEASURED_GROWTH
        free = self._budget.high_mb - self._budget_total - running * growth
        room: int | None
        if free <= 0:
            room = 0
        elif growth > 0:
            room = int(free // growth)
        else:
            room = None
        if room == 0:
            if not running and not self._replace_for_budget(now):
                return 1  # nothing to free: a fresh REPL is what there is
            self._budget.holds += 1
        return room

    def _note_growth(self, slot: Slot, report: WorkerReport, requests: int) -> None:
        """How much one request grew the REPL's private memory (the budget's forecast)."""
        before = slot.report
        if self._budget is None or before is None or not requests:
            return
        if before.pid != report.pid or before.repl_pid != report.repl_pid:
            return  # another process: nothing to compare
        self._growth_mb.append(max(0.0, (report.private_mb - before.private_mb) / requests))

    def _watch_budget(self, now: float) -> None:
        if self._budget is not None and not self._closing:
            self._replace_for_budget(now)

    def _replace_for_budget(self, now: float) -> bool:
        """Near the budget, replace the REPL that frees the most (`MemoryBudget.victim`);
        whether one was."""
        assert self._budget is not None
        total, memories = self._budget_estimate(now)
        index = self._budget.victim(memories, total)
        if index is None:
            return False
        slot = self.slots[index]
        logger.info(
            "memory budget: %.0f of %.0f MB; replacing worker %d (%.0f MB private)",
            total,
            self._budget.budget_mb,
            index,
            memories[index].private_mb,
        )
        if slot.in_flight:  # past the budget with no idle worker: its requests run again
            error = LeanPoolError("The pool replaced this worker to stay within its memory budget.")
            self._worker_died(slot, error, "memory_budget", charged=False)
        else:
            self._replace(slot, "memory_budget")
        self._budget_checked = 0.0  # estimate again before sending anything
        live = {
            pid for s in self.slots if s.report for pid in (s.report.pid, s.report.repl_pid) if pid
        }
        self._budget.forget_gone(live)
        return True

    def _watch_placement(self, now: float) -> None:
        """Fail the waiting requests once no worker is up and one has waited for a place to
        run (a Ray node with the resources it asked for) longer than its `placement_timeout`.

        Those workers keep waiting: requests sent later wait for them too, up to the same
        bound, and run as soon as one of them is placed. While any worker is up, requests
        wait for it instead (and sessions of unplaced workers move to it, `_steal_for`).
        """
        overdue = [
            (slot, waited) for slot in self.slots if (waited := slot.waiting_for_placement(now))
        ]
        if not overdue or any(s.state in (SlotState.UP, SlotState.DRAINING) for s in self.slots):
            return
        waiting = [p for q in self._queues.values() for p in q] + [
            p for slot in self.slots for p in slot.pinned
        ]
        if not waiting:
            return
        slot, waited = overdue[0]
        describe = getattr(slot.worker, "placement", None)
        error = LeanPoolError(
            f"No pool worker could start: none of the {len(self.slots)} worker(s) has been "
            f"placed after {waited:.0f} s (placement_timeout); each asked for "
            f"{describe() if describe else 'a worker'}. Check that the cluster has a node with "
            "those free resources (`ray status`), or lower what each worker asks for."
        )
        logger.warning("%s %d waiting request(s) failed.", error, len(waiting))
        self._queues.clear()
        for other in self.slots:
            other.pinned.clear()
        for pending in waiting:
            self._settle(pending, error)

    def _memory_totals(self) -> dict[str, float]:
        """The REPLs' memory summed over workers up now, by measure, and the budget's book
        (see `PoolStats.memory`)."""
        reports = [slot.report for slot in self.slots if slot.report is not None]
        totals = {
            "rss_mb": round(sum(r.rss_mb for r in reports), 1),
            "pss_mb": round(sum(r.pss_mb for r in reports), 1),
            "private_mb": round(sum(r.private_mb for r in reports), 1),
        }
        if self._budget is not None:
            totals["budget_mb"] = round(self._budget.budget_mb, 1)
            totals["budget_total_mb"] = round(self._budget_total, 1)
            totals["budget_peak_mb"] = round(self._budget.peak_mb, 1)
            totals["budget_holds"] = self._budget.holds
        return totals

    def _node_tally(self, report: WorkerReport) -> Counter[str]:
        key = report.node or report.host
        self._node_hosts[key] = report.host
        return self._node_tally_for(key)

    def _node_tally_for(self, key: str) -> Counter[str]:
        tally = self._nodes.get(key)
        if tally is None:
            tally = self._nodes[key] = Counter(served=0, worker_deaths=0)
        return tally

    def _nodes_snapshot(self) -> dict[str, dict[str, Any]]:
        """Per machine: its host, the workers up there now, requests served, workers lost."""
        up: Counter[str] = Counter()
        for slot in self.slots:
            if slot.report is not None:
                key = slot.report.node or slot.report.host
                self._node_hosts[key] = slot.report.host
                self._node_tally_for(key)
                if slot.state in (SlotState.UP, SlotState.DRAINING):
                    up[key] += 1
        return {
            key: {"host": self._node_hosts[key], "workers": up[key], **tally}
            for key, tally in self._nodes.items()
        }

    def _replace(self, slot: Slot, reason: str) -> None:
        slot.retire(reason)
        self._start_slot(slot)

    def _requeue(
        self, pendings: list[Pending], error: BaseException, serving: int | None = None
    ) -> None:
        """Send the requests of a lost worker again; a death is charged to one request only.

        `serving` is the ticket of the request the worker's REPL was serving when it was lost
        (0: none; None: not known, as with a Ray actor: then every request is charged). The
        charged request runs again once more; the others, which finished (their results went
        with the worker) or had not started, go back without a charge, up to `_MAX_REQUEUES`
        times (so a request that kills its worker while no REPL serves it cannot loop).
        """
        for pending in reversed(pendings):
            charged = serving is None or (serving != 0 and pending.ticket == serving)
            pending.ticket = 0
            pending.requeues += 1
            if charged:
                pending.worker_deaths += 1
            if pending.worker_deaths > self.options.worker_death_retries:
                self._settle(
                    pending,
                    WorkerCrashedError(
                        f"The pool worker died while running this request ({error!r}), "
                        f"{pending.worker_deaths} times.",
                        returncode=None,
                        stderr_tail="",
                    ),
                )
            elif pending.requeues > _MAX_REQUEUES:
                self._settle(
                    pending,
                    WorkerCrashedError(
                        f"The pool lost the worker this request was sent to {pending.requeues} "
                        f"times (the last: {error!r}).",
                        returncode=None,
                        stderr_tail="",
                    ),
                )
            else:
                self._retried += 1
                self._enqueue(pending, front=True)

    def _settle(self, pending: Pending, result: Any, record: bool = True) -> None:
        """Deliver the request's result (a response or an exception) to each future, once."""
        live = sum(1 for future in pending.futures if not future.cancelled())
        if (
            live
            and retry_on_fresh_repl(result)
            and pending.fresh_repl_retries < self.options.infrastructure_retries
            and not self._closing
        ):  # its REPL was killed from outside, or would not start: not the request's doing
            pending.fresh_repl_retries += 1
            pending.ticket = 0
            self._retried += 1
            self._enqueue(pending, front=True)
            return
        if result is SKIPPED:  # its worker skipped it: every caller had cancelled it
            pending.ticket = 0
            if live:  # defensive: one still wants it
                self._enqueue(pending, front=True)
                return
            result = None
        if pending.key is not None and self._in_flight_keys.get(pending.key) is pending:
            del self._in_flight_keys[pending.key]
        self.stats.cancelled(len(pending.futures) - live)
        if result is None:
            return
        is_error = isinstance(result, BaseException)
        if record:
            if pending.session is not None and not is_error:
                pending.session.record(pending, result)
            if pending.key is not None and not is_error and self.options.result_cache_size:
                self._results[pending.key] = result
                while len(self._results) > self.options.result_cache_size:
                    self._results.popitem(last=False)
            if live:
                self.stats.finished(result_kind(result), time.monotonic() - pending.submitted, live)
        for future in pending.futures:
            with contextlib.suppress(InvalidStateError):
                if is_error:
                    future.set_exception(result)
                else:
                    future.set_result(result)

    # ---------------------------------------------------------------- ending
    def _idle(self) -> bool:
        """Nothing left to answer (a warm-up still in flight is not waited for)."""
        return (
            not any(self._queues.values())
            and all(not s.pinned and not s.load for s in self.slots)
            and self._events.empty()
        )

    def _cancel_all_queued(self) -> None:
        self._cancel_queued = True
        cancelled = 0
        for waiting in self._queues.values():
            for pending in waiting:
                cancelled += self._cancel(pending)
        self._queues.clear()
        for slot in self.slots:
            for pending in slot.pinned:
                cancelled += self._cancel(pending)
            slot.pinned.clear()
        self.stats.cancelled(cancelled)

    def _cancel(self, pending: Pending) -> int:
        if pending.key is not None and self._in_flight_keys.get(pending.key) is pending:
            del self._in_flight_keys[pending.key]
        for future in pending.futures:
            if not future.cancel():
                with contextlib.suppress(InvalidStateError):
                    future.set_exception(PoolShutdownError("The pool was shut down."))
        return len(pending.futures)

    def _fail_everything(self, error: LeanPoolError) -> None:
        self._cancel_all_queued()
        for slot in self.slots:
            for task in slot.in_flight.values():
                for pending in task.pendings:
                    for future in pending.futures:
                        with contextlib.suppress(InvalidStateError):
                            future.set_exception(error)
            slot.in_flight.clear()
        # requests that arrived meanwhile
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                break
            if isinstance(event, _Submit):
                self._cancel(event.pending)
            elif isinstance(event, _Publish):
                event.published.set()  # nobody waits out its timeout for a pool that is gone

    def _stop_slots(self) -> None:
        graceful = not self._kill
        for slot in self.slots:  # ask them all first, then wait: they end in parallel
            with contextlib.suppress(Exception):
                if slot.worker is not None:
                    if graceful and not slot.in_flight:
                        slot.worker.shutdown(wait=False)
                    else:
                        slot.worker.kill(wait=False)
        for slot in self.slots:
            with contextlib.suppress(Exception):
                slot.stop(kill=not graceful, wait=True)
        self._publish()

    def _publish(self) -> None:
        counts = sum((s.counts() for s in self.slots), WorkerCounts())
        self.stats.publish(
            queued=self._waiting(),
            running=sum(len(task.pendings) for s in self.slots for task in s.in_flight.values()),
            slots=[s.snapshot() for s in self.slots],
            nodes=self._nodes_snapshot(),
            memory=self._memory_totals(),
            restarts=Counter(counts.restarts),
            recycles=sum((s.recycles for s in self.slots), Counter()),
            header_imports=counts.header_imports,
            session_moves=self._session_moves,
            retried=self._retried,
            states_rebuilt=counts.states_rebuilt,
            states_unpickled=counts.states_unpickled,
            import_seconds=counts.import_seconds,
            timed_imports=counts.timed_imports,
        )


def _staggered(max_tasks: int | None, index: int, workers: int) -> int | None:
    """First recycle point of slot `index`: spread so that workers do not restart together."""
    if max_tasks is None:
        return None
    return max(1, max_tasks - (index * max_tasks) // max(1, workers))
