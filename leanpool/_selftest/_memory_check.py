"""Memory: how much address space the project's imports take, against ``RLIMIT_AS``.

A REPL imports the project's heaviest module (Mathlib when the project requires it, else Lean)
under the config's ``memory_hard_limit_mb`` (``RLIMIT_AS``, as servers apply it), elaborates one
command in that env, and its ``VmPeak``, ``VmSize``, ``VmHWM`` and ``VmRSS`` are read from
``/proc/<pid>/status``. The margin is the limit less ``VmPeak``: Lean maps every ``.olean`` it
imports, so the address space it needs is well above its resident size (docs/concepts/memory.md
says about twice for Mathlib; this measures it). A REPL that dies on the import under the limit
fails the check; a margin under 10 % warns.

It also splits the REPL's resident memory after the import into file pages (``RssFile``: the
mapped ``.olean`` data, shared by every REPL on the machine through the page cache) and private
memory (``RssAnon``: environment extensions built at import, and what elaboration allocates),
which is what `memory_limit_mb` counts by default and what each further REPL adds.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from leanpool._selftest._report import CheckResult
from leanpool._selftest._target import SelftestOptions, Target, derive_config

__all__ = ["check_memory", "read_vm_status"]

_FIELDS = ("VmPeak", "VmSize", "VmHWM", "VmRSS", "RssAnon", "RssFile")
_TIGHT = 0.10  # a margin below this fraction of the limit warns


def read_vm_status(pid: int) -> dict[str, float]:
    """``VmPeak``, ``VmSize``, ``VmHWM``, ``VmRSS``, ``RssAnon``, ``RssFile`` of a process in MB
    ({} where no /proc; ``RssAnon`` and ``RssFile`` need Linux 4.5)."""
    values: dict[str, float] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError:
        return values
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in _FIELDS:
            parts = rest.split()
            if parts and parts[0].isdigit():
                values[key] = round(int(parts[0]) / 1024, 1)  # kB -> MB
    return values


def check_memory(target: Target, options: SelftestOptions) -> CheckResult:
    from leanpool._errors import LeanPoolError
    from leanpool._server import LeanServer
    from leanpool.protocol import Command, CommandResponse

    started = time.monotonic()
    limit = target.memory_hard_limit_mb
    config = derive_config(target.config, memory_hard_limit_mb=limit)
    module = target.import_module
    details: dict[str, Any] = {"import": module, "memory_hard_limit_mb": limit}
    with LeanServer(config, memory_backend="rlimit") as server:
        try:
            imported = server.run(Command(cmd=f"import {module}"), timeout=options.timeout)
            if isinstance(imported, CommandResponse):
                server.run(Command(cmd="#eval 2 ^ 64", env=imported.env), timeout=options.timeout)
        except LeanPoolError as exc:
            details["error"] = f"{type(exc).__name__}: {exc}"
            return CheckResult(
                "memory",
                "fail",
                f"the REPL died importing {module} under RLIMIT_AS={limit} MB "
                f"({type(exc).__name__}): raise memory_hard_limit_mb",
                details,
                time.monotonic() - started,
                target.simulated,
            )
        pid = server.pid
        status = read_vm_status(pid) if pid is not None else {}
    details.update(status)
    seconds = time.monotonic() - started
    if "VmPeak" not in status:
        return CheckResult(
            "memory",
            "skip",
            "no /proc/<pid>/status to read the REPL's address space from (not Linux)",
            details,
            seconds,
            target.simulated,
        )
    peak, rss = status["VmPeak"], status.get("VmHWM", status.get("VmRSS", 0.0))
    if rss:
        details["address_space_per_resident"] = round(peak / rss, 2)
    measured = f"after import {module}: VmPeak {peak:,.0f} MB, peak RSS {rss:,.0f} MB"
    if "RssAnon" in status and "RssFile" in status:
        measured += (
            f" (now {status['RssFile']:,.0f} MB mapped files, shared between REPLs, and "
            f"{status['RssAnon']:,.0f} MB private)"
        )
    suggested = int(math.ceil(peak * 1.25 / 100.0) * 100)
    details["suggested_memory_hard_limit_mb"] = suggested
    if limit is None:
        return CheckResult(
            "memory",
            "info",
            f"{measured}; no RLIMIT_AS set (memory_hard_limit_mb=None): a limit must exceed "
            f"VmPeak, e.g. {suggested} MB",
            details,
            seconds,
            target.simulated,
        )
    margin = limit - peak
    details["margin_mb"] = round(margin, 1)
    text = f"{measured}; RLIMIT_AS {limit:,} MB leaves {margin:,.0f} MB"
    status_name: Any = "ok" if margin >= _TIGHT * limit else "warn"
    if status_name == "warn":
        text += f" (under {_TIGHT:.0%}: heavier proofs may hit it; e.g. {suggested} MB)"
    return CheckResult("memory", status_name, text, details, seconds, target.simulated)
