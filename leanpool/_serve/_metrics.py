"""The service's counters and their Prometheus text exposition (format 0.0.4), written by hand:
a few counters and one histogram do not need a client library.

HTTP requests are counted by route template (``/v1/sessions/{session}/run``, never a session
id) and status; Lean requests by result (in a label named ``outcome``); in-flight work by key
label (never a key).
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable
from typing import Any

from leanpool._errors import fault_label
from leanpool._stats import result_kind

# Upper bounds of the HTTP latency histogram, seconds.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


_RESULT_LABELS = {"ok": "ok", "lean_errors": "lean_error", "LeanError": "repl_error"}


def result_label(result: Any) -> str:
    """A Lean request's result as a metric label: "ok", "lean_error" (Lean reported an error),
    "repl_error" (the REPL refused the request) or the failure's `fault_label`."""
    if isinstance(result, BaseException):
        return fault_label(result)
    return _RESULT_LABELS[result_kind(result)]


class Metrics:
    """Counters updated on the event loop's thread."""

    def __init__(self) -> None:
        self.http: Counter[tuple[str, str, int]] = Counter()  # (method, route, status)
        self.lean: Counter[str] = Counter()  # by result_label
        self.cancelled = 0  # Lean requests cancelled because their client went away
        self._bucket_counts = [0] * (len(BUCKETS) + 1)
        self._seconds_sum = 0.0
        self._seconds_count = 0

    def observe_http(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http[(method, route, status)] += 1
        self._bucket_counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self._seconds_sum += seconds
        self._seconds_count += 1

    def observe_lean(self, results: Iterable[Any]) -> None:
        for result in results:
            self.lean[result_label(result)] += 1

    def render(
        self,
        pool: dict[str, Any],
        in_flight: dict[str, int],
        sessions: int,
        refused: int,
        uptime: float,
    ) -> str:
        """The exposition text: these counters plus the pool's statistics (`PoolStats`)."""
        out: list[str] = []

        def family(name: str, kind: str, help_text: str, samples: list[tuple[str, Any]]) -> None:
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")
            for labels, value in samples:
                out.append(f"{name}{labels} {_number(value)}")

        family("leanpool_up", "gauge", "1 while the service runs.", [("", 1)])
        family(
            "leanpool_uptime_seconds", "gauge", "Seconds since the service started.", [("", uptime)]
        )
        family(
            "leanpool_http_requests_total",
            "counter",
            "HTTP requests answered, by method, route and status.",
            [
                (_labels(method=m, route=r, status=str(s)), n)
                for (m, r, s), n in sorted(self.http.items())
            ],
        )
        cumulative, buckets = 0, []
        for bound, count in zip((*BUCKETS, float("inf")), self._bucket_counts, strict=True):
            cumulative += count
            le = "+Inf" if bound == float("inf") else repr(bound)
            buckets.append((_labels(le=le), cumulative))
        out.append("# HELP leanpool_http_request_seconds Time to answer an HTTP request.")
        out.append("# TYPE leanpool_http_request_seconds histogram")
        for labels, value in buckets:
            out.append(f"leanpool_http_request_seconds_bucket{labels} {value}")
        out.append(f"leanpool_http_request_seconds_sum {_number(self._seconds_sum)}")
        out.append(f"leanpool_http_request_seconds_count {self._seconds_count}")
        family(
            "leanpool_lean_requests_total",
            "counter",
            "Lean requests answered to clients, by outcome.",
            [(_labels(outcome=k), n) for k, n in sorted(self.lean.items())],
        )
        family(
            "leanpool_lean_requests_cancelled_total",
            "counter",
            "Lean requests cancelled because their client disconnected or the service stopped.",
            [("", self.cancelled)],
        )
        family(
            "leanpool_in_flight",
            "gauge",
            "Lean requests queued or running, by API key label.",
            [(_labels(key=k), n) for k, n in sorted(in_flight.items())],
        )
        family(
            "leanpool_refused_total",
            "counter",
            "HTTP requests refused with 429 (a key's budget of requests in flight).",
            [("", refused)],
        )
        family("leanpool_sessions_open", "gauge", "Open tactic-mode sessions.", [("", sessions)])
        out.extend(_pool_families(pool))
        return "\n".join(out) + "\n"


def _pool_families(pool: dict[str, Any]) -> list[str]:
    out: list[str] = []

    def one(name: str, kind: str, help_text: str, samples: list[tuple[str, Any]]) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")
        out.extend(f"{name}{labels} {_number(value)}" for labels, value in samples)

    for key, kind, help_text in (
        ("submitted", "counter", "Requests submitted to the pool."),
        ("done", "counter", "Requests the pool finished."),
        ("ok", "counter", "Requests answered without an error message."),
        ("cancelled", "counter", "Requests cancelled before their result."),
        ("deduplicated", "counter", "Requests answered by an identical one."),
        ("header_imports", "counter", "Import headers loaded by the workers' REPLs."),
        ("session_moves", "counter", "Sessions taken over by another worker."),
        ("states_rebuilt", "counter", "Session states replayed on a new REPL."),
        ("states_unpickled", "counter", "Session states restored from checkpoints."),
        ("retried", "counter", "Requests sent again because their worker was lost."),
        ("queued", "gauge", "Requests waiting for a worker."),
        ("running", "gauge", "Requests on a worker."),
    ):
        suffix = "_total" if kind == "counter" else ""
        one(f"leanpool_pool_{key}{suffix}", kind, help_text, [("", pool.get(key) or 0)])
    for key, label, help_text in (
        ("failed", "kind", "Requests that failed, by kind."),
        ("restarts", "cause", "REPL restarts inside workers, by cause."),
        ("recycles", "reason", "Worker replacements, by reason."),
    ):
        samples = [(_labels(**{label: k}), n) for k, n in sorted((pool.get(key) or {}).items())]
        one(f"leanpool_pool_{key}_total", "counter", help_text, samples)
    quantiles = [
        (_labels(quantile=q), pool.get(f"latency_p{p}"))
        for q, p in (("0.5", 50), ("0.9", 90), ("0.99", 99))
        if pool.get(f"latency_p{p}") is not None
    ]
    one(
        "leanpool_pool_latency_seconds",
        "summary",
        "Submit-to-result time of recent pool requests.",
        quantiles,
    )
    workers = []
    for index, worker in enumerate(pool.get("workers") or []):
        rss = worker.get("rss_mb")
        if isinstance(rss, (int, float)):
            workers.append((_labels(worker=str(index)), float(rss) * 1024 * 1024))
    one(
        "leanpool_pool_worker_rss_bytes", "gauge", "Resident memory of each worker's REPL.", workers
    )
    nodes = sorted((pool.get("nodes") or {}).items())
    for key, help_text in (
        ("served", "Requests served on each machine (Ray node id, or host)."),
        ("worker_deaths", "Workers lost on each machine (Ray node id, or host)."),
    ):
        samples = [
            (_labels(node=node, host=str(v.get("host"))), v.get(key, 0)) for node, v in nodes
        ]
        one(f"leanpool_pool_node_{key}_total", "counter", help_text, samples)
    return out


def _labels(**labels: str) -> str:
    inner = ",".join(f'{key}="{_escape(value)}"' for key, value in labels.items())
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    return repr(float(value))
