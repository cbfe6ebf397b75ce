"""The flags `leanpool verify` and `leanpool serve` share: the pool's size and limits, and the
verdict policy. One definition, so the two commands cannot drift apart in names, types or
defaults; each command adds its own flags to the groups returned here."""

from __future__ import annotations

import argparse
import sys
from typing import Any

# The CLI's per-request limit. The library waits as long as Lean takes (LeanInteract's default);
# a command-line run over untrusted input is safe by default instead.
DEFAULT_TIMEOUT = 120.0


def add_pool_arguments(
    parser: argparse.ArgumentParser, *, unit: str, timeout_help: str, memory_help: str
) -> Any:
    """The "pool" group; `unit` names what the command checks ("proofs", "requests")."""
    group = parser.add_argument_group("pool")
    group.add_argument(
        "-j", "--workers", type=positive_int, metavar="N", help="REPL workers (default: CPUs)"
    )
    group.add_argument(
        "--timeout",
        type=non_negative_float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"{timeout_help} (default: {DEFAULT_TIMEOUT:g} s); 0 means no limit",
    )
    group.add_argument("--memory-limit-mb", type=positive_float, metavar="MB", help=memory_help)
    group.add_argument(
        "--max-tasks-per-worker",
        type=positive_int,
        metavar="N",
        help=f"replace each worker after N {unit} (bounds memory growth)",
    )
    group.add_argument("-v", "--verbose", action="store_true", help="show setup steps")
    return group


def add_policy_arguments(parser: argparse.ArgumentParser, description: str | None = None) -> Any:
    """The "verdict policy" group; `policy_options` reads it back."""
    group = parser.add_argument_group("verdict policy", description)
    group.add_argument(
        "--allow-sorry", action="store_true", help="count proofs that use sorry as passed"
    )
    group.add_argument(
        "--allow-axiom",
        action="append",
        default=[],
        metavar="NAME",
        help="also allow this axiom (repeatable; propext, Classical.choice and Quot.sound are)",
    )
    group.add_argument(
        "--allow-native",
        action="store_true",
        help="allow native computation (native_decide, decide +native): it trusts compiled code",
    )
    group.add_argument(
        "--allow-metaprograms",
        action="store_true",
        help="allow syntax extensions and metaprograms (macro, elab, #eval, ...) in proofs",
    )
    group.add_argument(
        "--no-axiom-check",
        dest="check_axioms",
        action="store_false",
        help="do not ask Lean for each theorem's axioms (one command less per proof)",
    )
    group.add_argument(
        "--heartbeat-budget",
        type=positive_int,
        metavar="N",
        help="rewrite `set_option maxHeartbeats 0` (no limit) in proofs to N (thousands of "
        "heartbeats, Lean's unit; its default is 200000): a runaway proof then fails fast as "
        "a Lean error instead of running into the time limit",
    )
    group.add_argument(
        "--lower-heartbeats",
        action="store_true",
        help="with --heartbeat-budget, also lower larger maxHeartbeats values to the budget",
    )
    return group


def policy_options(args: argparse.Namespace) -> dict[str, Any]:
    """The policy keywords the flags change from the library's defaults (`VerdictPolicy`)."""
    options: dict[str, Any] = {}
    if args.allow_sorry:
        options["allow_sorry"] = True
    if args.allow_native:
        options["allow_native"] = True
    if args.allow_metaprograms:
        options["allow_metaprograms"] = True
    if not args.check_axioms:
        options["check_axioms"] = False
    if args.allow_axiom:
        from leanpool._verdict import STANDARD_AXIOMS

        options["allowed_axioms"] = (*STANDARD_AXIOMS, *args.allow_axiom)
    if args.lower_heartbeats and args.heartbeat_budget is None:
        print(
            "--lower-heartbeats needs --heartbeat-budget N (the value to lower to)", file=sys.stderr
        )
        raise SystemExit(2)  # a usage error, as argparse's own
    if args.heartbeat_budget is not None:
        options["heartbeat_budget"] = args.heartbeat_budget
        if args.lower_heartbeats:
            options["lower_heartbeats"] = True
    return options


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value
