"""Batch verification as a context manager: submit many requests, get every verdict on exit.

    with pool.batch(progress=True, results_path="results.jsonl", resume=True) as batch:
        for item in dataset:
            batch.submit(item.code, id=item.id, formal_statement=item.statement)
    print(batch.summary())

Commands (Lean source text or a `Command` without an env) are judged by the verdict policy
(`leanpool._verdict`: ``passed``, ``lean_error``, ``rejected`` or ``fault``, with reasons); other
requests (a `ProofStep`, ...) by their answer alone. Only ``passed`` means verified.

With `results_path`, each entry is appended to that JSONL file the moment it is complete, so a
run that is stopped keeps what it finished; with `resume`, ids already in the file are not run
again (their recorded entries are returned as they were).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from leanpool._errors import Blame, RequestError
from leanpool._exports import publish
from leanpool._futures import failed_future, result_of
from leanpool._results_file import ResultsFile, id_key
from leanpool._stats import percentile
from leanpool._verdict import STATUSES, Status, VerdictPolicy
from leanpool._verify import Verification, blame_of, judge
from leanpool.protocol import BaseREPLQuery, Command

if TYPE_CHECKING:
    from leanpool._pool import LeanPool, PoolPort
    from leanpool._progress import ProgressTracker


BLAMES = ("proof", "infrastructure", "request", "shutdown")


@dataclass
class BatchResult:
    """One submitted request and what became of it."""

    index: int
    id: Any
    request: BaseREPLQuery | str
    result: Any = None  # the response, or the exception
    seconds: float | None = None  # submit to result
    verdict: Status | None = None
    reasons: tuple[str, ...] = ()
    verification: Verification | None = None  # for commands judged by the policy
    resumed: bool = False  # read back from the results file, not run in this batch

    @property
    def passed(self) -> bool:
        return self.verdict == "passed"

    @property
    def blame(self) -> Blame | None:
        """Whose fault it is if it did not pass: "proof", "infrastructure", "request" or
        "shutdown" (`LeanPoolError.blame`); None when it passed."""
        if self.resumed and isinstance(self.result, dict):
            recorded = self.result.get("blame")
            return recorded if recorded in BLAMES else blame_of(self.verdict, None)
        error = self.result
        if not isinstance(error, BaseException) and self.verification is not None:
            error = self.verification.error
        return blame_of(self.verdict, error)

    def record(self) -> dict[str, Any]:
        """The entry as one line of a results file."""
        line: dict[str, Any] = {
            "id": self.id,
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "seconds": None if self.seconds is None else round(self.seconds, 4),
        }
        if self.blame is not None:
            line["blame"] = self.blame
        if isinstance(self.result, BaseException):
            line["fault"] = type(self.result).__name__
            line["message"] = str(self.result)[:2000]
        if self.verification is not None and self.verification.axioms:
            line["axioms"] = self.verification.axioms
        if self.verification is not None and self.verification.heartbeat_budget is not None:
            line["heartbeat_budget"] = self.verification.heartbeat_budget
            line["heartbeats_rewritten"] = [
                r.to_dict() for r in self.verification.heartbeats_rewritten
            ]
        return line


@dataclass(frozen=True)
class BatchSummary:
    total: int
    passed: int
    lean_error: int
    fault: int
    rejected: int = 0
    faults_by_kind: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)  # how often each reason was given
    # what did not pass, by whose fault ("proof", "infrastructure", ...): the code's failures
    # apart from the machine's
    by_blame: dict[str, int] = field(default_factory=dict)
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
            f"{self.rejected} rejected by the policy, {self.fault} faults, in "
            f"{self.wall_seconds:.2f} s ({self.throughput:.1f}/s)"
        )


class Batch:
    """Collects requests on a pool; leaving the ``with`` block waits for all of them."""

    def __init__(
        self,
        pool: LeanPool,
        port: PoolPort,
        progress: bool = False,
        policy: VerdictPolicy | None = None,
        results_path: str | os.PathLike[str] | None = None,
        resume: bool = False,
    ) -> None:
        self.pool = pool
        self._port = port
        self.policy = policy or VerdictPolicy()
        self.results: list[BatchResult] = []
        self._futures: list[Future[BatchResult]] = []
        self._requests: list[tuple[Future[Any] | None, float]] = []  # (the pool's future, when)
        self._lock = threading.Lock()
        self._progress_wanted = progress
        self._tracker: ProgressTracker | None = None
        self._started = time.monotonic()
        self._finished: float | None = None
        self._file = ResultsFile(results_path, resume=resume) if results_path is not None else None

    @property
    def allow_sorry(self) -> bool:
        return self.policy.allow_sorry

    def submit(
        self,
        request: BaseREPLQuery | str,
        *,
        id: Any = None,
        timeout: float | None = None,
        formal_statement: str | None = None,
        header: str | None = None,
    ) -> Future[BatchResult]:
        """Queue one request; `id` is yours (kept in `results`), default: its index.

        The future gives the complete entry. A command is verified (`LeanPool.verify`), with
        `formal_statement` and `header` when given.
        """
        submitted = time.monotonic()
        with self._lock:
            index = len(self.results)
            entry = BatchResult(index=index, id=index if id is None else id, request=request)
            self.results.append(entry)
            done: Future[BatchResult] = Future()
            self._futures.append(done)
            self._requests.append((None, submitted))
            if self._tracker is not None:
                self._tracker.set_total(len(self.results))
        recorded = self._file.done.get(id_key(entry.id)) if self._file is not None else None
        if recorded is not None:
            self._resume(entry, recorded, done)
            return done
        try:
            inner = self._start(request, timeout, formal_statement, header)
        except (RequestError, TypeError, ValueError) as exc:
            inner = failed_future(exc if isinstance(exc, RequestError) else RequestError(str(exc)))
        with self._lock:
            self._requests[index] = (inner, submitted)
        done.add_done_callback(lambda f: inner.cancel() if f.cancelled() else None)
        inner.add_done_callback(partial(self._record, entry, submitted, done))
        return done

    def _start(
        self,
        request: BaseREPLQuery | str,
        timeout: float | None,
        formal_statement: str | None,
        header: str | None,
    ) -> Future[Any]:
        timeout_ = self._port.timeout if timeout is None else timeout
        code: str | None = None
        if isinstance(request, str):
            code = request
        elif type(request) is Command and request.env is None:
            code = request.cmd
        if code is not None:
            return self._port.submit_verification(
                code,
                formal_statement=formal_statement,
                header=header,
                timeout=timeout_,
                policy=self.policy,
            )
        if formal_statement is not None or header is not None:
            raise RequestError(
                "formal_statement and header apply to commands (Lean source text), "
                f"not to a {type(request).__name__}."
            )
        return self._port.submit_or_fail(request, timeout_)

    def _record(
        self, entry: BatchResult, submitted: float, done: Future[BatchResult], inner: Future[Any]
    ) -> None:
        """Fill in `entry` from its finished request, once (from its callback or `wait`)."""
        with self._lock:
            if entry.verdict is not None:
                return
            result = result_of(inner)
            if isinstance(result, Verification):
                entry.verification = result
                entry.result = result.error if result.error is not None else result.response
                verdict = result.verdict
            else:
                entry.result = result
                verdict = judge(None, self.policy, result)[0]
            entry.verdict, entry.reasons = verdict.status, verdict.reasons
            entry.seconds = time.monotonic() - submitted
            tracker = self._tracker
        self._finish(entry, done, tracker)

    def _resume(
        self, entry: BatchResult, recorded: dict[str, Any], done: Future[BatchResult]
    ) -> None:
        with self._lock:
            status = recorded.get("verdict")
            entry.verdict = status if status in STATUSES else "fault"
            entry.reasons = tuple(recorded.get("reasons") or ())
            entry.seconds = recorded.get("seconds")
            entry.result = recorded
            entry.resumed = True
            tracker = self._tracker
        if tracker is not None:
            tracker.advance(entry.result, failed=entry.verdict != "passed")
        with contextlib.suppress(Exception):
            done.set_result(entry)

    def _finish(
        self, entry: BatchResult, done: Future[BatchResult], tracker: ProgressTracker | None
    ) -> None:
        if self._file is not None and entry.verdict is not None and not _cancelled(entry):
            self._file.append(entry.record())
        if tracker is not None:
            tracker.advance(entry.result, failed=entry.verdict != "passed")
        with contextlib.suppress(Exception):  # InvalidStateError: the caller cancelled it
            done.set_result(entry)

    def wait(self) -> None:
        """Wait for every result; afterwards every entry has its verdict.

        Done-callbacks run after waiters wake (and, on a pool, in another thread), so an entry
        whose callback has not run yet is filled in here.
        """
        with self._lock:
            pending = list(zip(self.results, self._futures, self._requests, strict=True))
        for entry, done, (inner, submitted) in pending:
            if inner is None:  # resumed from the results file
                continue
            with contextlib.suppress(Exception):  # recorded in the entry
                inner.result()
            self._record(entry, submitted, done, inner)
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
            if self._file is not None:
                self._file.close()
            if self._finished is None:
                self._finished = time.monotonic()

    def summary(self) -> BatchSummary:
        finished = self._finished or time.monotonic()
        counts = dict.fromkeys(STATUSES, 0)
        faults: dict[str, int] = {}
        reasons: dict[str, int] = {}
        latencies: list[float] = []
        by_blame: dict[str, int] = {}
        for entry in self.results:
            if entry.verdict is None:
                continue
            counts[entry.verdict] += 1
            blame = entry.blame
            if blame is not None:
                by_blame[blame] = by_blame.get(blame, 0) + 1
            for reason in entry.reasons:
                reasons[reason] = reasons.get(reason, 0) + 1
            if entry.verdict == "fault":
                name = (
                    type(entry.result).__name__
                    if isinstance(entry.result, BaseException)
                    else (entry.reasons[0] if entry.reasons else "fault")
                )
                faults[name] = faults.get(name, 0) + 1
            if entry.seconds is not None:
                latencies.append(entry.seconds)
        latencies.sort()

        return BatchSummary(
            total=len(self.results),
            passed=counts["passed"],
            lean_error=counts["lean_error"],
            fault=counts["fault"],
            rejected=counts["rejected"],
            faults_by_kind=faults,
            reasons=reasons,
            by_blame=by_blame,
            wall_seconds=finished - self._started,
            latency_mean=sum(latencies) / len(latencies) if latencies else None,
            latency_p50=percentile(latencies, 0.5),
            latency_p99=percentile(latencies, 0.99),
            latency_max=latencies[-1] if latencies else None,
        )


def _cancelled(entry: BatchResult) -> bool:
    """Cancelled by its caller: not a result worth keeping (a resumed run does it again)."""
    from concurrent.futures import CancelledError

    return isinstance(entry.result, CancelledError)


publish(__name__)
