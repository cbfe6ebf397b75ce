"""What every example shares: real Lean when it is installed, the REPL simulator otherwise.

The first line an example prints says which one it runs on, so nobody mistakes a simulator run
for a verdict from Lean. ``--fast`` (or ``LEANPOOL_EXAMPLES_FAST=1``) shrinks each example to a few
seconds; the tests use it.
"""

from __future__ import annotations

import argparse
import os
import shutil
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from leanpool._config import LeanREPLConfig

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def lean_installed() -> bool:
    return bool(shutil.which("elan") or shutil.which("lake"))


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--fast", action="store_true", help="a small run (also LEANPOOL_EXAMPLES_FAST=1)"
    )
    parser.add_argument(
        "--sim", action="store_true", help="use the REPL simulator even if Lean is installed"
    )
    parser.add_argument(
        "--project", help="a Lake project for real Lean (e.g. one requiring Mathlib)"
    )
    parser.add_argument("--workers", type=int, default=None, help="pool workers (default: CPUs)")
    args = parser.parse_args()
    args.fast = args.fast or os.environ.get("LEANPOOL_EXAMPLES_FAST") == "1"
    return args


def example_config(args: argparse.Namespace, **sim_options: Any) -> LeanREPLConfig:
    """Print which Lean the example uses (its first line), then build that config."""
    if lean_installed() and not args.sim:
        from leanpool import LeanREPLConfig, LocalProject

        where = f"project {args.project}" if args.project else "core Lean, no project"
        print(f"leanpool example: running on REAL LEAN ({where})", flush=True)
        project = LocalProject(directory=args.project) if args.project else None
        return LeanREPLConfig(project=project, verbose=True)
    from leanpool.testing import sim_config

    reason = "--sim given" if args.sim else "no Lean found"
    print(f"leanpool example: running on the REPL SIMULATOR ({reason})", flush=True)
    return sim_config(**sim_options)
