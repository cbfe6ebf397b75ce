"""Telemetry: a pool's statistics as Prometheus metrics, and its log records as JSON lines.

`PoolMetrics` is a `prometheus_client` collector: it reads `pool.stats()` when scraped, so the
pool pays nothing per request for it. `metrics_registry(pool)` registers one on a registry of its
own, for an application's exporter; `serve_metrics(pool)` also serves that registry over HTTP on
a daemon thread. `prometheus_client` is the optional extra `leanpool[metrics]`, imported only
when a metrics function is called. The JSON log formatter needs nothing beyond the standard
library.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import IO, TYPE_CHECKING, Any

from leanpool._exports import publish
from leanpool._stats import PoolStats

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import CollectorRegistry

    from leanpool._pool import LeanPool

_MB = 1024 * 1024
_EXTRA_MESSAGE = (
    "Prometheus metrics need prometheus_client: pip install 'leanpool[metrics]' "
    "(or prometheus_client>=0.20)"
)


def _prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError as exc:
        raise ImportError(_EXTRA_MESSAGE, name=exc.name) from exc
    return prometheus_client


def _empty_stats() -> PoolStats:
    return PoolStats(
        submitted=0,
        queued=0,
        running=0,
        done=0,
        ok=0,
        failed={},
        cancelled=0,
        deduplicated=0,
        restarts={},
        recycles={},
        header_imports=0,
        session_moves=0,
        states_rebuilt=0,
        latency_p50=None,
        latency_p90=None,
        latency_p99=None,
    )


class PoolMetrics:
    """A `prometheus_client` collector of a pool's statistics, read from `pool.stats()` at each
    scrape. Register it on a registry (`registry.register(PoolMetrics(pool))`), or let
    `metrics_registry` do it. Families (all prefixed ``leanpool_pool_``):

    - counters: ``submitted``, ``results{kind}`` ("ok", "lean_errors", "LeanError" or the
      exception's class name), ``cancelled``, ``deduplicated``, ``header_requests``,
      ``header_imports``, ``timed_imports``, ``restarts{cause}``, ``recycles{reason}``,
      ``session_moves``, ``states_rebuilt``, ``states_unpickled``, ``retried``,
      ``node_served{node,host}``, ``node_worker_deaths{node,host}``; seconds: ``worker_seconds``
      (in workers, imports included), ``import_seconds`` (importing headers in front of
      requests) and ``elaboration_seconds`` (the rest);
    - gauges: ``queued``, ``running``, ``dedup_hit_ratio``, ``header_hit_ratio`` (when there
      are requests to divide by), ``memory_bytes{kind}`` (the REPLs summed: rss, pss,
      private), and per worker slot ``worker_rss_bytes``, ``worker_pss_bytes``,
      ``worker_private_bytes``, ``worker_peak_rss_bytes`` (the highest RSS a scrape saw;
      `PoolMetrics` keeps it, so it is lost with the collector), ``worker_in_flight``;
    - summaries: ``latency_seconds{quantile}`` (submit to result, recent requests) and
      ``queue_wait_seconds`` (its ``_sum`` and ``_count``: submit to dispatch).
    """

    def __init__(self, pool: LeanPool, prefix: str = "leanpool_pool") -> None:
        _prometheus()  # fail now, with the extra's name, rather than at the first scrape
        self._pool = pool
        self._prefix = prefix
        self._lock = threading.Lock()
        self._peak_rss: dict[str, float] = {}  # worker slot -> bytes

    def describe(self) -> list[Metric]:
        """The families without samples: lets a registry check names without calling `stats()`."""
        return list(self._families(_empty_stats(), track=False))

    def collect(self) -> Iterator[Metric]:
        yield from self._families(self._pool.stats(), track=True)

    def _families(self, stats: PoolStats, track: bool) -> Iterator[Metric]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            Metric,
            SummaryMetricFamily,
        )

        p = self._prefix

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            return CounterMetricFamily(f"{p}_{name}", doc, value=value)

        def gauge(name: str, doc: str, value: float | None) -> GaugeMetricFamily:
            family = GaugeMetricFamily(f"{p}_{name}", doc)
            if value is not None:
                family.add_metric([], value)
            return family

        def labelled(
            cls: type[CounterMetricFamily] | type[GaugeMetricFamily],
            name: str,
            doc: str,
            labels: list[str],
            samples: list[tuple[list[str], float]],
        ) -> Metric:
            family = cls(f"{p}_{name}", doc, labels=labels)
            for values, value in samples:
                family.add_metric(values, value)
            return family

        yield counter("submitted", "Requests submitted to the pool.", stats.submitted)
        results = {"ok": stats.ok, **stats.failed} if stats.ok or stats.failed else {}
        yield labelled(
            CounterMetricFamily,
            "results",
            "Requests finished, by kind of result: ok, lean_errors (Lean reported an error), "
            "LeanError (the REPL refused it) or the exception's class name.",
            ["kind"],
            [([kind], n) for kind, n in sorted(results.items())],
        )
        yield counter("cancelled", "Requests cancelled before their result.", stats.cancelled)
        yield counter("deduplicated", "Requests answered by an identical one.", stats.deduplicated)
        yield gauge(
            "dedup_hit_ratio",
            "Share of submitted requests answered by an identical one.",
            stats.dedup_hit_rate,
        )
        yield counter(
            "header_requests",
            "Requests with an import header, run on a worker's environment for it.",
            stats.header_requests,
        )
        yield counter(
            "header_imports",
            "Import headers the workers' REPLs loaded (re-imports and warm-ups included).",
            stats.header_imports,
        )
        yield counter(
            "timed_imports",
            "Header imports requests waited for (misses of header affinity).",
            stats.timed_imports,
        )
        yield gauge(
            "header_hit_ratio",
            "Share of requests with an import header that found it loaded on their worker.",
            stats.header_hit_rate,
        )
        yield counter(
            "worker_seconds",
            "Seconds workers spent on requests, header imports included.",
            stats.worker_seconds,
        )
        yield counter(
            "import_seconds",
            "Seconds workers spent importing headers in front of requests.",
            stats.import_seconds,
        )
        yield counter(
            "elaboration_seconds",
            "Seconds workers spent on requests other than importing their headers.",
            stats.elaboration_seconds,
        )
        yield labelled(
            CounterMetricFamily,
            "restarts",
            "REPL restarts inside workers, by cause.",
            ["cause"],
            [([cause], n) for cause, n in sorted(stats.restarts.items())],
        )
        yield labelled(
            CounterMetricFamily,
            "recycles",
            "Worker replacements, by reason.",
            ["reason"],
            [([reason], n) for reason, n in sorted(stats.recycles.items())],
        )
        yield counter(
            "session_moves", "Sessions taken over by another worker.", stats.session_moves
        )
        yield counter(
            "states_rebuilt", "Session states replayed on a new REPL.", stats.states_rebuilt
        )
        yield counter(
            "states_unpickled",
            "Session states restored from checkpoints.",
            stats.states_unpickled,
        )
        yield counter(
            "retried", "Requests sent again because their worker was lost.", stats.retried
        )
        yield gauge("queued", "Requests waiting for a worker.", stats.queued)
        yield gauge("running", "Requests on a worker.", stats.running)

        latency = Metric(
            f"{p}_latency_seconds", "Submit-to-result time of recent requests.", "summary"
        )
        for quantile, value in (
            ("0.5", stats.latency_p50),
            ("0.9", stats.latency_p90),
            ("0.99", stats.latency_p99),
        ):
            if value is not None:
                latency.add_sample(f"{p}_latency_seconds", {"quantile": quantile}, value)
        yield latency
        yield SummaryMetricFamily(
            f"{p}_queue_wait_seconds",
            "Time requests waited in the queue, from submit to dispatch to a worker.",
            count_value=stats.queue_waits,
            sum_value=stats.queue_wait_seconds,
        )
        yield labelled(
            GaugeMetricFamily,
            "memory_bytes",
            "Memory of the workers' REPLs summed, by kind: rss (shared pages counted by each "
            "user), pss (shared pages split among users), private.",
            ["kind"],
            [([kind], float(mb) * _MB) for kind, mb in sorted(stats.memory.items())],
        )

        per_worker: dict[str, list[tuple[list[str], float]]] = {
            key: [] for key in ("rss", "pss", "private", "peak", "in_flight")
        }
        for index, worker in enumerate(stats.workers):
            slot = str(worker.get("slot", index))
            for key in ("rss", "pss", "private"):
                mb = worker.get(f"{key}_mb")
                if isinstance(mb, (int, float)):
                    per_worker[key].append(([slot], float(mb) * _MB))
            in_flight = worker.get("in_flight")
            if isinstance(in_flight, int):
                per_worker["in_flight"].append(([slot], in_flight))
        with self._lock:
            if track:
                for (slot,), rss in per_worker["rss"]:
                    self._peak_rss[slot] = max(rss, self._peak_rss.get(slot, 0.0))
            per_worker["peak"] = [([slot], rss) for slot, rss in sorted(self._peak_rss.items())]
        for key, doc in (
            ("rss", "Resident memory of each worker's REPL."),
            ("pss", "Proportional set size of each worker's REPL (shared pages split)."),
            ("private", "Private memory of each worker's REPL."),
            ("peak_rss", "Highest resident memory of each worker's REPL seen at a scrape."),
        ):
            yield labelled(
                GaugeMetricFamily,
                f"worker_{key}_bytes",
                doc,
                ["worker"],
                per_worker["peak" if key == "peak_rss" else key],
            )
        yield labelled(
            GaugeMetricFamily,
            "worker_in_flight",
            "Requests on each worker.",
            ["worker"],
            per_worker["in_flight"],
        )
        nodes = sorted(stats.nodes.items())
        for key, doc in (
            ("served", "Requests served on each machine (Ray node id, or host)."),
            ("worker_deaths", "Workers lost on each machine (Ray node id, or host)."),
        ):
            yield labelled(
                CounterMetricFamily,
                f"node_{key}",
                doc,
                ["node", "host"],
                [([node, str(v.get("host"))], v.get(key, 0)) for node, v in nodes],
            )


def metrics_registry(pool: LeanPool) -> CollectorRegistry:
    """A new `prometheus_client` registry holding a `PoolMetrics` of `pool`: expose it with any
    exporter (`prometheus_client.generate_latest(registry)`, `make_asgi_app(registry)`, ...).
    Raises ImportError, naming the extra, without `leanpool[metrics]`."""
    prometheus_client = _prometheus()
    registry: CollectorRegistry = prometheus_client.CollectorRegistry()
    registry.register(PoolMetrics(pool))
    return registry


class MetricsServer:
    """A running metrics endpoint (see `serve_metrics`): `url`, `port`, `registry`; `close()`
    (or leaving a ``with`` block) stops it and frees the port."""

    def __init__(self, server: Any, thread: threading.Thread, registry: CollectorRegistry):
        self._server = server
        self._thread = thread
        self.registry = registry
        host, port = server.server_address[:2]
        self.port: int = port
        host = "127.0.0.1" if host in ("", "0.0.0.0") else host
        host = f"[{host}]" if ":" in host else host
        self.url = f"http://{host}:{port}/metrics"

    def close(self) -> None:
        """Stop serving and free the port; idempotent."""
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MetricsServer({self.url!r})"


def serve_metrics(pool: LeanPool, port: int = 0, addr: str = "127.0.0.1") -> MetricsServer:
    """Serve `pool`'s Prometheus metrics over HTTP on a daemon thread, at ``/metrics`` (any path
    answers), on `addr`:`port` (port 0: a free port, read it from the result's `url` or
    `port`). The pool's statistics are read at each scrape only. Stop it with `close()`, or use
    it as a context manager. Raises ImportError, naming the extra, without
    `leanpool[metrics]`."""
    prometheus_client = _prometheus()
    registry = metrics_registry(pool)
    server, thread = prometheus_client.start_http_server(port, addr=addr, registry=registry)
    return MetricsServer(server, thread, registry)


# ------------------------------------------------------------------------------- JSON logs

# What every LogRecord has; anything else on a record came from `extra=`.
_RECORD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: ``time`` (ISO 8601, UTC), ``level``,
    ``logger``, ``message``, the fields given with ``extra={...}``, and ``exception`` (the
    formatted traceback) when there is one. Values JSON cannot hold are written as `str()`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


_json_lock = threading.Lock()
_json_handler: logging.Handler | None = None


def enable_json_logs(
    stream: IO[str] | None = None, level: int | str = logging.INFO
) -> logging.Handler:
    """Write the records of the ``leanpool`` logger to `stream` (default: stderr) as JSON lines
    (`JsonFormatter`), from `level` on. Calling it again replaces the handler it added before.
    Returns the handler (``logging.getLogger("leanpool").removeHandler(handler)`` undoes it).
    Records still propagate to the root logger's handlers too, as logging does by default."""
    global _json_handler
    logger = logging.getLogger("leanpool")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    with _json_lock:
        if _json_handler is not None:
            logger.removeHandler(_json_handler)
        _json_handler = handler
        logger.addHandler(handler)
        logger.setLevel(level)
    return handler


publish(__name__)
