"""The `leanpool` command: `verify` proofs, `serve` a pool over HTTP, `setup` Lean ahead of time,
`doctor` the machine, `selftest` leanpool against this machine's Lean.

Installed as a console script (``leanpool``) and runnable as ``python -m leanpool``. Exit status
(all commands): 0 success, 1 the job's own failure (proofs that did not pass, `leanpool setup`
failing, missing requirements, a port already in use), 2 usage or input errors (a Lean that
`verify` or `serve` were pointed at and cannot set up included); `selftest` adds 3, no Lean on
this machine; `verify` stopped by SIGINT / SIGTERM exits 130 / 143.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from leanpool._cli import _doctor, _selftest, _serve, _setup, _verify

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    from leanpool import __version__

    parser = argparse.ArgumentParser(
        prog="leanpool",
        description="Run many Lean 4 REPLs in parallel: verify proofs, set up Lean, check the "
        "machine.",
    )
    parser.add_argument("--version", action="version", version=f"leanpool {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _verify.add_parser(subparsers)
    _serve.add_parser(subparsers)
    _setup.add_parser(subparsers)
    _doctor.add_parser(subparsers)
    _selftest.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (argparse exits with 2 on usage errors)."""
    args = build_parser().parse_args(argv)
    status: int = args.handler(args)
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
