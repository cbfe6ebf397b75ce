"""The pool's metric families: one mapping that the collector and the service both render."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from leanpool import PoolMetrics
from leanpool._metric_families import pool_families, render_text
from leanpool._serve._metrics import Metrics
from leanpool._stats import PoolStats, StatsBook

STATS = replace(
    StatsBook().snapshot(),
    submitted=12,
    ok=7,
    failed={"LeanTimeoutError": 2, "lean_errors": 1},
    restarts={"timeout": 2},
    latency_p50=0.25,
    workers=[{"slot": 0, "rss_mb": 40.0, "pss_mb": 20.0, "private_mb": 8.0, "in_flight": 1}],
    memory={"rss": 40.0, "pss": 20.0, "private": 8.0},
    nodes={"n1": {"host": 'odd"host', "served": 9, "worker_deaths": 1}},
    queue_waits=10,
    queue_wait_seconds=1.5,
)


class _Pool:
    def __init__(self, stats: PoolStats) -> None:
        self._stats = stats

    def stats(self) -> PoolStats:
        return self._stats


def _samples(text: str) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("leanpool_pool_") and not s.name.endswith("_created")
    }


def test_the_service_and_the_collector_expose_the_same_pool_samples() -> None:
    prometheus: Any = pytest.importorskip(
        "prometheus_client", reason="the metrics extra is not installed (leanpool[metrics])"
    )
    registry = prometheus.CollectorRegistry()
    registry.register(PoolMetrics(_Pool(STATS)))  # type: ignore[arg-type]
    collector = _samples(prometheus.generate_latest(registry).decode())
    service = _samples(Metrics().render(STATS, {}, 0, 0, 1.0))
    assert collector == service
    assert ("leanpool_pool_results_total", (("kind", "ok"),), 7.0) in service
    node = (("host", 'odd"host'), ("node", "n1"))
    assert ("leanpool_pool_node_served_total", node, 9.0) in service


def test_text_keeps_integers_and_escapes_labels_and_help() -> None:
    lines = render_text(pool_families(STATS))
    assert "leanpool_pool_submitted_total 12" in lines
    assert 'leanpool_pool_node_served_total{node="n1",host="odd\\"host"} 9' in lines
    assert "# TYPE leanpool_pool_latency_seconds summary" in lines
    assert 'leanpool_pool_latency_seconds{quantile="0.5"} 0.25' in lines
    assert all("\n" not in line for line in lines)
