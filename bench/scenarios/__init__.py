"""The seven scenarios of issue 9 and the parsing one of issue 24, one module each; each has
``run(ctx) -> dict``.

A scenario's dict holds ``variants`` (one `Run.as_dict()` each), its own findings, and
optionally ``_plot`` (raw series for the plots; not written to latest.json).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.modes import Sizes


@dataclass
class Context:
    mode: str
    sizes: Sizes
    workdir: Path  # scratch space (LeanInteract's offline REPL directories)
    workers: int = 2
    with_leaninteract: bool = True
    deadline_s: float = 600.0  # per measured variant (see Sizes.deadline_s)
    seed: int = 20251125
    skipped: list[str] = field(default_factory=list)

    def log(self, message: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
