"""`leanpool setup`: prepare a Lean toolchain, the REPL and a project once, ahead of any run.

Setup is what `LeanREPLConfig(...)` does on construction; running it here first means later runs
(and every worker of a pool) start from the cache, and failures show up before a long job.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from leanpool._cli._configs import SETUP_HINT, add_lean_arguments, build_config


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "setup",
        help="install the Lean toolchain and build the REPL (and a project) ahead of time",
        description="Set up what `leanpool verify` needs: the Lean toolchain (through elan), "
        "the REPL built for that Lean version, and the project if one is given. Idempotent: "
        "a second run finds everything cached. Exit status 1 when a step fails.",
    )
    add_lean_arguments(parser, simulator=False)
    parser.set_defaults(handler=run_setup)


def run_setup(args: argparse.Namespace) -> int:
    from leanpool._errors import LeanSetupError

    console = Console(highlight=False)
    started = time.monotonic()
    try:
        config = build_config(args, verbose=True)
    except LeanSetupError as exc:
        console.print(f"[bold red]Setup failed[/] after {time.monotonic() - started:.1f} s.")
        console.print(escape(str(exc)))
        console.print(SETUP_HINT)
        return 1
    except (ValueError, FileNotFoundError) as exc:
        console.print(f"[bold red]Setup failed:[/] {escape(str(exc))}")
        return 1
    elapsed = time.monotonic() - started
    console.print(describe_config(config, elapsed))
    return 0


def describe_config(config: Any, elapsed: float) -> Table:
    """What was installed where: the facts a user needs to find or reuse the setup."""
    launch = config.launch
    table = Table(title="leanpool setup: ready", title_justify="left", show_edge=False)
    table.add_column("what")
    table.add_column("where", overflow="fold")
    table.add_row("Lean version", str(launch.lean_version or config.lean_version or "unknown"))
    table.add_row("REPL", escape(" ".join(launch.argv)))
    table.add_row("working directory", escape(str(launch.cwd)))
    cache = getattr(config, "cache_dir", None)
    if cache is not None:
        table.add_row("cache", escape(str(cache)))
    if launch.env:
        table.add_row("environment", escape(", ".join(sorted(launch.env))))
    table.add_row("time", f"{elapsed:.1f} s")
    return table
