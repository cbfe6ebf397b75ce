"""Batch verification as a context manager: submit many requests, get every verdict on exit.

    with pool.batch(progress=True) as batch:
        for item in dataset:
            batch.submit(item.code, id=item.id)
    print(batch.summary())

A verdict is one of: ``passed`` (Lean accepted it: no error message, and no ``sorry`` unless
``allow_sorry``; a tactic step passes only when its proof is ``Completed``), ``lean_error``
(Lean rejected it, or the REPL refused the request) and ``fault`` (no answer from Lean: timeout,
crash, memory limit, ...). Only ``passed`` means verified.
"""

from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from leanpool.protocol import BaseREPLQuery, CommandResponse, LeanError, ProofStepResponse

if TYPE_CHECKING:
    from leanpool._pool import LeanPool
    from leanpool._progress import ProgressTracker

Verdict = Literal["passed", "lean_error", "fault"]


def verdict_of(outcome: Any, allow_sorry: bool = False) -> Verdict:
    """Classify one result (see the module docstring)."""
    if isinstance(outcome, BaseException):
        return "fault"
    if isinstance(outcome, LeanError):
        return "lean_error"
    if isinstance(outcome, ProofStepResponse):
        ok = outcome.proof_status == "Completed" and not outcome.has_errors()
        return "passed" if ok else "lean_error"
    if isinstance(outcome, CommandResponse):
        return "passed" if outcome.lean_code_is_valid(allow_sorry=allow_sorry) else "lean_error"
    return "lean_error"


@dataclass
class BatchResult:
    """One submitted request and what became of it."""

    index: int
    id: Any
    request: BaseREPLQuery | str
    result: Any = None  # the response, or the exception
    seconds: float | None = None  # submit to result
    verdict: Verdict | None = None

    @property
    def passed(self) -> bool:
        return self.verdict == "passed"


@dataclass(frozen=True)
class BatchSummary:
    total: int
    passed: int
    lean_error: int
    fault: int
    faults_by_kind: dict[str, int] = field(default_factory=dict)
    wall_seconds: float = 0.0
    latency_mean: float | None = None
    latency_p50: float | None = None
    latency_p99: float | None = None
    latency_max: float | None = None

    @property
    def throughput(self) -> float:
        return self.total / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def __str__(self) -> str:
        return (
            f"{self.total} requests: {self.passed} passed, {self.lean_error} failed in Lean, "
            f"{self.fault} faults, in {self.wall_seconds:.2f} s ({self.throughput:.1f}/s)"
        )


class Batch:
    """Collects requests on a pool; leaving the ``with`` block waits for all of them."""

    def __init__(self, pool: LeanPool, progress: bool = False, allow_sorry: bool = False) -> None:
        self.pool = pool
        self.allow_sorry = allow_sorry
        self.results: list[BatchResult] = []
        self._futures: list[Future[Any]] = []
        self._submitted: list[float] = []  # when each was submitted (monotonic)
        self._lock = threading.Lock()
        self._progress_wanted = progress
        self._tracker: ProgressTracker | None = None
        self._started = time.monotonic()
        self._finished: float | None = None

    def submit(
        self, request: BaseREPLQuery | str, *, id: Any = None, timeout: float | None = None
    ) -> Future[Any]:
        """Queue one request; `id` is yours (kept in `results`), default: its index."""
        submitted = time.monotonic()
        future = self.pool._submit_safely(request, timeout)
        with self._lock:
            index = len(self.results)
            entry = BatchResult(index=index, id=index if id is None else id, request=request)
            self.results.append(entry)
            self._futures.append(future)
            self._submitted.append(submitted)
            if self._tracker is not None:
                self._tracker.set_total(len(self.results))

        future.add_done_callback(partial(self._record, entry, submitted))
        return future

    def _record(self, entry: BatchResult, submitted: float, future: Future[Any]) -> None:
        """Fill in `entry` from its finished future, once (from its done-callback or `wait`)."""
        with self._lock:
            if entry.verdict is not None:
                return
            try:
                entry.result = future.result()
            except BaseException as exc:  # CancelledError included
                entry.result = exc
            entry.seconds = time.monotonic() - submitted
            entry.verdict = verdict_of(entry.result, self.allow_sorry)
            tracker = self._tracker
        if tracker is not None:
            tracker.advance(entry.result)

    def wait(self) -> None:
        """Wait for every result; afterwards every entry has its verdict.

        Done-callbacks run after waiters wake (and, on a pool, in another thread), so an entry
        whose callback has not run yet is filled in here.
        """
        with self._lock:
            pending = list(zip(self.results, self._futures, self._submitted, strict=True))
        for entry, future, submitted in pending:
            with contextlib.suppress(Exception):  # recorded in the entry
                future.result()
            self._record(entry, submitted, future)
        self._finished = time.monotonic()

    def __enter__(self) -> Batch:
        self._started = time.monotonic()
        if self._progress_wanted:
            from leanpool._progress import ProgressTracker

            self._tracker = ProgressTracker(total=None, description="Verifying")
            self._tracker.__enter__()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        try:
            if exc_type is not None and not issubclass(exc_type, Exception):
                for future in self._futures:  # Ctrl-C: do not wait for the rest
                    future.cancel()
            else:
                self.wait()
        finally:
            if self._tracker is not None:
                self._tracker.__exit__(None, None, None)
                self._tracker = None
            if self._finished is None:
                self._finished = time.monotonic()

    def summary(self) -> BatchSummary:
        finished = self._finished or time.monotonic()
        counts = {"passed": 0, "lean_error": 0, "fault": 0}
        faults: dict[str, int] = {}
        latencies: list[float] = []
        for entry in self.results:
            if entry.verdict is None:
                continue
            counts[entry.verdict] += 1
            if entry.verdict == "fault":
                name = type(entry.result).__name__
                faults[name] = faults.get(name, 0) + 1
            if entry.seconds is not None:
                latencies.append(entry.seconds)
        latencies.sort()

        def pick(q: float) -> float | None:
            return (
                latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else None
            )

        return BatchSummary(
            total=len(self.results),
            passed=counts["passed"],
            lean_error=counts["lean_error"],
            fault=counts["fault"],
            faults_by_kind=faults,
            wall_seconds=finished - self._started,
            latency_mean=sum(latencies) / len(latencies) if latencies else None,
            latency_p50=pick(0.5),
            latency_p99=pick(0.99),
            latency_max=latencies[-1] if latencies else None,
        )
