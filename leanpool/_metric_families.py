"""A pool's statistics as metric families, with no metrics library.

Two expositions read them: `_telemetry.PoolMetrics` (a `prometheus_client` collector, the
`metrics` extra) and `leanpool serve`'s ``/metrics`` (hand-written text, so the service needs no
metrics library). One mapping keeps the two alike: the same names, labels and values.

`render_text` writes families in Prometheus's text exposition format 0.0.4
(https://prometheus.io/docs/instrumenting/exposition_formats/).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from leanpool._stats import PoolStats

_MB = 1024 * 1024
PREFIX = "leanpool_pool"

Kind = Literal["counter", "gauge", "summary", "histogram"]


@dataclass(frozen=True)
class Sample:
    """One sample of a family; its name is the family's name plus `suffix` ("_total" for a
    counter's value, "_sum", "_count", "_bucket" for summaries and histograms)."""

    suffix: str
    labels: Mapping[str, str]
    value: float


@dataclass
class Family:
    """A metric family: `name` has no suffix (a counter's samples add "_total")."""

    name: str
    kind: Kind
    doc: str
    samples: list[Sample] = field(default_factory=list)

    def add(self, value: float, suffix: str | None = None, **labels: str) -> Family:
        if suffix is None:
            suffix = "_total" if self.kind == "counter" else ""
        self.samples.append(Sample(suffix, labels, value))
        return self


def pool_families(
    stats: PoolStats, peak_rss: Mapping[str, float] | None = None, prefix: str = PREFIX
) -> list[Family]:
    """The families of `stats` (see `PoolMetrics` for the list). `peak_rss` (worker slot to
    bytes) is the highest RSS each worker was seen at, kept by the caller across reads."""
    families: list[Family] = []

    def family(name: str, kind: Kind, doc: str) -> Family:
        families.append(Family(f"{prefix}_{name}", kind, doc))
        return families[-1]

    def counter(name: str, doc: str, value: float) -> None:
        family(name, "counter", doc).add(value)

    def gauge(name: str, doc: str, value: float | None) -> None:
        made = family(name, "gauge", doc)
        if value is not None:
            made.add(value)

    counter("submitted", "Requests submitted to the pool.", stats.submitted)
    results = family(
        "results",
        "counter",
        "Requests finished, by kind of result: ok, lean_errors (Lean reported an error), "
        "LeanError (the REPL refused it) or the exception's class name.",
    )
    if stats.ok or stats.failed:
        for kind, n in sorted({"ok": stats.ok, **stats.failed}.items()):
            results.add(n, kind=kind)
    counter("cancelled", "Requests cancelled before their result.", stats.cancelled)
    counter("deduplicated", "Requests answered by an identical one.", stats.deduplicated)
    gauge(
        "dedup_hit_ratio",
        "Share of submitted requests answered by an identical one.",
        stats.dedup_hit_rate,
    )
    counter(
        "header_requests",
        "Requests with an import header, run on a worker's environment for it.",
        stats.header_requests,
    )
    counter(
        "header_imports",
        "Import headers the workers' REPLs loaded (re-imports and warm-ups included).",
        stats.header_imports,
    )
    counter(
        "timed_imports",
        "Header imports requests waited for (misses of header affinity).",
        stats.timed_imports,
    )
    gauge(
        "header_hit_ratio",
        "Share of requests with an import header that found it loaded on their worker.",
        stats.header_hit_rate,
    )
    counter(
        "worker_seconds",
        "Seconds workers spent on requests, header imports included.",
        stats.worker_seconds,
    )
    counter(
        "import_seconds",
        "Seconds workers spent importing headers in front of requests.",
        stats.import_seconds,
    )
    counter(
        "elaboration_seconds",
        "Seconds workers spent on requests other than importing their headers.",
        stats.elaboration_seconds,
    )
    restarts = family("restarts", "counter", "REPL restarts inside workers, by cause.")
    for cause, n in sorted(stats.restarts.items()):
        restarts.add(n, cause=cause)
    recycles = family("recycles", "counter", "Worker replacements, by reason.")
    for reason, n in sorted(stats.recycles.items()):
        recycles.add(n, reason=reason)
    counter("session_moves", "Sessions taken over by another worker.", stats.session_moves)
    counter("states_rebuilt", "Session states replayed on a new REPL.", stats.states_rebuilt)
    counter("states_unpickled", "Session states restored from checkpoints.", stats.states_unpickled)
    counter("retried", "Requests sent again because their worker was lost.", stats.retried)
    gauge("queued", "Requests waiting for a worker.", stats.queued)
    gauge("running", "Requests on a worker.", stats.running)

    latency = family("latency_seconds", "summary", "Submit-to-result time of recent requests.")
    for quantile, value in (
        ("0.5", stats.latency_p50),
        ("0.9", stats.latency_p90),
        ("0.99", stats.latency_p99),
    ):
        if value is not None:
            latency.add(value, quantile=quantile)
    family(
        "queue_wait_seconds",
        "summary",
        "Time requests waited in the queue, from submit to dispatch to a worker.",
    ).add(stats.queue_waits, "_count").add(stats.queue_wait_seconds, "_sum")
    memory = family(
        "memory_bytes",
        "gauge",
        "Memory of the workers' REPLs summed, by kind: rss (shared pages counted by each "
        "user), pss (shared pages split among users), private.",
    )
    for kind, total_mb in sorted(stats.memory.items()):
        memory.add(float(total_mb) * _MB, kind=kind)

    per_worker = {
        key: family(f"worker_{key}_bytes", "gauge", doc)
        for key, doc in (
            ("rss", "Resident memory of each worker's REPL."),
            ("pss", "Proportional set size of each worker's REPL (shared pages split)."),
            ("private", "Private memory of each worker's REPL."),
        )
    }
    peak = family(
        "worker_peak_rss_bytes",
        "gauge",
        "Highest resident memory of each worker's REPL seen at a scrape.",
    )
    in_flight = family("worker_in_flight", "gauge", "Requests on each worker.")
    for slot, worker in worker_slots(stats):
        for key, made in per_worker.items():
            reported = worker.get(f"{key}_mb")
            if isinstance(reported, (int, float)):
                made.add(float(reported) * _MB, worker=slot)
        count = worker.get("in_flight")
        if isinstance(count, int):
            in_flight.add(count, worker=slot)
    for slot, rss in sorted((peak_rss or {}).items()):
        peak.add(rss, worker=slot)

    for key, doc in (
        ("served", "Requests served on each machine (Ray node id, or host)."),
        ("worker_deaths", "Workers lost on each machine (Ray node id, or host)."),
    ):
        made = family(f"node_{key}", "counter", doc)
        for node, seen in sorted(stats.nodes.items()):
            made.add(seen.get(key, 0), node=node, host=str(seen.get("host")))
    return families


def worker_slots(stats: PoolStats) -> Iterable[tuple[str, dict[str, object]]]:
    """Each worker's report with its slot number as a label value."""
    for index, worker in enumerate(stats.workers):
        yield str(worker.get("slot", index)), worker


def update_peaks(peak_rss: dict[str, float], stats: PoolStats) -> None:
    """Raise `peak_rss` (worker slot to bytes) to the RSS each worker has in `stats`."""
    for slot, worker in worker_slots(stats):
        mb = worker.get("rss_mb")
        if isinstance(mb, (int, float)):
            peak_rss[slot] = max(float(mb) * _MB, peak_rss.get(slot, 0.0))


def render_text(families: Iterable[Family]) -> list[str]:
    """The lines of `families` in the text exposition format 0.0.4."""
    out: list[str] = []
    for made in families:
        out.append(f"# HELP {made.name} {_escape_help(made.doc)}")
        out.append(f"# TYPE {made.name} {made.kind}")
        for sample in made.samples:
            out.append(
                f"{made.name}{sample.suffix}{_labels(sample.labels)} {_number(sample.value)}"
            )
    return out


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{key}="{_escape_label(value)}"' for key, value in labels.items())
    return "{" + inner + "}"


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if value == float("inf"):
        return "+Inf"
    return repr(float(value))
