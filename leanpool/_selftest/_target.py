"""What a selftest runs against: the options, the set-up config, and whether it is real Lean.

`set_up` does what `leanpool setup` does (toolchain, REPL build, project found or built) and
describes the result as a `Target`. A REPL that is the simulator (``--sim``, or a stand-in such as
the test suite's fake toolchain builds: a script that execs ``leanpool.testing.simrepl``) is
recognised here, and every check then labels its result as simulated.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import EllipsisType
from typing import TYPE_CHECKING, Any

from leanpool._selftest._report import CheckResult

if TYPE_CHECKING:
    from leanpool._config import LeanREPLConfig

__all__ = [
    "SelftestOptions",
    "Target",
    "derive_config",
    "is_simulator_command",
    "set_up",
]

_SIMULATOR_MARKS = (b"leanpool.testing.simrepl", b"leanpool-simrepl")


@dataclass(frozen=True)
class SelftestOptions:
    """What the user asked for (the command's flags)."""

    project: str | None = None
    lean_version: str | None = None
    quick: bool = False
    repl_tests: str | None = None  # a directory of NAME.in / NAME.expected.out pairs
    sim: bool = False
    sim_options: dict[str, Any] = field(default_factory=dict)
    cache_dir: str | None = None
    repl_git: str | None = None
    repl_rev: str | None = None
    memory_hard_limit_mb: int | None = None
    timeout: float = 600.0  # per request: a Mathlib import on a slow machine takes minutes
    workers: int = 2
    verbose: bool = False


@dataclass
class Target:
    """The Lean (or simulator) under test."""

    config: LeanREPLConfig
    simulated: bool
    lean_version: str | None
    checkout: Path | None  # the REPL checkout setup built (holds the REPL's test/ files)
    repl: dict[str, Any]  # url, ref, commit of the build (when known)
    project: str | None
    mathlib: bool
    # The RLIMIT_AS the memory check holds the imports to (--memory-hard-limit-mb, else the
    # config's). Only that check applies it: the others must not die of a limit set too low.
    memory_hard_limit_mb: int | None = None

    def __post_init__(self) -> None:
        if self.memory_hard_limit_mb is None:
            self.memory_hard_limit_mb = self.config.memory_hard_limit_mb

    @property
    def label(self) -> str:
        if self.simulated:
            standing = f", standing in for Lean {self.lean_version}" if self.lean_version else ""
            return f"REPL SIMULATOR (not real Lean{standing})"
        return f"Lean {self.lean_version or '(version unknown)'}"

    @property
    def import_module(self) -> str:
        """The heaviest import the project offers: Mathlib when it has it, else Lean."""
        return "Mathlib" if self.mathlib else "Lean"

    def describe(self) -> dict[str, Any]:
        launch = self.config.launch
        return {
            "label": self.label,
            "simulated": self.simulated,
            "lean_version": self.lean_version,
            "repl_command": list(launch.argv),
            "working_directory": launch.cwd,
            "repl": self.repl,
            "repl_checkout": str(self.checkout) if self.checkout else None,
            "project": self.project,
            "mathlib": self.mathlib,
            "memory_hard_limit_mb": self.memory_hard_limit_mb,
        }


def is_simulator_command(argv: tuple[str, ...] | list[str]) -> bool:
    """Whether this REPL command is leanpool's simulator (directly, or a script that runs it)."""
    if any(mark.decode() in part for part in argv for mark in _SIMULATOR_MARKS):
        return True
    if not argv:
        return False
    try:
        with open(argv[0], "rb") as executable:
            head = executable.read(4096)
    except OSError:
        return False
    return head.startswith(b"#!") and any(mark in head for mark in _SIMULATOR_MARKS)


def derive_config(
    config: LeanREPLConfig,
    *,
    extra_args: tuple[str, ...] = (),
    argv: tuple[str, ...] | None = None,
    cwd: str | None = None,
    exact_requests: bool = False,
    memory_hard_limit_mb: int | EllipsisType | None = ...,
) -> LeanREPLConfig:
    """A copy of `config` whose REPL starts differently (more arguments, another command or
    working directory), or that sends requests exactly as given (`exact_requests`: no
    ``incrementality``/``setOptions`` keys added), or with another hard memory limit."""
    launch = config.launch
    new_argv = tuple(argv) if argv is not None else tuple(launch.argv)
    derived = config.with_launch(
        replace(launch, argv=(*new_argv, *extra_args), cwd=cwd or launch.cwd, env=dict(launch.env))
    )
    if exact_requests:
        derived.enable_incremental_optimization = False
        derived.enable_parallel_elaboration = False
    if memory_hard_limit_mb is not ...:
        derived.memory_hard_limit_mb = memory_hard_limit_mb
    return derived


def set_up(options: SelftestOptions) -> tuple[CheckResult, Target | None]:
    """Set Lean up as `leanpool setup` would; the result row, and the target when it worked."""
    started = time.monotonic()
    try:
        config = _make_config(options)
    except Exception as exc:  # LeanSetupError, ValueError, ...: the row says which step failed
        return (
            CheckResult(
                "setup",
                "fail",
                f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                {"error": str(exc), "error_type": type(exc).__name__},
                time.monotonic() - started,
            ),
            None,
        )
    simulated = options.sim or is_simulator_command(config.launch.argv)
    checkout = Path(config.cache_repl_dir) if config.cache_repl_dir else None
    repl = _build_facts(checkout)
    project = config.project.get_directory() if config.project is not None else None
    from leanpool._project import depends_on_mathlib

    mathlib = project is not None and depends_on_mathlib(Path(project))
    if simulated and not options.sim and config.lean_version:
        # The stand-in answers as the Lean release it stands in for, where their outputs differ.
        config = derive_config(config, extra_args=("--lean-version", config.lean_version))
    target = Target(config, simulated, config.lean_version, checkout, repl, project, mathlib)
    if options.memory_hard_limit_mb is not None:
        target.memory_hard_limit_mb = options.memory_hard_limit_mb
    seconds = time.monotonic() - started
    details = target.describe() | {"setup_seconds": round(seconds, 3)}
    if options.sim:
        summary = "--sim: the REPL simulator, nothing to set up"
    else:
        where = f"project {project}" if project else "no project"
        built = f"REPL {repl.get('ref') or ''} {str(repl.get('commit') or '')[:12]}".strip()
        summary = f"Lean {target.lean_version}, {built}, {where}" + (
            " (requires Mathlib)" if mathlib else ""
        )
        if simulated:
            summary += "; the REPL binary is the simulator (a fake toolchain)"
    return CheckResult("setup", "ok", summary, details, seconds, simulated), target


def _make_config(options: SelftestOptions) -> LeanREPLConfig:
    if options.sim:
        from leanpool.testing import sim_config

        sim = dict(options.sim_options)
        if options.lean_version:
            sim.setdefault("lean_version", options.lean_version)
        return sim_config(**sim)
    from leanpool._config import LeanREPLConfig
    from leanpool._project import LocalProject

    project = LocalProject(directory=options.project) if options.project else None
    extra: dict[str, Any] = {}
    if options.repl_git:
        extra["repl_git"] = options.repl_git
    if options.repl_rev:
        extra["repl_rev"] = options.repl_rev
    if options.cache_dir:
        extra["cache_dir"] = options.cache_dir
    return LeanREPLConfig(
        lean_version=options.lean_version, project=project, verbose=options.verbose, **extra
    )


def _build_facts(checkout: Path | None) -> dict[str, Any]:
    """url, ref, commit and toolchain of a cached REPL build (setup's marker file)."""
    if checkout is None:
        return {}
    from leanpool._repl_build import BUILD_MARKER

    try:
        marker = json.loads((checkout / BUILD_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        marker = {}
    return {k: marker[k] for k in ("url", "ref", "commit", "toolchain") if k in marker}
