"""Telemetry: the Prometheus endpoint of a pool, scraped during a run and after, and JSON logs."""

from __future__ import annotations

import io
import json
import logging
import threading
import time
import urllib.request
from typing import Any

import pytest

from leanpool import (
    JsonFormatter,
    LeanPool,
    PoolMetrics,
    enable_json_logs,
    metrics_registry,
    serve_metrics,
)
from leanpool._stats import StatsBook
from leanpool.testing import sim_config


@pytest.fixture
def prometheus() -> Any:
    """prometheus_client, or a skip: the JSON log tests run without it."""
    return pytest.importorskip(
        "prometheus_client", reason="the metrics extra is not installed (leanpool[metrics])"
    )


def _scrape(url: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """sample name -> {sorted labels: value}"""
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        text = response.read().decode()
    from prometheus_client.parser import text_string_to_metric_families

    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def _value(samples: dict[str, Any], name: str, **labels: str) -> float:
    return float(samples[name][tuple(sorted(labels.items()))])


@pytest.mark.usefixtures("prometheus")
def test_scraping_during_a_run_and_after_matches_the_pools_stats() -> None:
    config = sim_config(imports={"HeaderA": (50, 10)})
    commands = (
        [f"#eval {i} --!sim sleep_ms=30" for i in range(12)]
        + ["#eval 1 --!sim error"] * 3  # one runs, two are deduplicated
        + [f"import HeaderA\n#eval {i}" for i in range(6)]
        + ["#eval 0 --!sim sleep_ms=30"] * 2  # duplicates of the first command
    )
    with LeanPool(config, 2, timeout=60) as pool, serve_metrics(pool) as server:
        assert server.url.startswith("http://127.0.0.1:") and server.port > 0
        during: list[dict[str, Any]] = []
        done = threading.Event()

        def scrape_while_running() -> None:
            while not done.is_set():
                during.append(_scrape(server.url))
                time.sleep(0.02)

        scraper = threading.Thread(target=scrape_while_running)
        scraper.start()
        try:
            results = list(pool.map(commands))
        finally:
            done.set()
            scraper.join()
        assert len(results) == len(commands)
        assert during, "no scrape completed during the run"
        assert any(_value(s, "leanpool_pool_submitted_total") > 0 for s in during)
        assert any(
            _value(s, "leanpool_pool_queued") + _value(s, "leanpool_pool_running") > 0
            for s in during
        ), "no scrape saw work in progress"
        for samples in during:  # every scrape is a whole exposition
            assert "leanpool_pool_queued" in samples and "leanpool_pool_running" in samples

        deadline = time.monotonic() + 10
        while pool.stats().done < len(commands) and time.monotonic() < deadline:
            time.sleep(0.05)
        stats = pool.stats()
        after = _scrape(server.url)

    assert _value(after, "leanpool_pool_submitted_total") == stats.submitted == len(commands)
    assert _value(after, "leanpool_pool_results_total", kind="ok") == stats.ok
    for kind, count in stats.failed.items():
        assert _value(after, "leanpool_pool_results_total", kind=kind) == count
    assert stats.failed.get("lean_errors") == 3
    assert _value(after, "leanpool_pool_deduplicated_total") == stats.deduplicated >= 3
    assert _value(after, "leanpool_pool_dedup_hit_ratio") == pytest.approx(
        stats.deduplicated / stats.submitted
    )
    assert _value(after, "leanpool_pool_header_imports_total") == stats.header_imports >= 1
    assert _value(after, "leanpool_pool_queued") == stats.queued == 0
    assert _value(after, "leanpool_pool_running") == stats.running == 0
    assert _value(after, "leanpool_pool_latency_seconds", quantile="0.5") == stats.latency_p50
    for cause, count in stats.restarts.items():
        assert _value(after, "leanpool_pool_restarts_total", cause=cause) == count
    assert _value(after, "leanpool_pool_queue_wait_seconds_count") == stats.queue_waits
    assert _value(after, "leanpool_pool_queue_wait_seconds_sum") == pytest.approx(
        stats.queue_wait_seconds
    )
    assert _value(after, "leanpool_pool_header_requests_total") == stats.header_requests
    # the dispatcher's hooks feed them: every caller whose request was sent waited in the queue
    # once (identical ones folded into it too), six requests had a header
    assert stats.submitted - stats.deduplicated <= stats.queue_waits <= stats.submitted
    assert stats.header_requests == 6 and 1 <= stats.timed_imports <= 2
    assert stats.worker_seconds > stats.import_seconds > 0 and stats.elaboration_seconds > 0
    assert stats.header_hit_rate == pytest.approx(1 - stats.timed_imports / 6)
    assert _value(after, "leanpool_pool_timed_imports_total") == stats.timed_imports
    if stats.header_requests:
        assert _value(after, "leanpool_pool_header_hit_ratio") == pytest.approx(
            stats.header_hit_rate
        )
    for name, seconds in (
        ("worker", stats.worker_seconds),
        ("import", stats.import_seconds),
        ("elaboration", stats.elaboration_seconds),
    ):
        assert _value(after, f"leanpool_pool_{name}_seconds_total") == pytest.approx(seconds)
    rss = after["leanpool_pool_worker_rss_bytes"]
    peak = after["leanpool_pool_worker_peak_rss_bytes"]
    assert len(rss) == len(stats.workers) == 2
    for worker in stats.workers:
        key = (("worker", str(worker["slot"])),)
        assert rss[key] == pytest.approx(worker["rss_mb"] * 1024 * 1024)
        assert peak[key] >= rss[key] > 0
    # the peak is the highest a scrape saw, also in the scrapes during the run
    for samples in during:
        for key, value in samples.get("leanpool_pool_worker_rss_bytes", {}).items():
            assert peak[key] >= value


def test_closing_the_server_frees_its_port_and_the_registry_serves_without_it(
    prometheus: Any,
) -> None:
    with LeanPool(sim_config(), 1, timeout=30) as pool:
        server = serve_metrics(pool)
        port = server.port
        pool.run("#eval 1")
        assert _value(_scrape(server.url), "leanpool_pool_results_total", kind="ok") == 1
        server.close()
        server.close()  # idempotent
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)
        again = serve_metrics(pool, port=port)  # the port is free again
        again.close()

        registry = metrics_registry(pool)
        text = prometheus.generate_latest(registry).decode()
        assert 'leanpool_pool_results_total{kind="ok"} 1.0' in text
        # the registry checks names (through describe(), not the pool's stats)
        with pytest.raises(ValueError, match="Duplicated timeseries"):
            registry.register(PoolMetrics(pool))


def test_metrics_without_prometheus_client_name_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(ImportError, match=r"leanpool\[metrics\]"):
        PoolMetrics(object())  # type: ignore[arg-type]


def test_json_logs_one_object_per_line_with_extra_fields() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("leanpool")
    previous_level = logger.level
    handler = enable_json_logs(stream, level=logging.DEBUG)
    try:
        again = enable_json_logs(stream, level=logging.DEBUG)  # replaces, does not add
        assert handler not in logger.handlers and again in logger.handlers
        handler = again
        logging.getLogger("leanpool.pool").info(
            "worker %d replaced", 3, extra={"slot": 3, "reason": "max_tasks", "path": object()}
        )
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "worker 3 replaced"
    assert first["level"] == "INFO" and first["logger"] == "leanpool.pool"
    assert first["slot"] == 3 and first["reason"] == "max_tasks"
    assert first["path"].startswith("<object object")  # not JSON: written as str()
    assert first["time"].endswith("+00:00")
    assert "lineno" not in first and "args" not in first
    assert second["level"] == "ERROR" and "ValueError: boom" in second["exception"]


def test_json_formatter_works_as_a_plain_logging_formatter() -> None:
    record = logging.LogRecord("leanpool", logging.WARNING, __file__, 1, "a\nb", None, None)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "a\nb" and entry["level"] == "WARNING"


class _FakePool:
    """Stands for a LeanPool: PoolMetrics only calls `stats()`."""

    def __init__(self, book: StatsBook) -> None:
        self.book = book

    def stats(self) -> Any:
        return self.book.snapshot()


def _publish(book: StatsBook, rss_mb: float, **values: Any) -> None:
    published: dict[str, Any] = {
        "queued": 1,
        "running": 2,
        "slots": [{"slot": 0, "rss_mb": rss_mb, "pss_mb": 5.0, "private_mb": 4.0, "in_flight": 2}],
        "restarts": {"timeout": 2},
        "recycles": {"memory": 1},
        "header_imports": 3,
        "session_moves": 0,
        "states_rebuilt": 0,
        "states_unpickled": 0,
        "retried": 0,
        "memory": {"rss": rss_mb, "pss": 5.0, "private": 4.0},
        "nodes": {},
    }
    book.publish(**{**published, **values})


def test_stats_hooks_feed_the_rates_and_the_peak_survives_a_lower_scrape(prometheus: Any) -> None:
    book = StatsBook()
    book.submitted(10)
    book.deduplicated(2, kind="ok")
    book.finished("ok", 0.5, 6)
    book.finished("LeanTimeoutError", 2.0, 2)
    book.waited(0.25, count=4)
    book.waited(1.0)
    book.worked(7.0)
    book.header_requests(8)
    _publish(book, 100.0, import_seconds=3.0, timed_imports=2)
    stats = book.snapshot()
    assert stats.queue_waits == 5 and stats.queue_wait_seconds == pytest.approx(2.0)
    assert stats.elaboration_seconds == pytest.approx(4.0)
    assert stats.dedup_hit_rate == pytest.approx(0.2)
    assert stats.header_hit_rate == pytest.approx(6 / 8)
    assert stats.as_dict()["header_requests"] == 8

    registry = prometheus.CollectorRegistry()
    registry.register(PoolMetrics(_FakePool(book)))  # type: ignore[arg-type]

    def sample(name: str, **labels: str) -> float | None:
        value: float | None = registry.get_sample_value(name, labels)
        return value

    assert sample("leanpool_pool_results_total", kind="ok") == 8
    assert sample("leanpool_pool_results_total", kind="LeanTimeoutError") == 2
    assert sample("leanpool_pool_header_hit_ratio") == pytest.approx(0.75)
    assert sample("leanpool_pool_dedup_hit_ratio") == pytest.approx(0.2)
    assert sample("leanpool_pool_queue_wait_seconds_count") == 5
    assert sample("leanpool_pool_elaboration_seconds_total") == pytest.approx(4.0)
    assert sample("leanpool_pool_restarts_total", cause="timeout") == 2
    assert sample("leanpool_pool_recycles_total", reason="memory") == 1
    assert sample("leanpool_pool_memory_bytes", kind="pss") == 5 * 1024 * 1024
    assert sample("leanpool_pool_worker_in_flight", worker="0") == 2
    assert sample("leanpool_pool_worker_peak_rss_bytes", worker="0") == 100 * 1024 * 1024
    _publish(book, 60.0)  # the worker shrank (or was replaced): the peak stays
    assert sample("leanpool_pool_worker_rss_bytes", worker="0") == 60 * 1024 * 1024
    assert sample("leanpool_pool_worker_peak_rss_bytes", worker="0") == 100 * 1024 * 1024
    assert sample("leanpool_pool_import_seconds_total") == 0  # the published value, replaced


def test_rates_are_none_before_there_is_anything_to_divide() -> None:
    stats = StatsBook().snapshot()
    assert stats.dedup_hit_rate is None and stats.header_hit_rate is None
    assert stats.elaboration_seconds == 0.0
