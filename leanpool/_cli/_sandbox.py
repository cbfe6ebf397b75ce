"""The sandbox flags of the commands that start REPLs (`leanpool verify`)."""

from __future__ import annotations

import argparse
from typing import Any

from leanpool._sandbox import check_pass_env


def add_sandbox_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "sandbox",
        "Each REPL runs with a scrubbed environment, writes only to a private scratch "
        "directory, and has no network and a process limit where the machine allows "
        "(`leanpool doctor` shows what is active).",
    )
    group.add_argument(
        "--pass-env",
        action="append",
        default=[],
        type=_variable_name,
        metavar="NAME",
        help="pass this environment variable to the REPLs too (repeatable)",
    )
    group.add_argument(
        "--no-sandbox",
        dest="sandbox",
        action="store_const",
        const=None,
        default="auto",
        help="run REPLs with this process's whole environment and rights (trusted code only)",
    )


def _variable_name(text: str) -> str:
    try:
        return check_pass_env(text)[0]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def sandbox_options(args: argparse.Namespace) -> dict[str, Any]:
    """`LeanPool` keywords from the parsed flags."""
    return {"sandbox": args.sandbox, "pass_env": tuple(args.pass_env)}
