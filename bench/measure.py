"""Measuring: outcome accounting (one result per request, or it is lost), latency percentiles,
closed-loop drivers, and memory samplers (RSS, PSS and private memory).

Everything a scenario reports goes through `Run`, so every variant of every scenario is counted
the same way: submitted requests, results received, results by kind, and `lost` = submitted
requests without exactly one result.
"""

from __future__ import annotations

import contextlib
import functools
import math
import re
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import psutil

from leanpool._memory import pss_bytes

MB = 1024 * 1024
_MARKER = re.compile(r"\bx(\d+) : Nat")


def percentile(values: list[float], q: float) -> float | None:
    """The q-quantile (0..1) of `values`, nearest rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))
    return ordered[rank]


def latency_summary(latencies_s: list[float]) -> dict[str, float | None]:
    """p50/p90/p99/mean/max in milliseconds."""

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 3)

    return {
        "p50": ms(percentile(latencies_s, 0.50)),
        "p90": ms(percentile(latencies_s, 0.90)),
        "p99": ms(percentile(latencies_s, 0.99)),
        "mean": ms(statistics.fmean(latencies_s)) if latencies_s else None,
        "max": ms(max(latencies_s)) if latencies_s else None,
    }


def classify(result: object) -> str:
    """The kind of one result, for leanpool and LeanInteract alike (duck-typed).

    ``ok`` (a response without error messages), ``lean_error`` (Lean rejected the input: an
    error message or a `LeanError`), ``state_lost`` (the env / proof state named is unknown, or
    could not be rebuilt), ``timeout``, ``crash``, ``memory``, or ``error:<Type>``.
    """
    if isinstance(result, BaseException):
        if isinstance(result, TimeoutError):
            return "timeout"
        if isinstance(result, ConnectionAbortedError):
            return "crash"
        if isinstance(result, MemoryError):
            return "memory"
        if isinstance(result, LookupError) or "replay" in str(result):
            return "state_lost"
        return f"error:{type(result).__name__}"
    if type(result).__name__ == "LeanError":
        message = str(getattr(result, "message", ""))
        return "state_lost" if message.startswith("Unknown") else "lean_error"
    for message in getattr(result, "messages", None) or ():
        if getattr(message, "severity", None) == "error":
            return "lean_error"
    return "ok"


def episode_markers(result: object) -> set[int]:
    """Episode numbers named by the goals (or error text) of a result: ``x<N> : Nat``."""
    texts: list[str] = []
    texts.extend(str(goal) for goal in getattr(result, "goals", None) or ())
    texts.extend(str(getattr(s, "goal", "")) for s in getattr(result, "sorries", None) or ())
    if type(result).__name__ == "LeanError":
        texts.append(str(getattr(result, "message", "")))
    return {int(match) for text in texts for match in _MARKER.findall(text)}


@dataclass
class Run:
    """One measured variant: counts, kinds of results, latencies, wall time."""

    name: str
    submitted: int = 0
    results: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)

    def add(self, result: object, latency: float | None = None) -> str:
        kind = classify(result)
        self.results += 1
        self.kinds[kind] += 1
        if latency is not None:
            self.latencies.append(latency)
        return kind

    @property
    def lost(self) -> int:
        return abs(self.submitted - self.results)

    @property
    def throughput(self) -> float | None:
        return self.results / self.seconds if self.seconds > 0 else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "requests": self.submitted,
            "results": self.results,
            "lost": self.lost,
            "seconds": round(self.seconds, 4),
            "throughput_rps": None if self.throughput is None else round(self.throughput, 2),
            "latency_ms": latency_summary(self.latencies),
            "outcomes": dict(sorted(self.kinds.items())),
            **self.notes,
        }


def best_of(runs: list[Run]) -> Run:
    """The run with the highest throughput, noting every repetition's (the machine is shared:
    other load only ever slows a run down, so the best repetition is the least disturbed)."""
    best = max(runs, key=lambda r: r.throughput or 0.0)
    best.notes["repeats"] = len(runs)
    best.notes["throughput_rps_all"] = [round(r.throughput or 0.0, 2) for r in runs]
    best.notes["lost_all_repeats"] = sum(r.lost for r in runs)
    return best


def drive_window(
    run: Run,
    submit: Callable[[Any], Future[Any]],
    requests: Iterable[Any],
    window: int,
    deadline_s: float,
) -> Run:
    """Closed loop: keep `window` requests outstanding; latency = submit to result.

    Results are counted in the futures' callbacks; requests without a result by the deadline
    stay counted as lost (and their futures are cancelled where still possible).
    """
    slots = threading.Semaphore(window)
    lock = threading.Lock()
    closed = threading.Event()
    futures: list[tuple[float, Future[Any]]] = []
    settled: set[int] = set()

    def settle(started: float, future: Future[Any]) -> None:
        """Count a result once: from its callback, or after the wait below (a callback may
        run after `result()` returned: waiters wake first, and a pool runs callbacks on
        another thread)."""
        if closed.is_set():  # past the deadline: the request stays counted as lost
            return
        latency = time.perf_counter() - started
        try:
            outcome: object = future.result()
        except BaseException as exc:
            outcome = exc
        with lock:
            if id(future) in settled:
                return
            settled.add(id(future))
            run.add(outcome, latency)
        slots.release()

    begin = time.perf_counter()
    end_by = begin + deadline_s
    for request in requests:
        if not slots.acquire(timeout=max(0.0, end_by - time.perf_counter())):
            break
        started = time.perf_counter()
        try:
            future = submit(request)
        except BaseException as exc:  # a refused submit is that request's result
            run.submitted += 1
            with lock:
                run.add(exc, time.perf_counter() - started)
            slots.release()
            continue
        run.submitted += 1
        futures.append((started, future))
        future.add_done_callback(functools.partial(settle, started))
    for started, future in futures:
        with contextlib.suppress(BaseException):
            future.result(timeout=max(0.0, end_by - time.perf_counter()))
        if future.done():
            settle(started, future)
    run.seconds = time.perf_counter() - begin
    closed.set()
    for _started, future in futures:
        future.cancel()
    return run


def drive_sequential(
    run: Run, call: Callable[[Any], object], requests: Iterable[Any], deadline_s: float
) -> Run:
    """One request at a time (the latency of an idle client); exceptions are results."""
    begin = time.perf_counter()
    for request in requests:
        if time.perf_counter() - begin > deadline_s:
            break
        run.submitted += 1
        started = time.perf_counter()
        try:
            outcome = call(request)
        except Exception as exc:
            outcome = exc
        run.add(outcome, time.perf_counter() - started)
    run.seconds = time.perf_counter() - begin
    return run


# ------------------------------------------------------------------------ memory
def own_rss_mb() -> float:
    return float(psutil.Process().memory_info().rss) / MB


def descendants_memory_mb(pss: bool = True) -> dict[str, Any]:
    """Memory of this process's descendants (pool workers, REPLs, whatever else the bench
    started), in MB: the totals (``total_*``) and the largest REPL's (``repl_*``: simulator
    processes, the largest by each measure on its own), three ways:

    * ``rss``: the resident set, shared pages included. An imported module's pages (the
      simulator maps each module's file read-only, as Lean maps ``.olean`` files) count in
      every process that maps them: the total counts them once per process.
    * ``pss``: the proportional set size (``Pss`` of ``/proc/<pid>/smaps_rollup``): each
      shared page divided among the processes mapping it, so the total counts it once: what
      these processes cost the machine (up to pages they share with processes outside them).
    * ``private``: resident minus shared pages (``/proc/<pid>/statm``): what only that process
      holds (heap, leaked memory, a private copy of a module), as leanpool counts it.

    Also ``processes`` and ``repls``: how many were counted. PSS is the expensive one (the
    kernel walks the page tables of every resident page, file or heap: several ms per GB on 2
    cores); ``pss=False`` skips it and leaves its keys None. A process's PSS is read before
    its RSS, so while its memory only grows, its PSS is never above its RSS.
    """
    rss_total = pss_total = private_total = 0.0
    repl_rss = repl_pss = repl_private = 0.0
    processes = repls = 0
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process().children(recursive=True):
            try:
                is_repl = "simrepl" in " ".join(child.cmdline())
                proportional = pss_bytes(child.pid) / MB if pss else 0.0
                info = child.memory_info()  # one read of statm: resident and shared
            except psutil.Error:
                continue
            rss = float(info.rss) / MB
            private = float(max(0, info.rss - info.shared)) / MB
            processes += 1
            rss_total += rss
            pss_total += proportional
            private_total += private
            if is_repl:
                repls += 1
                repl_rss = max(repl_rss, rss)
                repl_pss = max(repl_pss, proportional)
                repl_private = max(repl_private, private)
    return {
        "total_rss_mb": rss_total,
        "total_pss_mb": pss_total if pss else None,
        "total_private_mb": private_total,
        "repl_rss_mb": repl_rss,
        "repl_pss_mb": repl_pss if pss else None,
        "repl_private_mb": repl_private,
        "processes": processes,
        "repls": repls,
    }


def memory_snapshot_mb() -> dict[str, Any]:
    """One `descendants_memory_mb` sample with PSS, rounded to 0.1 MB (scenario 3 takes one at
    the end of each variant, after the clock stopped)."""
    sample = descendants_memory_mb()
    return {k: round(v, 1) if isinstance(v, float) else v for k, v in sample.items()}


class MemoryProbe:
    """A `Sampler` probe: `descendants_memory_mb`, with PSS on every sample while reading it
    costs at most `pss_budget_ms`; when it costs more (REPLs that mapped gigabytes), on every
    k-th sample only, k = cost / budget rounded up, so that sampling every 100 ms stays
    feasible. Samples without PSS have None there. `final()` always reads it."""

    def __init__(self, pss_budget_ms: float = 20.0) -> None:
        self.pss_budget_ms = pss_budget_ms
        self.pss_every = 1
        self.calls = 0
        self.pss_reads = 0
        self.pss_probe_ms: list[float] = []  # how long each sample with PSS took

    def __call__(self) -> dict[str, Any]:
        with_pss = self.calls % self.pss_every == 0
        self.calls += 1
        return self._sample(with_pss)

    def final(self) -> dict[str, Any]:
        return self._sample(True)

    def _sample(self, with_pss: bool) -> dict[str, Any]:
        began = time.perf_counter()
        sample = descendants_memory_mb(pss=with_pss)
        if with_pss:
            cost_ms = (time.perf_counter() - began) * 1000
            self.pss_reads += 1
            self.pss_probe_ms.append(cost_ms)
            self.pss_every = max(1, math.ceil(cost_ms / self.pss_budget_ms))
        return sample


def probe_cost(probe: MemoryProbe) -> dict[str, float | None]:
    """How long a `MemoryProbe` sample with PSS took: median and max, in ms."""
    costs = probe.pss_probe_ms
    return {
        "p50": round(statistics.median(costs), 2) if costs else None,
        "max": round(max(costs), 2) if costs else None,
    }


def memory_summary(samples: list[tuple[float, dict[str, Any]]]) -> dict[str, Any]:
    """Peaks (over the samples, each measure on its own) and final values of a `Sampler` run
    with a `MemoryProbe`: the totals of workers + REPLs and the largest REPL's RSS, PSS and
    private memory, in MB (None where no sample read that measure)."""

    def series(key: str) -> list[float]:
        return [s[key] for _t, s in samples if s.get(key) is not None]

    def peak(key: str) -> float | None:
        values = series(key)
        return round(max(values), 1) if values else None

    def final(key: str) -> float | None:
        values = series(key)
        return round(values[-1], 1) if values else None

    return {
        "peak_total_rss_mb": peak("total_rss_mb"),
        "peak_total_pss_mb": peak("total_pss_mb"),
        "peak_total_private_mb": peak("total_private_mb"),
        "final_total_rss_mb": final("total_rss_mb"),
        "final_total_pss_mb": final("total_pss_mb"),
        "final_total_private_mb": final("total_private_mb"),
        "peak_repl_rss_mb": peak("repl_rss_mb"),
        "peak_repl_pss_mb": peak("repl_pss_mb"),
        "peak_repl_private_mb": peak("repl_private_mb"),
        "samples": len(samples),
        "pss_samples": len(series("total_pss_mb")),
    }


class Sampler:
    """Calls `probe` every `interval` seconds on a thread; `samples` = [(t, value), ...]. The
    last sample, taken on exit, calls the probe's `final()` when it has one."""

    def __init__(self, probe: Callable[[], Any], interval: float) -> None:
        self.probe = probe
        self.interval = interval
        self.samples: list[tuple[float, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-sampler", daemon=True)
        self._start = 0.0

    def _loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                self.samples.append((time.perf_counter() - self._start, self.probe()))
            self._stop.wait(self.interval)

    def __enter__(self) -> Sampler:
        self._start = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        last = getattr(self.probe, "final", self.probe)
        with contextlib.suppress(Exception):
            self.samples.append((time.perf_counter() - self._start, last()))


@contextlib.contextmanager
def timed() -> Iterator[list[float]]:
    """``with timed() as t: ...`` then ``t[0]`` is the elapsed wall time in seconds."""
    holder = [0.0]
    begin = time.perf_counter()
    try:
        yield holder
    finally:
        holder[0] = time.perf_counter() - begin
