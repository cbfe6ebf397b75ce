"""Scenario 10: `leanpool serve` against the Kimina Lean Server, both driven by Kimina's client.

The same simulator, with the same options, answers behind both: leanpool's pool runs it as its
REPL; the Kimina server (``kimina-ast-server`` 2.1.3 from PyPI, in a Python 3.12 environment made
by `bench.kimina`) starts it through a small executable wrapper placed where it expects the REPL
binary, offline (a stand-in ``lake`` and ``prisma``). Both get `workers` REPLs and quiet logging.

Both are driven by the same load (`bench/kimina_load.py`, run with ``kimina-client`` 0.2.1 in its
own Python 3.12 environment): ``AsyncKiminaClient.check(snippets, batch_size=8, max_workers=5)``,
the client's defaults, each ``api_check`` call (one HTTP request per batch) timed:

- ``trivial``: ``theorem ... : True := trivial``, no imports: what a check costs the service
  itself. Best of `repeats` runs (each with snippets of its own: no run repeats another's).
- ``mixed``: whole proofs as an RL loop or a dataset evaluation sends them, under three import
  headers (importing ``Mathlib`` costs `kimina_import_ms` in the simulator), each burning
  `kimina_cpu_ms`, some wrong, some ending in ``sorry``.

Headline: ``speedup_vs_kimina_server`` = the Kimina server's time / leanpool's for the trivial
load; the mixed load's is ``speedup_vs_kimina_server_mixed``. Latency percentiles are per call
(a batch of 8). Every snippet must get exactly one result on both sides, with the same outcomes.

Where the Kimina client or server cannot be installed (no Python 3.12; in smoke mode, nothing is
installed: environments are used only if an earlier run or test made them), the scenario says why,
leanpool's side is still measured (by httpx with the same batching if the client is missing), and
the ratios are None.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import kimina
from bench.measure import Run, best_of
from bench.scenarios import Context

ROOT = Path(__file__).resolve().parents[2]
LOAD = ROOT / "bench" / "kimina_load.py"
BATCH_SIZE, CONCURRENCY = 8, 5  # AsyncKiminaClient.check's defaults


def _sim_options(sizes: Any) -> dict[str, Any]:
    return {
        "imports": {"Mathlib": (sizes.kimina_import_ms, sizes.kimina_import_mb)},
        "import_default": (max(1, sizes.kimina_import_ms // 10), 0),
    }


def _sim_flags(options: dict[str, Any]) -> list[str]:
    flags: list[str] = []
    for module, (ms, mb) in options["imports"].items():
        flags += ["--sim-option", f"import={module}={ms}ms,{mb}mb"]
    ms, mb = options["import_default"]
    return [*flags, "--sim-option", f"import_default={ms}ms,{mb}mb"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def leanpool_serve(ctx: Context, options: dict[str, Any], log: Path) -> Iterator[str]:
    """`leanpool serve` on the simulator, on a free port; its URL. Stopped by SIGTERM."""
    command = [
        sys.executable, "-m", "leanpool", "serve", "--sim", *_sim_flags(options),
        "--port", "0", "--workers", str(ctx.workers), "--timeout", "600", "--no-access-log",
    ]  # fmt: skip
    start = log.stat().st_size if log.exists() else 0
    with log.open("ab") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=sink, cwd=ROOT)
    try:
        url = _announced_url(process, log, start)
        kimina.wait_healthy(url, process, 60)
        _warm(url, ctx.workers)
        yield url
    finally:
        kimina.stop(process, grace=60)
        ctx.log(f"s10: leanpool serve stopped with status {process.returncode}")


def _announced_url(process: subprocess.Popen[Any], log: Path, start: int) -> str:
    """The URL in the ``listening on`` line it writes when ready."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with log.open("rb") as handle:
            handle.seek(start)
            text = handle.read().decode("utf-8", "replace")
        if "listening on " in text:
            return text.split("listening on ", 1)[1].split()[0]
        if process.poll() is not None:
            raise RuntimeError(f"leanpool serve exited with status {process.returncode}: {text}")
        time.sleep(0.05)
    raise RuntimeError("leanpool serve did not say it was ready within 120 s")


def _warm(url: str, workers: int) -> None:
    """Until every worker has its REPL up (distinct slow requests, at once)."""
    import httpx

    requests = [f"#eval {-(k + 1)} --!sim sleep_ms=50" for k in range(2 * workers)]
    httpx.post(f"{url}/v1/batch", json={"requests": requests}, timeout=120).raise_for_status()


def _drive(
    ctx: Context, python: Path | None, url: str, workload: str, count: int, run: int
) -> dict[str, Any]:
    sizes = ctx.sizes
    command = [
        str(python or sys.executable), str(LOAD), "--url", url, "--workload", workload,
        "--count", str(count), "--seed", str(ctx.seed), "--run", str(run),
        "--cpu-ms", str(sizes.kimina_cpu_ms),
        "--batch-size", str(BATCH_SIZE), "--concurrency", str(CONCURRENCY), "--timeout", "600",
    ]  # fmt: skip
    if python is None:
        command.append("--plain")
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=ctx.deadline_s, check=False, cwd=ROOT
    )
    if done.returncode != 0:
        raise RuntimeError(f"the load driver failed: {done.stderr[-2000:]}")
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def _as_run(name: str, report: dict[str, Any]) -> Run:
    run = Run(name)
    run.submitted = report["snippets"]
    run.results = report["results"]
    run.kinds = Counter(report["outcomes"])
    run.latencies = list(report["latencies_s"])
    run.seconds = report["seconds"]
    run.notes.update(
        client=report["client"],
        calls=report["calls"],
        lost_by_id=report["lost"],
        batch_size=BATCH_SIZE,
        concurrency=CONCURRENCY,
    )
    return run


def _measure(
    ctx: Context, system: str, python: Path | None, url: str, runs: Iterator[int]
) -> dict[str, Run]:
    sizes = ctx.sizes
    trivial = []
    for repeat in range(sizes.repeats):
        ctx.log(f"s10: {system}, {sizes.kimina_trivial} trivial checks ({repeat + 1})")
        report = _drive(ctx, python, url, "trivial", sizes.kimina_trivial, next(runs))
        trivial.append(_as_run(f"{system}_trivial", report))
    ctx.log(f"s10: {system}, {sizes.kimina_mixed} proofs of the mixed load")
    mixed = _as_run(
        f"{system}_mixed", _drive(ctx, python, url, "mixed", sizes.kimina_mixed, next(runs))
    )
    mixed.notes["repeats"] = 1
    mixed.notes["lost_all_repeats"] = mixed.lost
    return {"trivial": best_of(trivial), "mixed": mixed}


def _ensure(kind: str, install: bool) -> tuple[Path | None, str]:
    if install:
        return kimina.ensure_venv(kind)
    python = kimina.cached_venv(kind)
    if python is not None:
        return python, ""
    return None, (
        f"the Kimina {kind} environment was not made yet, and this mode installs nothing "
        f"(`python -m bench.kimina {kind}`, a quick run or the tests of leanpool serve make it)"
    )


def run(ctx: Context) -> dict[str, Any]:
    sizes = ctx.sizes
    options = _sim_options(sizes)
    install = sizes.kimina_install and not os.environ.get("LEANPOOL_BENCH_NO_INSTALL")
    client, client_why = _ensure("client", install)
    server, server_why = _ensure("server", install) if client is not None else (None, "")
    log = ctx.workdir / "s10-servers.log"
    runs = iter(range(1, 1000))  # each run's snippets named apart (the same ones drawn)
    systems: dict[str, dict[str, Run]] = {}
    with leanpool_serve(ctx, options, log) as url:
        systems["leanpool_serve"] = _measure(ctx, "leanpool_serve", client, url, runs)
    kimina_why = client_why or server_why
    if client is not None and server is not None:
        workspace = kimina.Workspace(ctx.workdir / "kimina-workspace", _sim_command(options))
        try:
            with kimina.kimina_server(server, workspace, _free_port(), ctx.workers, log) as url:
                systems["kimina_server"] = _measure(ctx, "kimina_server", client, url, runs)
        except RuntimeError as exc:  # it would not start: say why
            kimina_why = f"the Kimina server did not start: {exc}; {_tail(log)}"
    ctx.log(f"s10: Kimina server {'measured' if not kimina_why else 'skipped: ' + kimina_why}")
    return _report(ctx, systems, client, kimina_why)


def _sim_command(options: dict[str, Any]) -> list[str]:
    from leanpool.testing import sim_command

    return sim_command(**options)


def _tail(log: Path) -> str:
    with contextlib.suppress(OSError):
        return " | ".join(log.read_text(encoding="utf-8").strip().splitlines()[-3:])
    return ""


def _latency(run: Run) -> dict[str, Any]:
    summary = run.as_dict()
    return {
        "p50_ms": summary["latency_ms"]["p50"],
        "p99_ms": summary["latency_ms"]["p99"],
        "snippets_per_s": summary["throughput_rps"],
    }


def _report(
    ctx: Context, systems: dict[str, dict[str, Run]], client: Path | None, why: str
) -> dict[str, Any]:
    sizes = ctx.sizes
    ours, theirs = systems["leanpool_serve"], systems.get("kimina_server")

    def ratio(workload: str) -> float | None:
        if theirs is None or not ours[workload].seconds:
            return None
        return round(theirs[workload].seconds / ours[workload].seconds, 3)

    same = None
    if theirs is not None:
        same = all(ours[w].kinds == theirs[w].kinds for w in ("trivial", "mixed"))
    return {
        "description": (
            f"leanpool serve and the Kimina server ({ctx.workers} REPLs each, the same simulator) "
            f"under the same {'kimina-client' if client is not None else 'httpx'} load: "
            f"check(batch_size={BATCH_SIZE}, max_workers={CONCURRENCY}); "
            f"{sizes.kimina_trivial} trivial checks (best of "
            f"{sizes.repeats}), {sizes.kimina_mixed} proofs of a mixed load (three import "
            f"headers, Mathlib {sizes.kimina_import_ms} ms to import, {sizes.kimina_cpu_ms} ms "
            "each); latencies are per call (a batch)"
        ),
        "workers": ctx.workers,
        "client": "kimina-client 0.2.1" if client is not None else "httpx (kimina-client missing)",
        "kimina_server": "kimina-ast-server 2.1.3" if not why else None,
        "kimina_skipped": why or None,
        "variants": [run.as_dict() for runs in systems.values() for run in runs.values()],
        "latency": {
            system: {workload: _latency(run) for workload, run in runs.items()}
            for system, runs in systems.items()
        },
        "same_outcomes": same,
        "speedup_vs_kimina_server": ratio("trivial"),
        "speedup_vs_kimina_server_mixed": ratio("mixed"),
    }
