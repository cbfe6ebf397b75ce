"""Progress bars (rich) for long batches: done, failed, rate and ETA.

Shown only when someone can see them: stderr is a terminal and no CI variable is set, unless the
caller asks explicitly.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from leanpool._stats import result_kind

_CI_VARIABLES = ("CI", "GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE", "JENKINS_URL", "TF_BUILD")


def progress_wanted() -> bool:
    """Whether a progress bar would be seen: a terminal, and not a CI run."""
    if any(os.environ.get(name) for name in _CI_VARIABLES):
        return False
    return sys.stderr.isatty()


def is_failure(result: Any) -> bool:
    """A result that is not a clean pass: an exception, a LeanError, or Lean errors."""
    return result_kind(result) != "ok"


def make_progress(transient: bool = False, console: Console | None = None) -> Progress:
    """A progress display on stderr (results may be going to stdout), or on `console`."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("[red]{task.fields[failed]} failed"),
        TextColumn("[cyan]{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=transient,
        console=console or Console(stderr=True),
        refresh_per_second=8,
    )


class ProgressTracker:
    """A rich progress task that counts results as they arrive."""

    def __init__(
        self, total: int | None, description: str = "Lean", console: Console | None = None
    ) -> None:
        self._progress = make_progress(console=console)
        self._task = self._progress.add_task(description, total=total, failed=0, rate="")
        self._failed = 0
        self._done = 0

    def __enter__(self) -> ProgressTracker:
        self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.stop()

    def set_total(self, total: int) -> None:
        self._progress.update(self._task, total=total)

    def advance(self, result: Any, failed: bool | None = None) -> None:
        """One more done; failed as `failed` says, else as judged from `result`."""
        self._done += 1
        if is_failure(result) if failed is None else failed:
            self._failed += 1
        task = self._progress.tasks[0]
        elapsed = task.elapsed or 0.0
        rate = f"{self._done / elapsed:.1f}/s" if elapsed > 0 else ""
        self._progress.update(self._task, advance=1, failed=self._failed, rate=rate)


def track(results: Iterator[Any], total: int | None, description: str) -> Iterator[Any]:
    with ProgressTracker(total, description) as tracker:
        for result in results:
            tracker.advance(result)
            yield result
