"""Which Lean the CLI talks to: real Lean (a project or a Lean version) or the REPL simulator.

Shared by `verify` and `setup`, so both accept the same options and fail the same way.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from leanpool._config import LeanREPLConfig

SIMULATOR_LABEL = "REPL SIMULATOR (not real Lean)"
SETUP_HINT = (
    "Hint: `leanpool doctor` shows what this machine is missing. To try leanpool without Lean, "
    "add --sim (the REPL simulator)."
)


def add_lean_arguments(parser: argparse.ArgumentParser, *, simulator: bool) -> None:
    group = parser.add_argument_group("which Lean")
    group.add_argument(
        "--project",
        metavar="DIR",
        help="a Lake project directory (e.g. one requiring Mathlib); its lean-toolchain picks "
        "the Lean version",
    )
    group.add_argument(
        "--lean-version", metavar="VERSION", help="a Lean version such as v4.19.0 (no project)"
    )
    group.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="where REPL builds are cached (default: $LEANPOOL_CACHE_DIR, else the user cache)",
    )
    group.add_argument("--repl-git", metavar="URL", help="REPL repository (a fork or a mirror)")
    group.add_argument("--repl-rev", metavar="REV", help="REPL tag, branch or commit to use")
    if simulator:
        group.add_argument(
            "--sim",
            action="store_true",
            help="run on the REPL simulator instead of Lean (no Lean needed; verdicts come from "
            "a toy elaborator that checks closed arithmetic)",
        )
        group.add_argument(
            "--sim-option",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="simulator option, repeatable: import=Mathlib=3000ms,2000mb "
            "(cost of importing a module), import_default=50ms,0mb, seed=N, fail_rate=P, "
            "startup_ms=N, closing_tactics=rfl,simp,...",
        )


def parse_sim_options(pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings -> keyword arguments of `leanpool.testing.sim_config`."""
    options: dict[str, Any] = {}
    imports: dict[str, str] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not equals or not key:
            raise ValueError(f"--sim-option wants KEY=VALUE, got {pair!r}")
        if key in ("import", "imports"):
            module, equals, cost = value.partition("=")
            if not equals:
                raise ValueError(f"--sim-option import wants MODULE=TIMEms,MEMmb, got {value!r}")
            imports[module.strip()] = cost.strip()
        elif key == "closing_tactics":
            options[key] = [name.strip() for name in value.split(",") if name.strip()]
        elif key == "replay":
            options.setdefault(key, []).append(value)
        else:
            options[key] = _number_or_text(value)
    if imports:
        options["imports"] = imports
    return options


def _number_or_text(value: str) -> Any:
    for convert in (int, float):
        try:
            return convert(value)
        except ValueError:
            pass
    return value


def uses_simulator(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "sim", False))


def build_config(args: argparse.Namespace, *, verbose: bool = False) -> LeanREPLConfig:
    """The config the arguments describe; runs setup for real Lean (may raise LeanSetupError)."""
    if uses_simulator(args):
        from leanpool.testing import sim_config

        return sim_config(**parse_sim_options(args.sim_option))
    from leanpool._config import LeanREPLConfig

    project = None
    if args.project:
        from leanpool._project import LocalProject

        project = LocalProject(directory=args.project)
    options: dict[str, Any] = {}
    if args.repl_git:
        options["repl_git"] = args.repl_git
    if args.repl_rev:
        options["repl_rev"] = args.repl_rev
    if args.cache_dir:
        options["cache_dir"] = args.cache_dir
    return LeanREPLConfig(
        lean_version=args.lean_version, project=project, verbose=verbose, **options
    )
