"""The REPL answers: start-up time (to the first answer), the import time of the project's
heaviest module (Mathlib when the project requires it, else Lean), and a command in that env."""

from __future__ import annotations

import time
from typing import Any

from leanpool._selftest._report import CheckResult
from leanpool._selftest._target import SelftestOptions, Target

__all__ = ["check_answers", "info_texts"]


def info_texts(response: Any) -> list[str]:
    """The message texts of a command's answer ([] for anything else)."""
    return [message.data for message in getattr(response, "messages", None) or []]


def check_answers(target: Target, options: SelftestOptions) -> CheckResult:
    from leanpool._server import LeanServer
    from leanpool.protocol import Command, CommandResponse

    started = time.monotonic()
    details: dict[str, Any] = {"import": target.import_module}
    problems: list[str] = []
    with LeanServer(target.config) as server:  # sandboxed, as users run it
        first = server.run(Command(cmd="#eval 6 * 7"), timeout=options.timeout)
        details["first_answer_seconds"] = round(time.monotonic() - started, 3)
        if "42" not in info_texts(first):
            problems.append(f"#eval 6 * 7 answered {first!r}, not 42")
        begun = time.monotonic()
        imported = server.run(
            Command(cmd=f"import {target.import_module}"), timeout=options.timeout
        )
        details["import_seconds"] = round(time.monotonic() - begun, 3)
        if not isinstance(imported, CommandResponse) or any(
            m.severity == "error" for m in imported.messages
        ):
            problems.append(f"import {target.import_module} failed: {imported!r}"[:400])
        else:
            begun = time.monotonic()
            answer = server.run(
                Command(cmd="#eval 2 ^ 10", env=imported.env), timeout=options.timeout
            )
            details["command_after_import_seconds"] = round(time.monotonic() - begun, 3)
            if "1024" not in info_texts(answer):
                problems.append(f"#eval 2 ^ 10 after the import answered {answer!r}"[:400])
    seconds = time.monotonic() - started
    summary = (
        f"first answer {details['first_answer_seconds']:.2f} s; "
        f"import {target.import_module} {details['import_seconds']:.2f} s"
    )
    if "command_after_import_seconds" in details:
        summary += f"; a command in that env {details['command_after_import_seconds']:.3f} s"
    if problems:
        details["problems"] = problems
        return CheckResult(
            "answers", "fail", "; ".join(problems), details, seconds, target.simulated
        )
    return CheckResult("answers", "ok", summary, details, seconds, target.simulated)
