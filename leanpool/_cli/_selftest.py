"""`leanpool selftest`: do leanpool and this machine's Lean agree? A table, a JSON report.

Exit status: 0 nothing disagrees, 1 something does (or setup failed), 2 usage errors, 3 no Lean
on this machine (elan not found; one line says so; ``--sim`` runs on the REPL simulator).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from leanpool._cli._configs import SIMULATOR_LABEL, add_lean_arguments, parse_sim_options

EXIT_NO_LEAN = 3
DEFAULT_REPORT = "leanpool-selftest.json"
_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red", "skip": "dim", "info": "cyan"}


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "selftest",
        help="check that leanpool and this machine's Lean agree (writes a JSON report)",
        description="Set Lean up, then check: the REPL answers (start-up and import times); "
        "the REPL's own test files replayed live through leanpool; a live session recorded "
        "and replayed by the simulator; the verdict policy's cheats and honest proofs; the "
        "sandbox; a proof state pickled and unpickled (checkpoints, timed); the address space "
        "the project's imports need against RLIMIT_AS; a short pool run. Exit status: 0 all "
        "agree, 1 something disagrees, 2 usage error, "
        f"{EXIT_NO_LEAN} no Lean on this machine (elan not found).",
    )
    add_lean_arguments(parser, simulator=True)
    group = parser.add_argument_group("selftest")
    group.add_argument(
        "--quick",
        action="store_true",
        help="skip the REPL's Mathlib test files and run a shorter pool (for CI with Mathlib)",
    )
    group.add_argument(
        "--repl-tests",
        metavar="PATH",
        help="a directory of NAME.in / NAME.expected.out pairs to replay instead of the REPL "
        "checkout's test/ (recorded by another REPL release: release-to-release rewordings "
        "are then tolerated)",
    )
    group.add_argument(
        "--report",
        metavar="FILE",
        default=DEFAULT_REPORT,
        help=f"where to write the JSON report (default: {DEFAULT_REPORT}); attach it to bug "
        "reports",
    )
    group.add_argument(
        "--memory-hard-limit-mb",
        type=int,
        metavar="MB",
        help="the RLIMIT_AS to check the imports against (memory_hard_limit_mb)",
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="per-request time limit (default 600: a Mathlib import on a slow machine)",
    )
    group.add_argument("-j", "--workers", type=int, default=2, help="pool workers (default 2)")
    group.add_argument("-v", "--verbose", action="store_true", help="show the setup steps")
    parser.set_defaults(handler=run_selftest_command)


def run_selftest_command(args: argparse.Namespace) -> int:
    from leanpool._selftest import SelftestOptions, run_selftest
    from leanpool._setup import find_elan

    if not args.sim and find_elan() is None:
        print(
            "leanpool selftest: no Lean on this machine (elan not found on PATH, in "
            "$ELAN_HOME/bin or ~/.elan/bin): install elan (https://lean-lang.org/install/), "
            "or run `leanpool selftest --sim` to try it on the REPL simulator.",
            file=sys.stderr,
        )
        return EXIT_NO_LEAN
    if args.workers < 1:
        print("leanpool selftest: --workers must be at least 1", file=sys.stderr)
        return 2
    try:
        sim_options = parse_sim_options(args.sim_option)
    except ValueError as exc:
        print(f"leanpool selftest: {exc}", file=sys.stderr)
        return 2
    options = SelftestOptions(
        project=args.project,
        lean_version=args.lean_version,
        quick=args.quick,
        repl_tests=args.repl_tests,
        sim=args.sim,
        sim_options=sim_options,
        cache_dir=args.cache_dir,
        repl_git=args.repl_git,
        repl_rev=args.repl_rev,
        memory_hard_limit_mb=args.memory_hard_limit_mb,
        timeout=args.timeout,
        workers=args.workers,
        verbose=args.verbose,
    )
    console = Console(highlight=False)
    progress = Console(stderr=True, highlight=False)
    if args.sim:
        progress.print(f"[bold yellow]{SIMULATOR_LABEL}[/]: every result below is the simulator's")

    def show(result: Any) -> None:
        style = _STYLE[result.status]
        progress.print(
            f"[{style}]{result.status:>4}[/] {escape(result.name)} [dim]({result.seconds:.1f} s)[/]"
        )

    report = run_selftest(options, on_result=show)
    console.print(render(report))
    path = report.write(args.report)
    failed = [c.name for c in report.checks if c.status == "fail"]
    if report.simulated:
        console.print(
            f"[bold yellow]{SIMULATOR_LABEL}[/]: these results are the simulator's; they say "
            "nothing about real Lean."
        )
    verdict = f"[bold red]disagrees:[/] {', '.join(failed)}" if failed else "[green]all agree[/]"
    console.print(f"{verdict}. Report: {escape(str(path))}")
    return report.exit_status


def render(report: Any) -> Table:
    target = report.target.get("label") or "setup failed"
    style = "bold yellow" if report.simulated else "bold"
    title = f"leanpool selftest: [{style}]{escape(target)}[/]"
    table = Table(title=title, title_justify="left", show_edge=False)
    table.add_column("check")
    table.add_column("status")
    table.add_column("ran on")
    table.add_column("time", justify="right")
    table.add_column("details", overflow="fold")
    for check in report.checks:
        style = _STYLE[check.status]
        table.add_row(
            check.name,
            f"[{style}]{check.status}[/]",
            "[yellow]simulator[/]" if check.simulated else "Lean",
            f"{check.seconds:.1f} s",
            escape(check.summary),
        )
    return table
