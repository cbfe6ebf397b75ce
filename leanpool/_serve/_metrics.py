"""The service's counters and their Prometheus text exposition (format 0.0.4), written by hand:
a few counters and one histogram do not need a client library. The pool's own families come
from `pool_families`, which the `prometheus_client` collector reads too.

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
from leanpool._metric_families import Family, pool_families, render_text, update_peaks
from leanpool._stats import PoolStats, result_kind

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
        self._peak_rss: dict[str, float] = {}  # worker slot -> bytes, the highest seen

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
        pool: PoolStats,
        in_flight: dict[str, int],
        sessions: int,
        refused: int,
        uptime: float,
    ) -> str:
        """The exposition text: these counters, then the pool's statistics under the names
        `PoolMetrics` gives them (one mapping, `pool_families`)."""
        update_peaks(self._peak_rss, pool)
        http = Family(
            "leanpool_http_requests",
            "counter",
            "HTTP requests answered, by method, route and status.",
        )
        for (method, route, status), n in sorted(self.http.items()):
            http.add(n, method=method, route=route, status=str(status))
        seconds = Family(
            "leanpool_http_request_seconds", "histogram", "Time to answer an HTTP request."
        )
        cumulative = 0
        for bound, count in zip((*BUCKETS, float("inf")), self._bucket_counts, strict=True):
            cumulative += count
            seconds.add(cumulative, "_bucket", le="+Inf" if bound == float("inf") else repr(bound))
        seconds.add(self._seconds_sum, "_sum").add(self._seconds_count, "_count")
        lean = Family(
            "leanpool_lean_requests", "counter", "Lean requests answered to clients, by outcome."
        )
        for outcome, n in sorted(self.lean.items()):
            lean.add(n, outcome=outcome)
        keys = Family(
            "leanpool_in_flight", "gauge", "Lean requests queued or running, by API key label."
        )
        for key, n in sorted(in_flight.items()):
            keys.add(n, key=key)
        families = [
            Family("leanpool_up", "gauge", "1 while the service runs.").add(1),
            Family("leanpool_uptime_seconds", "gauge", "Seconds since the service started.").add(
                uptime
            ),
            http,
            seconds,
            lean,
            Family(
                "leanpool_lean_requests_cancelled",
                "counter",
                "Lean requests cancelled because their client disconnected or the service stopped.",
            ).add(self.cancelled),
            keys,
            Family(
                "leanpool_refused",
                "counter",
                "HTTP requests refused with 429 (a key's budget of requests in flight).",
            ).add(refused),
            Family("leanpool_sessions_open", "gauge", "Open tactic-mode sessions.").add(sessions),
            *pool_families(pool, self._peak_rss),
        ]
        return "\n".join(render_text(families)) + "\n"
