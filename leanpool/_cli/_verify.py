"""`leanpool verify`: check many proofs on a pool, write one JSONL line per input, summarise.

Exit status: 0 when every input passed, 1 when some failed (rejected by Lean, or a fault such as a
timeout), 2 on usage or input errors (a missing path, a malformed JSONL line), which take
precedence: a run whose inputs were partly unreadable is not a clean verdict on the dataset.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from leanpool._batch import Verdict, verdict_of
from leanpool._cli._configs import (
    SETUP_HINT,
    SIMULATOR_LABEL,
    add_lean_arguments,
    build_config,
    uses_simulator,
)
from leanpool._cli._inputs import Input, InputProblem, ProofInput, read_inputs
from leanpool._cli._sandbox import add_sandbox_arguments, sandbox_options
from leanpool._pool import LeanPool
from leanpool._stats import PoolStats
from leanpool.protocol import LeanError

DEFAULT_TIMEOUT = 120.0
EXIT_PASSED, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
_CI_VARIABLES = ("CI", "GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE", "JENKINS_URL", "TF_BUILD")
_FAILURES_SHOWN = 10

CliVerdict = Literal["passed", "lean_error", "fault", "input_error"]
VERDICTS: tuple[CliVerdict, ...] = ("passed", "lean_error", "fault", "input_error")


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "verify",
        help="check .lean files, directories of them, or JSONL datasets",
        description="Check proofs on a pool of Lean REPLs. PATH is a .lean file, a directory "
        "(searched for .lean files), or a JSONL file with one proof per line: "
        '{"id": ..., "code": "theorem ...", "header": "import Mathlib"} (header optional). '
        "Exit status: 0 all passed, 1 some failed, 2 usage or input errors.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="inputs to check")
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write one JSON line per input (id, verdict, errors, seconds); '-' for stdout",
    )
    run = parser.add_argument_group("pool")
    run.add_argument(
        "-j", "--workers", type=_positive_int, metavar="N", help="REPL workers (default: CPUs)"
    )
    run.add_argument(
        "--timeout",
        type=_non_negative_float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"per-proof time limit (default: {DEFAULT_TIMEOUT:g} s; the library's default is no "
        "limit, the CLI's is safe by default); 0 means no limit",
    )
    run.add_argument(
        "--memory-limit-mb",
        type=_positive_float,
        metavar="MB",
        help="per-worker REPL memory (RSS) limit; a proof crossing it is a fault",
    )
    run.add_argument(
        "--max-tasks-per-worker",
        type=_positive_int,
        metavar="N",
        help="replace each worker after N proofs (bounds memory growth)",
    )
    run.add_argument(
        "--allow-sorry", action="store_true", help="count proofs that use sorry as passed"
    )
    run.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar (default: when attached to a terminal)",
    )
    run.add_argument("-v", "--verbose", action="store_true", help="show setup steps")
    add_sandbox_arguments(parser)
    add_lean_arguments(parser, simulator=True)
    parser.set_defaults(handler=run_verify)


# ------------------------------------------------------------------------------------- records
@dataclass
class Record:
    """One input's outcome, as written to the output file."""

    input: Input
    verdict: CliVerdict | None = None
    errors: list[dict[str, Any]] | None = None
    uses_sorry: bool = False
    seconds: float | None = None
    fault_kind: str | None = None

    def as_json(self) -> dict[str, Any]:
        line: dict[str, Any] = {
            "id": self.input.id,
            "source": self.input.source,
            "verdict": self.verdict,
            "errors": self.errors or [],
            "uses_sorry": self.uses_sorry,
            "seconds": None if self.seconds is None else round(self.seconds, 4),
        }
        if self.fault_kind is not None:
            line["fault"] = self.fault_kind
        return line

    def first_error(self) -> str:
        for error in self.errors or []:
            text = str(error.get("message", ""))
            where = f"{error['line']}:{error['column']}: " if "line" in error else ""
            return where + text.strip().splitlines()[0] if text.strip() else where
        return "uses sorry" if self.uses_sorry else ""


def describe_outcome(record: Record, outcome: Any, verdict: Verdict) -> None:
    """Fill a record's errors from a response or an exception."""
    record.verdict = verdict
    if isinstance(outcome, BaseException):
        record.fault_kind = type(outcome).__name__
        message = str(outcome) or type(outcome).__name__
        record.errors = [{"kind": record.fault_kind, "message": message}]
        return
    if isinstance(outcome, LeanError):  # the REPL refused the request
        record.errors = [{"kind": "LeanError", "message": str(outcome.message)}]
        return
    errors = []
    offset = record.input.header_lines if isinstance(record.input, ProofInput) else 0
    for message in getattr(outcome, "messages", None) or []:
        if message.severity == "error":
            line = message.start_pos.line
            error: dict[str, Any] = {
                "line": line - offset if line > offset else line,
                "column": message.start_pos.column,
                "message": message.data,
            }
            if line <= offset:
                error["in_header"] = True
            errors.append(error)
    record.errors = errors
    sorry_warning = any(
        message.severity == "warning"
        and "declaration uses 'sorry'" in message.data.replace("`", "'")
        for message in getattr(outcome, "messages", None) or []
    )
    record.uses_sorry = bool(getattr(outcome, "sorries", None)) or sorry_warning


# ------------------------------------------------------------------------------------- running
def run_verify(args: argparse.Namespace) -> int:
    to_stdout = args.output == "-"
    console = Console(stderr=to_stdout, highlight=False)
    simulator = uses_simulator(args)
    if simulator:
        console.print(
            f"[bold magenta]leanpool verify: running on the {SIMULATOR_LABEL}[/]: verdicts come "
            "from a toy elaborator, not from Lean."
        )
    records = [Record(item) for item in read_inputs(args.paths)]
    for record in records:
        if isinstance(record.input, InputProblem):
            record.verdict = "input_error"
            record.errors = [{"kind": "input_error", "message": record.input.message}]
            console.print(f"[red]input error[/] {_escape(record.input.message)}")
    proofs = [r for r in records if isinstance(r.input, ProofInput)]

    started = time.monotonic()
    stats: PoolStats | None = None
    if proofs:
        outcome = _check_proofs(args, console, proofs, simulator)
        if isinstance(outcome, int):
            return outcome
        stats = outcome
    wall = time.monotonic() - started

    if args.output:
        _write_output(args.output, records)
    _print_summary(console, records, wall, simulator, args, stats)
    counts = Counter(r.verdict for r in records)
    if counts["input_error"] or not records:
        return EXIT_USAGE
    return EXIT_PASSED if counts["passed"] == len(records) else EXIT_FAILED


def _check_proofs(
    args: argparse.Namespace, console: Console, proofs: list[Record], simulator: bool
) -> PoolStats | int:
    """Run every proof through a pool: the pool's statistics, or an exit status."""
    from leanpool._errors import LeanSetupError

    try:
        config = build_config(args, verbose=args.verbose)
    except LeanSetupError as exc:
        console.print(f"[bold red]Lean setup failed.[/]\n{_escape(str(exc))}\n{SETUP_HINT}")
        return EXIT_USAGE
    except (TypeError, ValueError, FileNotFoundError) as exc:
        console.print(f"[bold red]Cannot use this Lean:[/] {_escape(str(exc))}\n{SETUP_HINT}")
        return EXIT_USAGE

    show_progress = args.progress if args.progress is not None else _progress_visible(console)
    description = "Verifying on the SIMULATOR" if simulator else "Verifying"
    progress = _make_progress(console)
    task = progress.add_task(description, total=len(proofs), passed=0, failed=0)

    pool = LeanPool(
        config,
        args.workers,
        timeout=args.timeout or None,
        memory_limit_mb=args.memory_limit_mb,
        max_tasks_per_worker=args.max_tasks_per_worker,
        progress=False,
        **sandbox_options(args),
    )
    if show_progress:
        progress.start()
    try:
        with pool:
            _submit_all(pool, proofs, args.allow_sorry, progress, task)
            return pool.stats()
    except KeyboardInterrupt:
        console.print("[bold red]Interrupted[/]: the pool was shut down.")
        return 130
    finally:
        if show_progress:
            progress.stop()


def _submit_all(
    pool: LeanPool, proofs: list[Record], allow_sorry: bool, progress: Progress, task: TaskID
) -> None:
    """Submit every proof in one batch and wait; then fill each record from its result.

    The progress bar advances from done-callbacks (on the pool's callback threads); records are
    filled after the batch, when every entry is known to hold its verdict.
    """
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    def finished(future: Any) -> None:
        try:
            outcome = future.result()
        except BaseException as exc:  # CancelledError included
            outcome = exc
        with lock:
            counts["passed" if verdict_of(outcome, allow_sorry) == "passed" else "failed"] += 1
            passed, failed = counts["passed"], counts["failed"]
        progress.update(task, advance=1, passed=passed, failed=failed)

    with pool.batch(progress=False, allow_sorry=allow_sorry) as batch:
        for record in proofs:
            assert isinstance(record.input, ProofInput)
            batch.submit(record.input.command, id=record.input.id).add_done_callback(finished)
    for record, entry in zip(proofs, batch.results, strict=True):
        describe_outcome(record, entry.result, entry.verdict or "fault")
        record.seconds = entry.seconds


def _make_progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[green]{task.fields[passed]} passed"),
        TextColumn("[red]{task.fields[failed]} failed"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        refresh_per_second=8,
    )


def _progress_visible(console: Console) -> bool:
    if any(os.environ.get(name) for name in _CI_VARIABLES):
        return False
    return console.is_terminal


# ------------------------------------------------------------------------------------- output
def _write_output(target: str, records: Sequence[Record]) -> None:
    handle: IO[str]
    if target == "-":
        handle = sys.stdout
    else:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        handle = open(target, "w", encoding="utf-8")  # noqa: SIM115 (closed below)
    try:
        for record in records:
            handle.write(json.dumps(record.as_json(), ensure_ascii=False, default=str) + "\n")
    finally:
        if handle is not sys.stdout:
            handle.close()
        else:
            handle.flush()


def _print_summary(
    console: Console,
    records: Sequence[Record],
    wall: float,
    simulator: bool,
    args: argparse.Namespace,
    stats: PoolStats | None,
) -> None:
    counts = Counter(r.verdict for r in records)
    faults = Counter(r.fault_kind for r in records if r.verdict == "fault")
    total = len(records)
    title = "leanpool verify: SIMULATOR run (not real Lean)" if simulator else "leanpool verify"
    console.print(f"[bold]{title}[/]")
    table = Table(show_edge=False)
    table.add_column("verdict")
    table.add_column("count", justify="right")
    table.add_column("share", justify="right")
    styles = {"passed": "green", "lean_error": "red", "fault": "yellow", "input_error": "magenta"}
    for verdict in VERDICTS:
        share = f"{100 * counts[verdict] / total:.0f}%" if total else "-"
        table.add_row(f"[{styles[verdict]}]{verdict}[/]", str(counts[verdict]), share)
    table.add_row("[bold]total[/]", str(total), "", end_section=True)
    for kind, count in sorted(faults.items()):
        table.add_row(f"  fault: {kind}", str(count), "")
    console.print(table)

    latencies = sorted(r.seconds for r in records if r.seconds is not None)
    checked = len(latencies)
    line = f"{checked} proofs checked in {wall:.1f} s"
    if checked and wall > 0:
        line += f" ({checked / wall:.1f}/s)"
    if latencies:
        p50 = latencies[len(latencies) // 2]
        line += f"; latency median {p50:.2f} s, max {latencies[-1]:.2f} s"
    console.print(line)
    if stats is not None:
        workers = len(stats.workers) or args.workers or os.cpu_count() or 1
        restarts = sum(stats.restarts.values())
        recycles = sum(stats.recycles.values())
        console.print(
            f"pool: {workers} workers, {stats.header_imports} header imports, "
            f"{stats.deduplicated} duplicates folded, {restarts} REPL restarts, "
            f"{recycles} worker replacements"
        )

    failures = [r for r in records if r.verdict not in ("passed", None)]
    if failures:
        shown = Table(title="Not passed", title_justify="left", show_edge=False)
        shown.add_column("id", overflow="ellipsis", no_wrap=True, max_width=32)
        shown.add_column("verdict", no_wrap=True, min_width=11)
        shown.add_column("first problem", overflow="ellipsis", no_wrap=True, ratio=1)
        for record in failures[:_FAILURES_SHOWN]:
            shown.add_row(
                _escape(str(record.input.id)), record.verdict, _escape(record.first_error())
            )
        console.print(shown)
        if len(failures) > _FAILURES_SHOWN:
            more = len(failures) - _FAILURES_SHOWN
            where = f" (see {args.output})" if args.output and args.output != "-" else ""
            console.print(f"... and {more} more{where}")
    if args.output and args.output != "-":
        console.print(f"Results: {args.output}")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


# ------------------------------------------------------------------------------- argument types
def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value
