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
from leanpool._metric_families import Family, pool_families, update_peaks
from leanpool._stats import StatsBook

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import CollectorRegistry

    from leanpool._pool import LeanPool

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
        nothing_yet = StatsBook().snapshot()
        return [_to_prometheus(made) for made in pool_families(nothing_yet, prefix=self._prefix)]

    def collect(self) -> Iterator[Metric]:
        stats = self._pool.stats()
        with self._lock:
            update_peaks(self._peak_rss, stats)
            families = pool_families(stats, dict(self._peak_rss), self._prefix)
        for made in families:
            yield _to_prometheus(made)


def _to_prometheus(made: Family) -> Metric:
    from prometheus_client.core import Metric

    metric = Metric(made.name, made.doc, made.kind)
    for sample in made.samples:
        metric.add_sample(made.name + sample.suffix, dict(sample.labels), float(sample.value))
    return metric


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
