"""The sandbox: which mechanisms are active here, and that a sandboxed REPL answers and is
confined (a secret of the owner's environment stays out of it; with Landlock, it cannot write
outside its scratch directory, and it can write inside it, where pickles go).

The probes are Lean code (``IO.getEnv``, ``IO.FS.writeFile``) on real Lean, and the simulator's
``--!sim getenv=`` and ``write=`` directives on the simulator; what is checked is the same:
whether the value shows up in the answer, and whether the files exist afterwards.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from leanpool._selftest._answers import info_texts
from leanpool._selftest._report import CheckResult
from leanpool._selftest._target import SelftestOptions, Target

__all__ = ["SECRET_VARIABLE", "check_sandbox", "probe_confinement"]

SECRET_VARIABLE = "LEANPOOL_SELFTEST_SECRET"


def _lean_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _probe_commands(simulated: bool, outside: Path, inside: Path) -> list[str]:
    if simulated:
        return [
            f"#eval 0 --!sim getenv={SECRET_VARIABLE}",
            f"#eval 0 --!sim write={outside}",
            f"#eval 0 --!sim write={inside}",
        ]
    return [
        f"#eval IO.getEnv {_lean_string(SECRET_VARIABLE)}",
        f"#eval IO.FS.writeFile {_lean_string(str(outside))} {_lean_string('leaked')}",
        f"#eval IO.FS.writeFile {_lean_string(str(inside))} {_lean_string('ok')}",
    ]


def probe_confinement(
    target: Target, timeout: float, sandbox: Any = "auto"
) -> tuple[dict[str, Any], list[str]]:
    """Run the probes on one REPL of `target`; (facts, what leaked)."""
    from leanpool._server import LeanServer
    from leanpool.protocol import Command

    secret = secrets.token_hex(16)
    outside_dir = Path(tempfile.mkdtemp(prefix="leanpool-selftest-outside-"))
    outside = outside_dir / "written-by-the-repl"
    facts: dict[str, Any] = {}
    leaks: list[str] = []
    previous = os.environ.get(SECRET_VARIABLE)
    os.environ[SECRET_VARIABLE] = secret  # read when the REPL starts, then restored
    try:
        with LeanServer(target.config, sandbox=sandbox) as server:
            os.environ.pop(SECRET_VARIABLE, None)
            if previous is not None:
                os.environ[SECRET_VARIABLE] = previous
            scratch = server.scratch_dir
            inside = Path(scratch) / "written-by-the-repl" if scratch else outside_dir / "inside"
            commands = _probe_commands(target.simulated, outside, inside)
            answers = [server.run(Command(cmd=c), timeout=timeout) for c in commands]
            texts = [text for answer in answers for text in info_texts(answer)]
            facts["answers"] = texts
            facts["scratch_dir"] = scratch
            facts["secret_visible"] = any(secret in text for text in texts)
            facts["wrote_outside"] = outside.exists()
            facts["wrote_inside"] = inside.exists()
            if facts["secret_visible"]:
                leaks.append(f"the REPL read {SECRET_VARIABLE} from the owner's environment")
            if facts["wrote_outside"]:
                leaks.append(f"the REPL wrote {outside}, outside its scratch directory")
    finally:
        if os.environ.get(SECRET_VARIABLE) == secret:
            os.environ.pop(SECRET_VARIABLE, None)
            if previous is not None:
                os.environ[SECRET_VARIABLE] = previous
        shutil.rmtree(outside_dir, ignore_errors=True)
    return facts, leaks


def check_sandbox(target: Target, options: SelftestOptions) -> CheckResult:
    from leanpool._sandbox import sandbox_support

    started = time.monotonic()
    mechanisms = sandbox_support().mechanisms()
    active = {m.name: m.active for m in mechanisms}
    facts, leaks = probe_confinement(target, options.timeout)
    details = {
        "mechanisms": [
            {
                "name": m.name,
                "active": m.active,
                "detail": m.detail,
                "missing_means": m.missing_means,
            }
            for m in mechanisms
        ],
        "probes": facts,
    }
    problems = [leak for leak in leaks if "environment" in leak]
    if active.get("landlock"):
        problems += [leak for leak in leaks if "outside" in leak]
        if not facts.get("wrote_inside"):
            problems.append("the REPL could not write to its scratch directory (pickles go there)")
    on = ", ".join(m.name for m in mechanisms if m.active)
    off = ", ".join(m.name for m in mechanisms if not m.active)
    summary = f"active: {on or 'none'}" + (f"; missing: {off}" if off else "")
    if problems:
        return CheckResult(
            "sandbox",
            "fail",
            "; ".join(problems) + f" ({summary})",
            details,
            time.monotonic() - started,
            target.simulated,
        )
    summary += "; a sandboxed REPL answers, without the owner's secrets"
    if active.get("landlock"):
        summary += ", writing only to its scratch directory"
    status: Any = "warn" if off else "ok"
    return CheckResult(
        "sandbox", status, summary, details, time.monotonic() - started, target.simulated
    )
