"""What `leanpool selftest` found: one `CheckResult` per check, gathered in a `Report`.

The report is plain data: it renders as the command's table and is written as JSON, the file a
user attaches to a bug report. Every result says whether it ran on real Lean or on the REPL
simulator, so a report from a machine without Lean can never pass for one with it.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = ["FAILING", "CheckResult", "Report", "Status", "machine_facts"]

# ok: agrees; warn: agrees with a caveat worth reading; fail: disagrees (exit status 1);
# skip: not run (with the reason); info: measured, nothing to agree with.
Status = Literal["ok", "warn", "fail", "skip", "info"]
FAILING: frozenset[str] = frozenset({"fail"})
REPORT_FORMAT = 1


@dataclass
class CheckResult:
    """The outcome of one check."""

    name: str
    status: Status
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    simulated: bool = False  # ran on the REPL simulator, not on Lean


@dataclass
class Report:
    """Every check's result, and what they ran on."""

    target: dict[str, Any] = field(default_factory=dict)  # Lean version, REPL, project, ...
    checks: list[CheckResult] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.time)

    @property
    def simulated(self) -> bool:
        return any(check.simulated for check in self.checks)

    @property
    def exit_status(self) -> int:
        """0 when nothing disagrees, 1 when something does."""
        return 1 if any(check.status in FAILING for check in self.checks) else 0

    def add(self, result: CheckResult) -> CheckResult:
        self.checks.append(result)
        return result

    def to_json(self) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT,
            "tool": "leanpool selftest",
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.started)),
            "seconds": round(time.time() - self.started, 3),
            "simulated": self.simulated,
            "exit_status": self.exit_status,
            "machine": machine_facts(),
            "options": self.options,
            "target": self.target,
            "checks": [asdict(check) for check in self.checks],
        }

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the JSON report (atomically: a reader never sees half of it)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        scratch.write_text(
            json.dumps(self.to_json(), indent=1, ensure_ascii=False, default=str) + "\n",
            encoding="utf-8",
        )
        os.replace(scratch, target)
        return target


def machine_facts() -> dict[str, Any]:
    """What a maintainer needs to know about the machine a report comes from."""
    import leanpool

    facts: dict[str, Any] = {
        "leanpool": leanpool.__version__,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
    try:
        import psutil

        facts["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except Exception:  # psutil is a dependency; a broken one must not lose the report
        pass
    return facts
