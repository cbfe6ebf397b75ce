"""Entry point of `make bench`: ``python -m bench.run [--mode quick|full|smoke]``.

Runs the scenarios in order on the simulator, then writes ``latest.json``, ``latest.md`` and the
plots to the output directory (default bench/results/) and a dated copy of all three under
``runs/`` there. A scenario that fails is reported as failed (with its traceback) and the others
still run; the exit status is 1 then.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from bench import plots, report
from bench.modes import MODES, SIZES
from bench.scenarios import Context
from bench.systems import leaninteract_available

RESULTS = Path(__file__).resolve().parent / "results"

# scenario key -> module under bench.scenarios
SCENARIOS = {
    "s1_overhead": "overhead",
    "s2_scaling": "scaling",
    "s3_imports": "imports",
    "s4_faults": "faults",
    "s5_memory": "memory",
    "s6_streaming": "streaming",
    "s7_rl": "rl",
    "s8_json": "json_parse",
    "s9_verdicts": "verdicts",
    "s10_serve": "serve",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument(
        "--mode",
        choices=MODES,
        default=os.environ.get("BENCH") or "quick",
        help="sizes of the scenarios (default: $BENCH, else quick)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="output directory")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated scenario numbers or keys to run (default: all), e.g. 1,3",
    )
    parser.add_argument("--workers", type=int, default=2, help="pool size (default 2)")
    parser.add_argument(
        "--no-leaninteract",
        action="store_true",
        help="skip the LeanInteract comparisons (also skipped when it is not installed)",
    )
    parser.add_argument("--no-plots", action="store_true", help="write no PNG files")
    return parser


def _selected(only: str) -> list[str]:
    if not only.strip():
        return list(SCENARIOS)
    chosen: list[str] = []
    for word in only.split(","):
        word = word.strip()
        for key in SCENARIOS:
            prefix = key.split("_", 1)[0]  # "s10"
            if word in (key, prefix, prefix[1:]):
                chosen.append(key)
    return chosen


def run_scenarios(ctx: Context, keys: list[str]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for key in keys:
        module = importlib.import_module(f"bench.scenarios.{SCENARIOS[key]}")
        started = time.perf_counter()
        try:
            results[key] = module.run(ctx)
        except Exception:
            ctx.log(f"{key} failed:\n{traceback.format_exc()}")
            results[key] = {"error": traceback.format_exc(), "variants": []}
        results[key]["scenario_seconds"] = round(time.perf_counter() - started, 1)
        ctx.log(f"{key} done in {results[key]['scenario_seconds']} s")
    return results


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    sizes = SIZES[args.mode]
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    with_li = not args.no_leaninteract and leaninteract_available()
    if not with_li:
        notes.append(
            "LeanInteract comparisons skipped: "
            + ("--no-leaninteract." if args.no_leaninteract else "lean-interact not installed.")
        )
    if sizes.import_commands_slow < sizes.import_commands:
        notes.append(
            f"Scenario 3 in {args.mode} mode: the per-command baselines (seed recipe, leanpool "
            f"without affinity) ran {sizes.import_commands_slow} of the {sizes.import_commands} "
            "commands (equal per header); their time is scaled linearly to all of them."
        )
    machine = report.machine_info()
    started_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    begin = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="leanpool-bench-") as workdir:
        ctx = Context(
            mode=args.mode,
            sizes=sizes,
            workdir=Path(workdir),
            workers=args.workers,
            with_leaninteract=with_li,
            deadline_s=sizes.deadline_s,
        )
        ctx.log(f"mode {args.mode}, {args.workers} workers, LeanInteract: {with_li}")
        scenarios = run_scenarios(ctx, _selected(args.only))
    duration = time.perf_counter() - begin
    result = report.build(args.mode, started_at, duration, machine, scenarios, args.workers, notes)
    written: list[str] = []
    if not args.no_plots:
        if plots.available():
            written = plots.write_all(scenarios, out)
        else:
            result["notes"].append("No plots: matplotlib is not installed.")
    report.write_json(result, out / "latest.json")
    (out / "latest.md").write_text(report.markdown(result, written), encoding="utf-8")
    _keep_dated_copy(out, args.mode, ["latest.json", "latest.md", *written])
    _print_summary(result, out)
    return 1 if any("error" in s for s in scenarios.values()) else 0


def _keep_dated_copy(out: Path, mode: str, files: list[str]) -> None:
    folder = out / "runs" / f"{time.strftime('%Y%m%d-%H%M%S')}-{mode}"
    folder.mkdir(parents=True, exist_ok=True)
    for name in files:
        shutil.copy2(out / name, folder / name)


def _print_summary(result: dict[str, Any], out: Path) -> None:
    print(f"\nleanpool benchmark ({result['mode']}, {result['duration_s']} s): {out}")
    for key, target in result["targets"].items():
        met = {True: "met", False: "MISSED", None: "n/a"}[target["met"]]
        print(f"  {key:40} {target['value']!s:>10}  target {target['target']:<8} {met}")


if __name__ == "__main__":
    sys.exit(main())
