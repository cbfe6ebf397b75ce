"""The simulator's options, both ways: Python keywords -> command-line flags -> parsed options.

`SimOptions.command()` is what `sim_command`/`sim_config` launch; `parse_options` is what the
executable reads, so the two cannot drift apart.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from leanpool.testing._directives import DIRECTIVES_HELP
from leanpool.testing._imports import ImportCost, parse_import_cost, parse_import_spec

__all__ = ["SimOptions", "parse_options"]

CostSpec = ImportCost | tuple[int, int] | str


def _cost(spec: CostSpec) -> ImportCost:
    if isinstance(spec, ImportCost):
        return spec
    if isinstance(spec, str):
        return parse_import_cost(spec)
    milliseconds, megabytes = spec
    return ImportCost(int(milliseconds), int(megabytes))


@dataclass(frozen=True)
class SimOptions:
    """Everything the simulator can be told (the keywords of `sim_command`)."""

    seed: int = 0
    fail_rate: float = 0.0
    imports: Mapping[str, CostSpec] = field(default_factory=dict)  # module -> (ms, MB)
    import_default: CostSpec = (0, 0)
    startup_ms: int = 0
    # CPU per pickle and per unpickle request. Zero by default, like every other cost; what
    # to charge is an estimate, not a measurement: see `PICKLE_COST_GROUNDS` in the simulator.
    pickle_ms: int = 0
    unpickle_ms: int = 0
    closing_tactics: Sequence[str] | None = None
    replay: Sequence[str | os.PathLike[str]] = ()
    record: str | os.PathLike[str] | None = None
    name: str | None = None
    command: Sequence[str] = ()
    lean_version: str | None = None  # the Lean release to act as, where outputs differ (None: new)
    # Where imported modules' files live, shared by every simulator on the machine (None: the
    # cache directory's ``simulator-modules``); `private_imports`: load them as private copies,
    # Lean's fallback when mapping fails.
    module_dir: str | os.PathLike[str] | None = None
    private_imports: bool = False

    def __post_init__(self) -> None:
        for name in ("startup_ms", "pickle_ms", "unpickle_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more, got {getattr(self, name)}")
        if not 0.0 <= self.fail_rate <= 1.0:
            raise ValueError(f"fail_rate must be within [0, 1], got {self.fail_rate}")
        if isinstance(self.replay, (str, os.PathLike)):  # one directory given bare
            object.__setattr__(self, "replay", (self.replay,))

    @property
    def import_costs(self) -> dict[str, ImportCost]:
        return {module: _cost(spec) for module, spec in self.imports.items()}

    @property
    def default_cost(self) -> ImportCost:
        return _cost(self.import_default)

    @property
    def tactics(self) -> tuple[str, ...]:
        from leanpool.testing._tactics import DEFAULT_CLOSING_TACTICS  # only the simulator needs it

        return tuple(self.closing_tactics or DEFAULT_CLOSING_TACTICS)

    def flags(self) -> list[str]:
        flags: list[str] = []
        if self.seed:
            flags += ["--seed", str(self.seed)]
        if self.fail_rate:
            flags += ["--fail-rate", repr(float(self.fail_rate))]
        for module, cost in self.import_costs.items():
            flags += ["--import", f"{module}={cost.flag_text()}"]
        if self.default_cost != ImportCost():
            flags += ["--import-default", self.default_cost.flag_text()]
        if self.startup_ms:
            flags += ["--startup-ms", str(self.startup_ms)]
        if self.pickle_ms:
            flags += ["--pickle-ms", str(self.pickle_ms)]
        if self.unpickle_ms:
            flags += ["--unpickle-ms", str(self.unpickle_ms)]
        if self.closing_tactics is not None:
            flags += ["--closing-tactics", ",".join(self.closing_tactics)]
        if self.lean_version is not None:
            flags += ["--lean-version", self.lean_version]
        if self.import_costs or self.default_cost != ImportCost():
            flags += ["--module-dir", os.fspath(self.module_dir or default_module_dir())]
        if self.private_imports:
            flags += ["--private-imports"]
        for directory in self.replay:
            flags += ["--replay", os.fspath(directory)]
        if self.record is not None:
            flags += ["--record", os.fspath(self.record)]
            if self.name:
                flags += ["--name", self.name]
            flags += ["--", *self.command]
        return flags

    def command_line(self) -> list[str]:
        """The full command that starts a simulator with these options."""
        return [sys.executable, "-m", "leanpool.testing.simrepl", *self.flags()]


def default_module_dir() -> str:
    """``simulator-modules`` in leanpool's cache directory (``$LEANPOOL_CACHE_DIR``, else the
    user cache): readable by sandboxed REPLs, and kept between runs."""
    root = os.environ.get("LEANPOOL_CACHE_DIR")
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "leanpool")
    return os.path.join(os.path.abspath(os.path.expanduser(root)), "simulator-modules")


def _parser() -> argparse.ArgumentParser:
    from leanpool.testing._tactics import DEFAULT_CLOSING_TACTICS

    parser = argparse.ArgumentParser(
        prog="leanpool-simrepl",
        description=(
            "A stand-in for the Lean REPL: reads requests on stdin and answers on stdout exactly "
            "as the REPL does (framing, layout, ids, errors). Synthetic mode (default) runs a toy "
            "elaborator; --replay answers from recorded sessions; --record DIR -- CMD proxies a "
            "real REPL and records the session."
        ),
        epilog="Directives (in a `cmd` or `tactic` text):\n\n" + DIRECTIVES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of --fail-rate (default 0)")
    parser.add_argument(
        "--fail-rate",
        type=float,
        default=0.0,
        metavar="P",
        help="crash on each request with probability P, reproducibly for a seed",
    )
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MOD=Tms,Smb",
        help="import cost of MOD and its submodules: T ms on every import of a header naming it, "
        "S MB once per process (shared between processes with --module-dir; repeatable)",
    )
    parser.add_argument(
        "--import-default",
        default="0ms,0mb",
        metavar="Tms,Smb",
        help="cost of modules no --import names (default 0ms,0mb)",
    )
    parser.add_argument(
        "--startup-ms", type=int, default=0, metavar="N", help="delay before reading stdin"
    )
    parser.add_argument(
        "--pickle-ms", type=int, default=0, metavar="N", help="CPU burnt per pickle request"
    )
    parser.add_argument(
        "--unpickle-ms", type=int, default=0, metavar="N", help="CPU burnt per unpickle request"
    )
    parser.add_argument(
        "--closing-tactics",
        metavar="a,b,c",
        help=f"tactics that close a goal (default {','.join(DEFAULT_CLOSING_TACTICS)})",
    )
    parser.add_argument(
        "--lean-version",
        metavar="vX.Y.Z",
        help="act as this Lean release where outputs differ (#print axioms of native "
        "computations); default: the newest behaviour",
    )
    parser.add_argument(
        "--module-dir",
        metavar="DIR",
        help="where imported modules' files are made once and mapped, shared by every "
        "simulator, as Lean maps .olean files (default: private memory per process)",
    )
    parser.add_argument(
        "--private-imports",
        action="store_true",
        help="read imported modules into private memory (Lean's fallback when mapping fails)",
    )
    parser.add_argument(
        "--replay",
        action="append",
        default=[],
        metavar="DIR",
        help="answer from the NAME.in/NAME.expected.out sessions in DIR (repeatable)",
    )
    parser.add_argument(
        "--record", metavar="DIR", help="proxy the REPL command after -- and record the session"
    )
    parser.add_argument("--name", help="NAME of the recorded session (default from time and pid)")
    parser.add_argument("command", nargs="*", help="with --record: the REPL command to run")
    return parser


def parse_options(argv: Sequence[str] | None = None) -> SimOptions:
    """Parse the executable's arguments (exits with a usage message when they are wrong)."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        imports = dict(parse_import_spec(spec) for spec in args.imports)
        default = parse_import_cost(args.import_default)
        closing = (
            [t.strip() for t in args.closing_tactics.split(",") if t.strip()]
            if args.closing_tactics is not None
            else None
        )
        options = SimOptions(
            seed=args.seed,
            fail_rate=args.fail_rate,
            imports=imports,
            import_default=default,
            startup_ms=args.startup_ms,
            pickle_ms=args.pickle_ms,
            unpickle_ms=args.unpickle_ms,
            closing_tactics=closing,
            replay=tuple(args.replay),
            record=args.record,
            name=args.name,
            command=tuple(args.command),
            lean_version=args.lean_version,
            module_dir=args.module_dir,
            private_imports=args.private_imports,
        )
    except ValueError as error:
        parser.error(str(error))
    if options.record is not None and not options.command:
        parser.error("--record needs the REPL command after --")
    if options.command and options.record is None:
        parser.error("a command is only accepted with --record")
    return options
