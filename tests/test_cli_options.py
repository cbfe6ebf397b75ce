"""The flags `leanpool verify` and `leanpool serve` share: same names, types, defaults and
policy keywords on both commands."""

from __future__ import annotations

import pytest

from leanpool._cli import build_parser
from leanpool._cli._options import DEFAULT_TIMEOUT, policy_options
from leanpool._verdict import STANDARD_AXIOMS

COMMANDS = {"verify": ["verify", "x.lean"], "serve": ["serve", "--sim"]}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_defaults_are_the_same_on_both_commands(command: str) -> None:
    args = build_parser().parse_args(COMMANDS[command])
    assert args.timeout == DEFAULT_TIMEOUT and args.workers is None
    assert args.memory_limit_mb is None and args.max_tasks_per_worker is None
    assert policy_options(args) == {}  # the library's safe defaults, unchanged


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_policy_flags_become_the_policy_keywords(command: str) -> None:
    flags = ["--allow-sorry", "--allow-native", "--allow-metaprograms", "--no-axiom-check"]
    flags += ["--allow-axiom", "Lean.ofReduceBool", "-j", "3", "--timeout", "0"]
    args = build_parser().parse_args([*COMMANDS[command], *flags])
    assert policy_options(args) == {
        "allow_sorry": True,
        "allow_native": True,
        "allow_metaprograms": True,
        "check_axioms": False,
        "allowed_axioms": (*STANDARD_AXIOMS, "Lean.ofReduceBool"),
    }
    assert args.workers == 3 and args.timeout == 0


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize(
    ("flag", "value", "complaint"),
    [
        ("-j", "0", "must be at least 1, got 0"),
        ("--timeout", "-1", "must be 0 or more, got -1"),
        ("--memory-limit-mb", "0", "must be positive, got 0"),
        ("--max-tasks-per-worker", "x", "invalid positive_int value: 'x'"),
    ],
)
def test_bad_values_are_usage_errors_naming_the_flag(
    command: str, flag: str, value: str, complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([*COMMANDS[command], flag, value])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert flag in error and complaint in error
