"""`leanpool verify`: check many proofs on a pool, write one JSONL line per input, summarise.

Verdicts follow the verdict policy (`leanpool._verdict`): a proof passes only when Lean accepted
it, it uses no `sorry` and only the standard axioms, nothing in it switches checking off, and (with
a ``formal_statement``) it proves that statement. Each line of the output says why not
(``reasons``).

Nothing is lost when a run is stopped: each result is appended to the output file the moment it
is known, as one complete line (a run that completes then puts the lines in input order).
SIGINT and SIGTERM stop the pool at once and keep every finished result (exit 130 / 143);
SIGKILL loses only the proofs in flight. ``--resume`` skips the ids already in the output file
(a torn last line is cut off) and appends the rest.

Exit status: 0 when every input passed, 1 when some failed (rejected by Lean or the policy, or a
fault such as a timeout), 2 on usage or input errors (a missing path, a malformed JSONL line),
which take precedence: a run whose inputs were partly unreadable is not a clean verdict on the
dataset.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

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

from leanpool._batch import BatchResult
from leanpool._cli._configs import (
    SETUP_HINT,
    SIMULATOR_LABEL,
    add_lean_arguments,
    build_config,
    uses_simulator,
)
from leanpool._cli._inputs import Input, InputProblem, ProofInput, read_inputs
from leanpool._cli._options import (
    add_policy_arguments,
    add_pool_arguments,
    policy_options,
)
from leanpool._cli._sandbox import add_sandbox_arguments, sandbox_options
from leanpool._pool import LeanPool
from leanpool._results_file import ResultsFile, id_key
from leanpool._stats import PoolStats
from leanpool.protocol import LeanError

EXIT_PASSED, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
_CI_VARIABLES = ("CI", "GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE", "JENKINS_URL", "TF_BUILD")
_FAILURES_SHOWN = 10

CliVerdict = Literal["passed", "lean_error", "rejected", "fault", "input_error"]
VERDICTS: tuple[CliVerdict, ...] = ("passed", "lean_error", "rejected", "fault", "input_error")
EXIT_SIGNALLED = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Stopped(BaseException):
    """SIGTERM arrived: stop as for Ctrl-C (a BaseException, so nothing swallows it)."""


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "verify",
        help="check .lean files, directories of them, or JSONL datasets",
        description="Check proofs on a pool of Lean REPLs. PATH is a .lean file, a directory "
        "(searched for .lean files), or a JSONL file with one proof per line: "
        '{"id": ..., "code": "theorem ...", "header": "import Mathlib", '
        '"formal_statement": "theorem ... := by sorry"} (header and formal_statement '
        "optional). A proof passes when Lean accepts it, it uses no sorry and only the "
        "standard axioms, nothing in it switches checking off, and it proves formal_statement "
        "when given. Exit status: 0 all passed, 1 some failed, 2 usage or input errors.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="inputs to check")
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="append one JSON line per input as it completes (id, verdict, reasons, errors, "
        "seconds); '-' for stdout",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the results already in --output and check only the inputs not there yet",
    )
    run = add_pool_arguments(
        parser,
        unit="proofs",
        timeout_help="per-proof time limit (the library's default is no limit, the CLI's is "
        "safe by default)",
        memory_help="per-worker REPL memory (RSS) limit; a proof crossing it is a fault",
    )
    add_policy_arguments(parser)
    run.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar (default: when attached to a terminal)",
    )
    add_sandbox_arguments(parser)
    add_lean_arguments(parser, simulator=True)
    parser.set_defaults(handler=run_verify)


# ------------------------------------------------------------------------------------- records
@dataclass
class Record:
    """One input's result, as written to the output file."""

    input: Input
    verdict: CliVerdict | None = None
    errors: list[dict[str, Any]] | None = None
    uses_sorry: bool = False
    seconds: float | None = None
    fault_kind: str | None = None
    reasons: tuple[str, ...] = ()
    axioms: dict[str, list[str]] | None = None
    recorded: dict[str, Any] | None = None  # its line from an earlier run (--resume)

    def as_json(self) -> dict[str, Any]:
        if self.recorded is not None:
            return self.recorded
        line: dict[str, Any] = {
            "id": self.input.id,
            "source": self.input.source,
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "errors": self.errors or [],
            "uses_sorry": self.uses_sorry,
            "seconds": None if self.seconds is None else round(self.seconds, 4),
        }
        if self.fault_kind is not None:
            line["fault"] = self.fault_kind
        if self.axioms:
            line["axioms"] = self.axioms
        return line

    def first_error(self) -> str:
        for error in self.errors or []:
            text = str(error.get("message", ""))
            where = f"{error['line']}:{error['column']}: " if "line" in error else ""
            return where + text.strip().splitlines()[0] if text.strip() else where
        if self.reasons:
            return ", ".join(self.reasons)
        return "uses sorry" if self.uses_sorry else ""


def describe_result(record: Record, result: Any, verdict: CliVerdict) -> None:
    """Fill a record's errors from a response or an exception."""
    record.verdict = verdict
    if isinstance(result, BaseException):
        record.fault_kind = type(result).__name__
        message = str(result) or type(result).__name__
        record.errors = [{"kind": record.fault_kind, "message": message}]
        return
    if isinstance(result, LeanError):  # the REPL refused the request
        record.errors = [{"kind": "LeanError", "message": str(result.message)}]
        return
    errors = []
    offset = record.input.header_lines if isinstance(record.input, ProofInput) else 0
    for message in getattr(result, "messages", None) or []:
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
        for message in getattr(result, "messages", None) or []
    )
    record.uses_sorry = bool(getattr(result, "sorries", None)) or sorry_warning


# ------------------------------------------------------------------------------------- running
def run_verify(args: argparse.Namespace) -> int:
    to_stdout = args.output == "-"
    console = Console(stderr=to_stdout, highlight=False)
    if args.resume and (not args.output or to_stdout):
        console.print("[bold red]--resume needs --output FILE[/] (the results to go on from).")
        return EXIT_USAGE
    simulator = uses_simulator(args)
    if simulator:
        console.print(
            f"[bold magenta]leanpool verify: running on the {SIMULATOR_LABEL}[/]: verdicts come "
            "from a toy elaborator, not from Lean."
        )
    records = [Record(item) for item in read_inputs(args.paths)]
    output = _open_output(args)
    if output is not None and output.done:
        resumed = _take_recorded(records, output)
        console.print(f"Resuming: {resumed} results already in {args.output} are kept.")
    for record in records:
        if isinstance(record.input, InputProblem) and record.recorded is None:
            record.verdict = "input_error"
            record.errors = [{"kind": "input_error", "message": record.input.message}]
            console.print(f"[red]input error[/] {_escape(record.input.message)}")
            _emit(output, to_stdout, record)
    proofs = [r for r in records if isinstance(r.input, ProofInput) and r.recorded is None]

    started = time.monotonic()
    stats: PoolStats | None = None
    status: int | None = None
    try:
        if proofs:
            checked = _check_proofs(args, console, proofs, simulator, output, to_stdout)
            if isinstance(checked, int):
                status = checked
            else:
                stats = checked
        if output is not None and status is None:  # complete: lines in input order
            output.rewrite_in_order([r.input.id for r in records])
    finally:
        if output is not None:
            output.close()
    if status is not None:
        return status
    wall = time.monotonic() - started
    _print_summary(console, records, wall, simulator, args, stats)
    counts = Counter(r.verdict for r in records)
    if counts["input_error"] or not records:
        return EXIT_USAGE
    return EXIT_PASSED if counts["passed"] == len(records) else EXIT_FAILED


def _open_output(args: argparse.Namespace) -> ResultsFile | None:
    if not args.output or args.output == "-":
        return None
    return ResultsFile(args.output, resume=args.resume)


def _take_recorded(records: list[Record], output: ResultsFile) -> int:
    """Records whose id is already in the output: taken as they were written."""
    taken = 0
    for record in records:
        line = output.done.get(id_key(record.input.id))
        if line is None:
            continue
        record.recorded = line
        verdict = line.get("verdict")
        record.verdict = verdict if verdict in VERDICTS else "fault"
        record.reasons = tuple(line.get("reasons") or ())
        record.errors = line.get("errors") or []
        record.seconds = line.get("seconds")
        taken += 1
    return taken


def _emit(output: ResultsFile | None, to_stdout: bool, record: Record) -> None:
    """Write one finished record now: to the output file (appended, one line), or stdout."""
    if output is not None:
        output.append(record.as_json())
    elif to_stdout:
        line = json.dumps(record.as_json(), ensure_ascii=False, default=str)
        with _STDOUT_LOCK:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()


_STDOUT_LOCK = threading.Lock()


def _check_proofs(
    args: argparse.Namespace,
    console: Console,
    proofs: list[Record],
    simulator: bool,
    output: ResultsFile | None,
    to_stdout: bool,
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
        with _stop_on_sigterm(), pool:
            _submit_all(pool, proofs, args, progress, task, output, to_stdout)
            return pool.stats()
    except (KeyboardInterrupt, Stopped) as exc:
        which = signal.SIGTERM if isinstance(exc, Stopped) else signal.SIGINT
        kept = sum(1 for r in proofs if r.verdict is not None)
        where = f", in {args.output}" if output is not None else ""
        console.print(
            f"[bold red]Stopped by {which.name}[/]: the pool was shut down; {kept} finished "
            f"results are kept{where}. Run again with --resume to go on."
        )
        return EXIT_SIGNALLED[which]
    finally:
        if show_progress:
            progress.stop()


@contextlib.contextmanager
def _stop_on_sigterm() -> Any:
    """SIGTERM stops the run as Ctrl-C does (the default would end the process at once,
    leaving workers to notice by themselves and loky's semaphores to leak)."""

    def stop(signum: int, frame: object) -> None:
        raise Stopped()

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _submit_all(
    pool: LeanPool,
    proofs: list[Record],
    args: argparse.Namespace,
    progress: Progress,
    task: TaskID,
    output: ResultsFile | None,
    to_stdout: bool,
) -> None:
    """Submit every proof in one batch; each record is filled and written as it completes."""
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    def finished(record: Record, done: Any) -> None:
        if done.cancelled():
            return
        entry: BatchResult = done.result()
        if entry.verdict is None or _stopping(entry):
            return
        describe_result(record, entry.result, entry.verdict)
        record.seconds = entry.seconds
        record.reasons = entry.reasons
        if entry.verification is not None:
            record.axioms = entry.verification.axioms or None
        _emit(output, to_stdout, record)
        with lock:
            counts["passed" if record.verdict == "passed" else "failed"] += 1
            passed, failed = counts["passed"], counts["failed"]
        progress.update(task, advance=1, passed=passed, failed=failed)

    policy = policy_options(args)
    with pool.batch(progress=False, **policy) as batch:
        for record in proofs:
            assert isinstance(record.input, ProofInput)
            code, header = record.input.submission
            future = batch.submit(
                code,
                id=record.input.id,
                header=header,
                formal_statement=record.input.formal_statement,
            )
            future.add_done_callback(partial(finished, record))


def _stopping(entry: BatchResult) -> bool:
    """An entry ended by the run being stopped (not a verdict: a resumed run checks it)."""
    from concurrent.futures import CancelledError

    from leanpool._errors import PoolShutdownError

    return isinstance(entry.result, (CancelledError, PoolShutdownError))


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
def _print_summary(
    console: Console,
    records: Sequence[Record],
    wall: float,
    simulator: bool,
    args: argparse.Namespace,
    stats: PoolStats | None,
) -> None:
    counts = Counter(r.verdict for r in records)
    faults = Counter(r.fault_kind or "fault" for r in records if r.verdict == "fault")
    reasons = Counter(
        reason
        for r in records
        if r.verdict in ("rejected", "fault")
        for reason in r.reasons
        if not reason.startswith("fault:")
    )
    total = len(records)
    title = "leanpool verify: SIMULATOR run (not real Lean)" if simulator else "leanpool verify"
    console.print(f"[bold]{title}[/]")
    table = Table(show_edge=False)
    table.add_column("verdict")
    table.add_column("count", justify="right")
    table.add_column("share", justify="right")
    styles = {
        "passed": "green",
        "lean_error": "red",
        "rejected": "red",
        "fault": "yellow",
        "input_error": "magenta",
    }
    for verdict in VERDICTS:
        share = f"{100 * counts[verdict] / total:.0f}%" if total else "-"
        table.add_row(f"[{styles[verdict]}]{verdict}[/]", str(counts[verdict]), share)
    table.add_row("[bold]total[/]", str(total), "", end_section=True)
    for kind, count in sorted(faults.items()):
        table.add_row(f"  fault: {kind}", str(count), "")
    for reason, count in sorted(reasons.items()):
        table.add_row(f"  reason: {_escape(reason)}", str(count), "")
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
