"""Pool statistics: counters the dispatcher updates and `LeanPool.stats()` reads.

Latencies (submit to result) are kept in a bounded reservoir of the most recent results, so a
pool that serves millions of requests keeps constant memory for them.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from leanpool._exports import publish

_LATENCY_WINDOW = 10_000


def percentile(ordered: list[float], q: float) -> float | None:
    """The `q`-quantile (0..1) of sorted values, nearest rank; None for no values."""
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def result_kind(result: Any) -> str:
    """What became of a request, in one word: "ok", "lean_errors" (Lean reported an error),
    "LeanError" (the REPL refused the request) or the exception's class name. The one
    classification behind the pool's statistics, progress bars and the service's metrics
    (verdicts judge more, see `leanpool._verify.judge`). Names, not classes, are compared so
    that importing this module does not import pydantic (progress bars are drawn without it)."""
    if isinstance(result, BaseException):
        return type(result).__name__
    if type(result).__name__ == "LeanError":
        return "LeanError"
    has_errors = getattr(result, "has_errors", None)
    if callable(has_errors) and has_errors():
        return "lean_errors"
    return "ok"


@dataclass(frozen=True)
class PoolStats:
    """A consistent snapshot of a pool's activity (see `LeanPool.stats`)."""

    submitted: int
    queued: int
    running: int
    done: int
    ok: int
    failed: dict[str, int]  # by kind: "lean_errors", "LeanError", "LeanTimeoutError", ...
    cancelled: int
    deduplicated: int
    restarts: dict[str, int]  # REPL restarts inside workers, by cause
    recycles: dict[str, int]  # worker replacements, by reason
    header_imports: int  # import headers the workers' REPLs loaded (including re-imports)
    session_moves: int  # sessions an idle worker took over from a stuck or busy one
    states_rebuilt: int  # session states replayed (after REPL restarts, or on another worker)
    latency_p50: float | None
    latency_p90: float | None
    latency_p99: float | None
    workers: list[dict[str, Any]] = field(default_factory=list)  # per slot: pid, rss_mb, ...
    states_unpickled: int = 0  # session states restored from checkpoints instead of replayed
    retried: int = 0  # requests sent again because the worker they were sent to was lost
    # the workers' REPLs together, in MB: "rss" (counts a page shared by n REPLs n times),
    # "pss" (counts it once: the pool's footprint), "private" (what only they hold)
    memory: dict[str, float] = field(default_factory=dict)
    # per machine (Ray node id; the host name for local workers): host, workers up there now,
    # requests served there, workers lost there
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Time: requests' wait in the queue (submit to dispatch to a worker), summed, and how many
    # waits were summed; the time batches of requests spent in workers (`worker_seconds`), the
    # part of it spent importing headers in front of them (`import_seconds`, over
    # `timed_imports` imports): what is left is elaboration (`elaboration_seconds`)
    queue_wait_seconds: float = 0.0
    queue_waits: int = 0
    worker_seconds: float = 0.0
    import_seconds: float = 0.0
    timed_imports: int = 0
    # requests with an import header, run on the worker's environment for it; those that did not
    # wait for an import (`timed_imports`) found it loaded there (`header_hit_rate`)
    header_requests: int = 0

    @property
    def elaboration_seconds(self) -> float:
        """Seconds the workers spent on requests other than importing their headers."""
        return max(0.0, self.worker_seconds - self.import_seconds)

    @property
    def dedup_hit_rate(self) -> float | None:
        """The share of submitted requests answered by an identical one; None before any."""
        return self.deduplicated / self.submitted if self.submitted else None

    @property
    def header_hit_rate(self) -> float | None:
        """The share of requests with an import header that found it loaded on their worker;
        None before any."""
        if not self.header_requests:
            return None
        return max(0, self.header_requests - self.timed_imports) / self.header_requests

    @property
    def failed_total(self) -> int:
        return sum(self.failed.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "submitted": self.submitted,
            "queued": self.queued,
            "running": self.running,
            "done": self.done,
            "ok": self.ok,
            "failed": dict(self.failed),
            "cancelled": self.cancelled,
            "deduplicated": self.deduplicated,
            "restarts": dict(self.restarts),
            "recycles": dict(self.recycles),
            "header_imports": self.header_imports,
            "session_moves": self.session_moves,
            "states_rebuilt": self.states_rebuilt,
            "states_unpickled": self.states_unpickled,
            "latency_p50": self.latency_p50,
            "latency_p90": self.latency_p90,
            "latency_p99": self.latency_p99,
            "workers": [dict(w) for w in self.workers],
            "retried": self.retried,
            "memory": dict(self.memory),
            "nodes": {key: dict(node) for key, node in self.nodes.items()},
            "queue_wait_seconds": self.queue_wait_seconds,
            "queue_waits": self.queue_waits,
            "worker_seconds": self.worker_seconds,
            "import_seconds": self.import_seconds,
            "timed_imports": self.timed_imports,
            "header_requests": self.header_requests,
        }


class StatsBook:
    """Thread-safe counters; written by the dispatcher, read by anyone."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._submitted = 0
        self._done = 0
        self._kinds: Counter[str] = Counter()
        self._cancelled = 0
        self._deduplicated = 0
        self._latencies: deque[float] = deque(maxlen=_LATENCY_WINDOW)
        self._queue_wait_seconds = 0.0
        self._queue_waits = 0
        self._worker_seconds = 0.0
        self._header_requests = 0
        self._published: dict[str, Any] = {
            "queued": 0,
            "running": 0,
            "slots": [],
            "restarts": Counter(),
            "recycles": Counter(),
            "header_imports": 0,
            "session_moves": 0,
            "states_rebuilt": 0,
            "states_unpickled": 0,
            "retried": 0,
            "memory": {},
            "nodes": {},
        }

    def submitted(self, count: int) -> None:
        with self._lock:
            self._submitted += count

    def finished(self, kind: str, latency: float, count: int) -> None:
        with self._lock:
            self._done += count
            self._kinds[kind] += count
            self._latencies.append(latency)

    def cancelled(self, count: int) -> None:
        with self._lock:
            self._cancelled += count

    def deduplicated(self, count: int, kind: str | None = None) -> None:
        """Requests answered by an identical one: folded into it (counted when it finishes) or,
        with `kind`, answered right away from the result cache."""
        with self._lock:
            self._deduplicated += count
            if kind is not None:
                self._done += count
                self._kinds[kind] += count

    def waited(self, seconds: float, count: int = 1) -> None:
        """`count` requests left the queue for a worker after `seconds` each (submit to
        dispatch)."""
        with self._lock:
            self._queue_wait_seconds += seconds * count
            self._queue_waits += count

    def worked(self, seconds: float) -> None:
        """A worker spent `seconds` on a batch of requests, header imports included."""
        with self._lock:
            self._worker_seconds += seconds

    def header_requests(self, count: int = 1) -> None:
        """`count` requests with an import header were sent to run on its environment."""
        with self._lock:
            self._header_requests += count

    def publish(self, **values: Any) -> None:
        with self._lock:
            self._published = values

    def snapshot(self) -> PoolStats:
        with self._lock:
            latencies = sorted(self._latencies)
            kinds = Counter(self._kinds)
            published = dict(self._published)
            submitted, done = self._submitted, self._done
            cancelled, deduplicated = self._cancelled, self._deduplicated
            queue_wait_seconds, queue_waits = self._queue_wait_seconds, self._queue_waits
            worker_seconds, header_requests = self._worker_seconds, self._header_requests

        ok = kinds.pop("ok", 0)
        return PoolStats(
            submitted=submitted,
            queued=published["queued"],
            running=published["running"],
            done=done,
            ok=ok,
            failed=dict(kinds),
            cancelled=cancelled,
            deduplicated=deduplicated,
            restarts=dict(published["restarts"]),
            recycles=dict(published["recycles"]),
            header_imports=published["header_imports"],
            session_moves=published["session_moves"],
            states_rebuilt=published["states_rebuilt"],
            latency_p50=percentile(latencies, 0.50),
            latency_p90=percentile(latencies, 0.90),
            latency_p99=percentile(latencies, 0.99),
            workers=list(published["slots"]),
            states_unpickled=published["states_unpickled"],
            retried=published["retried"],
            memory=dict(published["memory"]),
            nodes={key: dict(node) for key, node in published["nodes"].items()},
            queue_wait_seconds=queue_wait_seconds,
            queue_waits=queue_waits,
            worker_seconds=worker_seconds,
            import_seconds=published.get("import_seconds", 0.0),
            timed_imports=published.get("timed_imports", 0),
            header_requests=header_requests,
        )


publish(__name__)
