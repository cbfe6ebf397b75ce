"""The protocol check: the REPL's own test files, replayed live through leanpool.

Each ``NAME.in`` of the REPL's ``test/`` directory (in the checkout setup built, or a directory
given with ``--repl-tests``) is sent, request by request, to a fresh REPL through `LeanServer`
(`parse_request`, the server, `parse_response`, then ``to_repl_dict``), and what comes back is
compared with ``NAME.expected.out`` (`leanpool._selftest._compare`). So a difference is either
Lean disagreeing with its own recording or leanpool misreading Lean: both are worth a report.

As the REPL's ``test.sh`` does, files run in name order (``LC_COLLATE=C``: ``x`` before ``x_2``,
which reads the pickles ``x`` wrote), one REPL process per file, unsandboxed, in a scratch
directory holding a copy of the test files (``test/NAME.lean`` for file-mode requests; pickles
land there, never in the cache). ``test/Mathlib/test`` runs in the project's environment when the
project requires Mathlib (not with ``--quick``).

On the simulator, the REPL replays these same files (``--replay``): that checks this harness and
the simulator's replay, not Lean, and the result says so.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leanpool._selftest._compare import (
    ALWAYS_IGNORED,
    CROSS_VERSION_IGNORED,
    compare_sessions,
    split_responses,
)
from leanpool._selftest._report import CheckResult
from leanpool._selftest._target import SelftestOptions, Target, derive_config

__all__ = ["FileOutcome", "check_protocol", "read_requests", "run_test_files", "test_pairs"]

_COPIED = (".in", ".expected.out", ".lean")


@dataclass
class FileOutcome:
    """One test file replayed live."""

    name: str
    requests: int
    differences: list[str] = field(default_factory=list)
    tolerated: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "requests": self.requests,
            "agrees": not self.differences,
            "differences": self.differences,
            "tolerated": self.tolerated,
            "seconds": round(self.seconds, 3),
        }


def test_pairs(directory: Path) -> list[str]:
    """Names with both ``NAME.in`` and ``NAME.expected.out``, in C collation order."""
    names = [
        path.name[: -len(".in")]
        for path in directory.glob("*.in")
        if (directory / (path.name[: -len(".in")] + ".expected.out")).is_file()
    ]
    return sorted(names, key=lambda name: name.encode("utf-8"))


def read_requests(session_input: bytes) -> list[str]:
    """The request texts the REPL answers, read exactly as it reads them (comments dropped)."""
    from leanpool.testing._wire import RequestReader, is_comment

    reader = RequestReader(io.BytesIO(session_input))
    texts: list[str] = []
    while (text := reader.read()) != "":
        if not is_comment(text):
            texts.append(text)
    return texts


def run_test_files(
    target: Target,
    directory: Path,
    *,
    cross_version: bool,
    timeout: float,
    names: list[str] | None = None,
) -> list[FileOutcome]:
    """Replay every pair of `directory` live, each on a fresh REPL, in a scratch copy."""
    outcomes: list[FileOutcome] = []
    with tempfile.TemporaryDirectory(prefix="leanpool-selftest-") as scratch:
        workdir = Path(scratch)
        tests = workdir / "test"
        tests.mkdir()
        for path in directory.iterdir():
            if path.is_file() and path.name.endswith(_COPIED):
                shutil.copyfile(path, tests / path.name)
        extra = ("--replay", str(tests)) if target.simulated else ()
        config = derive_config(
            target.config, extra_args=extra, cwd=str(workdir), exact_requests=True
        )
        for name in names if names is not None else test_pairs(tests):
            outcomes.append(_run_one(config, tests, name, cross_version, timeout))
    return outcomes


def _run_one(
    config: Any, tests: Path, name: str, cross_version: bool, timeout: float
) -> FileOutcome:
    from leanpool._errors import LeanPoolError
    from leanpool._server import LeanServer
    from leanpool.protocol import parse_request

    started = time.monotonic()
    texts = read_requests((tests / f"{name}.in").read_bytes())
    expected = split_responses((tests / f"{name}.expected.out").read_text(encoding="utf-8"))
    live: list[Any] = []
    problems: list[str] = []
    with LeanServer(config, sandbox=None) as server:
        for number, text in enumerate(texts, 1):
            try:
                request = parse_request(text)
            except Exception as exc:
                problems.append(f"request {number}: leanpool cannot read it: {exc}")
                break
            try:
                response = server.run(request, timeout=timeout)
            except LeanPoolError as exc:
                first = str(exc).splitlines()[0] if str(exc) else ""
                problems.append(f"request {number}: {type(exc).__name__}: {first}")
                break
            live.append(response.to_repl_dict())
    comparison = compare_sessions(expected, live, cross_version=cross_version)
    return FileOutcome(
        name,
        len(texts),
        problems + comparison.differences,
        comparison.tolerated,
        time.monotonic() - started,
    )


def check_protocol(target: Target, options: SelftestOptions) -> CheckResult:
    started = time.monotonic()
    given = Path(options.repl_tests).expanduser().resolve() if options.repl_tests else None
    directory = given or (target.checkout / "test" if target.checkout else None)
    if directory is None or not directory.is_dir() or not test_pairs(directory):
        where = str(directory) if directory else "no REPL checkout (--sim)"
        return CheckResult(
            "protocol",
            "skip",
            f"no REPL test files (NAME.in + NAME.expected.out) in {where}; pass --repl-tests DIR",
            {"tests_dir": str(directory) if directory else None},
            time.monotonic() - started,
            target.simulated,
        )
    cross_version = given is not None
    outcomes = run_test_files(
        target, directory, cross_version=cross_version, timeout=options.timeout
    )
    mathlib_dir = directory / "Mathlib" / "test"
    mathlib: list[FileOutcome] = []
    mathlib_note = ""
    if target.mathlib and not options.quick and mathlib_dir.is_dir():
        mathlib = run_test_files(
            target, mathlib_dir, cross_version=cross_version, timeout=options.timeout
        )
        mathlib_note = _mathlib_revisions(target, directory)
    elif mathlib_dir.is_dir() and test_pairs(mathlib_dir):
        mathlib_note = "Mathlib test files not run: " + (
            "--quick" if options.quick else "the project does not require Mathlib"
        )
    disagreeing = [o for o in outcomes if o.differences]
    mathlib_disagreeing = [o for o in mathlib if o.differences]
    status: Any = "ok"
    if disagreeing:
        status = "fail"
    elif mathlib_disagreeing:
        status = "fail" if mathlib_note.startswith("same Mathlib") else "warn"
    total = len(outcomes) + len(mathlib)
    agreeing = total - len(disagreeing) - len(mathlib_disagreeing)
    requests = sum(o.requests for o in [*outcomes, *mathlib])
    summary = f"{agreeing}/{total} test files agree ({requests} requests)"
    if disagreeing or mathlib_disagreeing:
        shown = ", ".join(o.name for o in [*disagreeing, *mathlib_disagreeing][:5])
        summary += f"; differences in {shown}"
        first = [*disagreeing, *mathlib_disagreeing][0].differences[0]
        summary += f" (first: {first[:200]})"
    if target.simulated:
        summary += "; the simulator replayed these very files: checks the harness, not Lean"
    details = {
        "tests_dir": str(directory),
        "recorded_by": (
            f"the given directory {given}"
            if given
            else f"the REPL checkout's own test files ({target.repl.get('ref') or 'unknown ref'})"
        ),
        "ignored": list(ALWAYS_IGNORED) + (list(CROSS_VERSION_IGNORED) if cross_version else []),
        "files": [o.as_dict() for o in outcomes],
        "mathlib_files": [o.as_dict() for o in mathlib],
        "mathlib_note": mathlib_note,
    }
    return CheckResult(
        "protocol", status, summary, details, time.monotonic() - started, target.simulated
    )


def _mathlib_revisions(target: Target, tests: Path) -> str:
    """Whether the project's Mathlib is the one the REPL's Mathlib tests were recorded with."""
    ours = _mathlib_rev(Path(target.project)) if target.project else None
    theirs = _mathlib_rev(tests / "Mathlib")
    if ours and theirs and ours == theirs:
        return f"same Mathlib as the REPL's test project ({ours[:12]})"
    return (
        f"the project's Mathlib ({(ours or 'unknown')[:12]}) is not the one the REPL's Mathlib "
        f"tests were recorded with ({(theirs or 'unknown')[:12]}): differences there may be "
        "Mathlib's, so they warn instead of failing"
    )


def _mathlib_rev(directory: Path) -> str | None:
    try:
        manifest = json.loads((directory / "lake-manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for package in manifest.get("packages", []):
        if isinstance(package, dict) and str(package.get("name", "")).lower() == "mathlib":
            rev = package.get("rev")
            return str(rev) if rev else None
    return None
