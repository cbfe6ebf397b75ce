"""`leanpool doctor`: what this machine offers leanpool, with one actionable line per problem.

Nothing here installs, downloads or builds anything, and nothing runs `lean` (elan's proxy would
fetch a missing toolchain): tools are found on PATH and toolchains listed by elan.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.markup import escape
from rich.table import Table

Status = Literal["ok", "warn", "fail", "info"]
_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red", "info": "cyan"}
# RSS of one REPL that imported Mathlib: about 5 GB (docs/concepts/memory.md); leanclient reports
# the same ~5 GB per Lean worker with Mathlib open (oOo0oOo/leanclient, leanclient/aio/client.py).
_MATHLIB_REPL_GB = 5.0
_CACHE_WALK_LIMIT = 500_000  # entries; beyond this the size is reported as a lower bound
ELAN_INSTALL = (
    "curl https://raw.githubusercontent.com/leanprover/elan/master/elan-init.sh -sSf | sh"
)


@dataclass(frozen=True)
class Finding:
    check: str
    status: Status
    detail: str
    action: str = ""


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "doctor",
        help="show what this machine has for leanpool, and what to fix",
        description="Check elan, Lean toolchains, cached REPL builds, cores, memory and the "
        "process-limit and sandbox mechanisms leanpool uses. Exit status 1 when something "
        "required is missing (real Lean cannot run), else 0.",
    )
    parser.add_argument(
        "--project",
        metavar="DIR",
        help="also check this Lake project before any run: a cached REPL for its Lean "
        "version, its build and its packages' builds, its manifest (what would make lake "
        "reach the network), and total the .olean files a REPL in it maps against an "
        "address-space limit",
    )
    parser.add_argument(
        "--memory-hard-limit-mb",
        type=float,
        metavar="MB",
        help="with --project: the address-space limit (memory_hard_limit_mb) to check",
    )
    parser.set_defaults(handler=run_doctor)


def run_doctor(args: argparse.Namespace) -> int:
    console = Console(highlight=False)
    findings = list(diagnose())
    if getattr(args, "project", None):
        findings += list(project_findings(Path(args.project)))
        findings += list(olean_findings(Path(args.project), args.memory_hard_limit_mb))
    table = Table(title="leanpool doctor", title_justify="left", show_edge=False)
    table.add_column("check")
    table.add_column("status")
    table.add_column("details", overflow="fold")
    for finding in findings:
        style = _STYLE[finding.status]
        table.add_row(finding.check, f"[{style}]{finding.status}[/]", escape(finding.detail))
    console.print(table)
    actions = [f for f in findings if f.action]
    if actions:
        console.print("\n[bold]What to do[/]")
        for finding in actions:
            style = _STYLE[finding.status]
            console.print(f"[{style}]{finding.check}[/]: {escape(finding.action)}")
    else:
        console.print("\nNothing to fix.")
    return 1 if any(f.status == "fail" for f in findings) else 0


def diagnose() -> Iterator[Finding]:
    checks: list[Callable[[], Iterator[Finding]]] = [
        _python,
        _elan,
        _tools,
        _toolchains,
        _cache,
        _cores,
        _memory,
        _rlimit,
        _cgroup,
        _death_signal,
        _sandbox,
        _simulator,
    ]
    for check in checks:
        try:
            yield from check()
        except Exception as exc:  # a broken probe must not hide the others
            yield Finding(check.__name__.strip("_"), "warn", f"could not check: {exc}")


# ------------------------------------------------------------------------------------- Lean
def _python() -> Iterator[Finding]:
    import leanpool

    version = ".".join(map(str, sys.version_info[:3]))
    yield Finding("leanpool", "info", f"leanpool {leanpool.__version__}, Python {version}")


def elan_path() -> str | None:
    """elan where setup looks for it (PATH, ``$ELAN_HOME/bin``, ``~/.elan/bin``)."""
    from leanpool._setup import find_elan

    found = find_elan()
    return str(found) if found is not None else None


def _elan() -> Iterator[Finding]:
    path = elan_path()
    if path is None:
        yield Finding(
            "elan",
            "fail",
            "not found on PATH or in ~/.elan/bin",
            f"install elan (Lean's toolchain manager): {ELAN_INSTALL} ; until then, "
            "`leanpool verify --sim` runs on the REPL simulator",
        )
        return
    output = _run([path, "--version"])
    yield Finding("elan", "ok", f"{path} ({output or 'version unknown'})")


def _tools() -> Iterator[Finding]:
    for tool, why in (("lake", "builds the REPL and projects"), ("git", "fetches the REPL")):
        path = shutil.which(tool)
        if path:
            yield Finding(tool, "ok", path)
        elif tool == "lake" and elan_path():
            yield Finding(
                tool,
                "warn",
                f"not on PATH ({why})",
                "add elan's bin directory to PATH (e.g. source ~/.elan/env)",
            )
        else:
            status: Status = "fail" if tool == "git" else "warn"
            action = f"install {tool} ({why})" if tool == "git" else "comes with elan"
            yield Finding(tool, status, f"not on PATH ({why})", action)


def _toolchains() -> Iterator[Finding]:
    elan = elan_path()
    if elan is None:
        yield Finding("toolchains", "info", "none (no elan)")
        return
    listing = _run([elan, "toolchain", "list"])
    names = [line.split()[0] for line in (listing or "").splitlines() if line.strip()]
    names = [n for n in names if not n.lower().startswith("no ")]
    if not names:
        yield Finding(
            "toolchains",
            "warn",
            "no Lean toolchain installed",
            "run `leanpool setup --lean-version v4.X.Y` (or --project DIR): elan installs the "
            "toolchain the REPL needs",
        )
        return
    yield Finding("toolchains", "ok", ", ".join(names))


_PREFLIGHT_LABELS = {
    "repl-version": "REPL version",
    "project-build": "project build",
    "package-build": "package build",
    "manifest": "lake manifest",
    "toolchain": "project toolchain",
}


def project_findings(project: Path) -> Iterator[Finding]:
    """The pool's preflight on a project directory (`leanpool._preflight.check_project`), and
    whether the cache holds a REPL built for the project's Lean."""
    from leanpool._preflight import check_project
    from leanpool._project import read_lean_version

    if not project.is_dir():
        return  # olean_findings says so
    version = read_lean_version(project)
    if version is not None:
        yield from _repl_for(project, version)
    problems = check_project(project)
    for problem in problems:
        yield Finding(
            _PREFLIGHT_LABELS.get(problem.check, problem.check),
            "fail" if problem.severity == "error" else "warn",
            f"{problem.what}: {problem.why}",
            problem.action,
        )
    if not problems:
        yield Finding(
            "project",
            "ok",
            f"{project}: built (its own and its packages' .olean files), lake-manifest.json in "
            "step with the lakefile, every package cloned at the manifest's revision",
        )


def _repl_for(project: Path, version: str) -> Iterator[Finding]:
    """A cached REPL build whose checkout's ``lean-toolchain`` names `version` (the REPL
    version the pool's preflight compares with the project's)."""
    from leanpool._preflight import repl_checkout_version

    builds = sorted(cache_directory().glob("repl/*/builds/*"))
    versions = {build: repl_checkout_version(build) for build in builds}
    matching = [b for b, v in versions.items() if v == version]
    if matching:
        yield Finding("REPL for project", "ok", f"Lean {version}: {matching[0]}")
        return
    others = sorted({v for v in versions.values() if v})
    detail = f"no cached REPL build for Lean {version} (the project's lean-toolchain)"
    if others:
        detail += f"; the cached ones ({', '.join(others)}) cannot read its .olean files"
    yield Finding(
        "REPL for project",
        "warn",
        detail,
        f"`leanpool setup --project {project}` builds the REPL for Lean {version}",
    )


def olean_findings(project: Path, limit_mb: float | None) -> Iterator[Finding]:
    """The project's .olean total (where ``lake env`` puts LEAN_PATH: the project's and its
    packages' builds under ``.lake``, and the toolchain's ``lib/lean``) against an
    address-space limit."""
    from leanpool._memory import (
        MB,
        address_space_needed_mb,
        address_space_problem,
        olean_total_bytes,
    )

    if not project.is_dir():
        yield Finding("oleans", "fail", f"{project} is not a directory", "give a Lake project")
        return
    places = [str(project / ".lake")]
    toolchain = _toolchain_lib(project)
    if toolchain is not None:
        places.append(str(toolchain))
    total, files = olean_total_bytes(os.pathsep.join(places))
    if not files:
        yield Finding(
            "oleans",
            "warn",
            f"no .olean files under {project}/.lake (not built yet?)",
            f"build it first: leanpool setup --project {project}",
        )
        return
    detail = f"{files} .olean files, {_human_bytes(total)}, mapped in full by `import` of all"
    yield Finding("oleans", "info", detail)
    if limit_mb is None:
        yield Finding(
            "address space",
            "info",
            f"memory_hard_limit_mb (RLIMIT_AS) needs at least "
            f"{address_space_needed_mb(total):.0f} MB for this project; "
            f"memory_limit_mb counts private memory, without these {total / MB:.0f} MB",
        )
        return
    problem = address_space_problem(limit_mb, total)
    if problem is None:
        yield Finding("address space", "ok", f"memory_hard_limit_mb={limit_mb:.0f} leaves room")
    else:
        yield Finding("address space", "warn", problem, "raise the limit, or see the detail")


def _toolchain_lib(project: Path) -> Path | None:
    """The toolchain's ``lib/lean`` for the project's ``lean-toolchain``, where elan keeps it
    (``leanprover/lean4:v4.19.0`` -> ``toolchains/leanprover--lean4---v4.19.0``)."""
    try:
        name = (project / "lean-toolchain").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    home = Path(os.environ.get("ELAN_HOME") or Path.home() / ".elan")
    directory = home / "toolchains" / name.replace("/", "--").replace(":", "---") / "lib" / "lean"
    return directory if directory.is_dir() else None


# ------------------------------------------------------------------------------------- cache
def cache_directory() -> Path:
    """Where LeanREPLConfig caches REPL builds (the config's own rule)."""
    from leanpool._setup import default_cache_dir

    return default_cache_dir()


def _cache() -> Iterator[Finding]:
    directory = cache_directory()
    if not directory.exists():
        yield Finding(
            "cache",
            "info",
            f"{directory} (empty: nothing set up yet)",
        )
        yield Finding(
            "REPL builds",
            "info",
            "none cached",
            "`leanpool setup --lean-version v4.X.Y` (or --project DIR) builds one",
        )
        return
    size, entries, builds = _walk_cache(directory)
    bound = "≥ " if entries >= _CACHE_WALK_LIMIT else ""
    yield Finding("cache", "ok", f"{directory}: {bound}{_human_bytes(size)} in {entries} files")
    if builds:
        shown = ", ".join(str(b.relative_to(directory)) for b in builds[:6])
        more = f" (+{len(builds) - 6} more)" if len(builds) > 6 else ""
        yield Finding("REPL builds", "ok", f"{len(builds)}: {shown}{more}")
    else:
        yield Finding(
            "REPL builds",
            "warn",
            "none cached",
            "`leanpool setup --lean-version v4.X.Y` (or --project DIR) builds one",
        )


def _walk_cache(directory: Path) -> tuple[int, int, list[Path]]:
    """Total size, file count and REPL binaries (``.../.lake/build/bin/repl``) under the cache."""
    size = entries = 0
    builds: list[Path] = []
    stack = [directory]
    while stack and entries < _CACHE_WALK_LIMIT:
        current = stack.pop()
        try:
            iterator = os.scandir(current)
        except OSError:
            continue
        with iterator:
            for entry in iterator:
                entries += 1
                with contextlib.suppress(OSError):
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(Path(entry.path))
                    elif entry.is_file(follow_symlinks=False):
                        size += entry.stat(follow_symlinks=False).st_size
                        path = Path(entry.path)
                        if path.name == "repl" and path.parent.parts[-3:] == (
                            ".lake",
                            "build",
                            "bin",
                        ):
                            builds.append(path)
    return size, entries, sorted(builds)


# ------------------------------------------------------------------------------------- machine
def _cores() -> Iterator[Finding]:
    logical = os.cpu_count() or 1
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else logical
    quota = _cgroup_cpu_quota()
    detail = f"{logical} logical CPUs, {usable} usable by this process"
    if quota is not None:
        detail += f", container CPU quota {quota:g}"
    limit = min(usable, int(quota) if quota else usable) or 1
    action = ""
    if limit < logical:
        action = f"use --workers {limit} (more workers than usable CPUs only adds contention)"
    yield Finding("cores", "ok", detail, action)


def _cgroup_cpu_quota() -> float | None:
    with contextlib.suppress(OSError, ValueError):
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            return int(quota) / int(period)
    with contextlib.suppress(OSError, ValueError):
        base = Path("/sys/fs/cgroup/cpu")
        quota_us = int((base / "cpu.cfs_quota_us").read_text())
        period_us = int((base / "cpu.cfs_period_us").read_text())
        if quota_us > 0:
            return quota_us / period_us
    return None


def _memory() -> Iterator[Finding]:
    import psutil

    memory = psutil.virtual_memory()
    total_gb = memory.total / 2**30
    detail = f"{total_gb:.1f} GB total, {memory.available / 2**30:.1f} GB available"
    limit = _cgroup_memory_limit()
    if limit is not None and limit < memory.total:
        total_gb = limit / 2**30
        detail += f", container limit {total_gb:.1f} GB"
    fits = int(total_gb * 0.8 // _MATHLIB_REPL_GB)
    if fits >= 1:
        limit_mb = int(_MATHLIB_REPL_GB * 1.4 * 1024)
        detail += (
            f"; room for about {fits} Mathlib REPLs (~{_MATHLIB_REPL_GB:g} GB each, within 80%): "
            f"e.g. --workers {fits} --memory-limit-mb {limit_mb}"
        )
        yield Finding("memory", "ok", detail)
        return
    action = (
        f"less than {_MATHLIB_REPL_GB / 0.8:.0f} GB: a Mathlib REPL may not fit; core-Lean "
        "proofs are fine"
    )
    yield Finding("memory", "warn", detail, action)


def _cgroup_memory_limit() -> int | None:
    from leanpool._memory import container_memory_limit_bytes

    return container_memory_limit_bytes()


def _rlimit() -> Iterator[Finding]:
    """Start a child that caps its address space at 1 GiB and allocates 2 GiB: it must fail."""
    try:
        import resource  # noqa: F401 (absent on Windows)
    except ImportError:
        yield Finding(
            "RLIMIT_AS",
            "warn",
            "not available on this platform",
            "hard memory limits (memory_hard_limit_mb) are not enforced; use memory_limit_mb "
            "(RSS watchdog) instead",
        )
        return
    probe = (
        "import resource\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
        "try:\n    bytearray(1 << 31)\nexcept MemoryError:\n    raise SystemExit(3)\n"
    )
    try:
        result = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, timeout=30, check=False
        )
        returncode: int | None = result.returncode
    except (OSError, subprocess.TimeoutExpired):
        returncode = None
    if returncode == 3:
        yield Finding("RLIMIT_AS", "ok", "address-space limits work (memory_hard_limit_mb)")
    else:
        yield Finding(
            "RLIMIT_AS",
            "warn",
            f"a 1 GiB address-space limit did not stop a 2 GiB allocation (status {returncode})",
            "memory_hard_limit_mb will not be enforced here; rely on memory_limit_mb (RSS)",
        )


def _cgroup() -> Iterator[Finding]:
    from leanpool._memory import cgroup_support

    support = cgroup_support()
    if support.available:
        yield Finding(
            "memory cgroups",
            "ok",
            f"v{support.version} at {support.parent}: exact per-REPL limits "
            "(memory_backend='cgroup')",
        )
    else:
        yield Finding(
            "memory cgroups",
            "info",
            support.reason,
            "exact resident limits unavailable; leanpool uses RLIMIT_AS and the RSS watchdog "
            "(run as root or with a delegated cgroup to enable memory_backend='cgroup')",
        )


def _death_signal() -> Iterator[Finding]:
    from leanpool._process import can_die_with_parent

    if can_die_with_parent():
        yield Finding("orphan protection", "ok", "PR_SET_PDEATHSIG: REPLs die with their owner")
    else:
        yield Finding(
            "orphan protection",
            "warn",
            "PR_SET_PDEATHSIG unavailable (not Linux)",
            "REPLs are still killed at exit and on shutdown, but not if Python is SIGKILLed",
        )


def _sandbox() -> Iterator[Finding]:
    """Each mechanism of sandbox="auto", as detected here (the same probes servers use)."""
    from leanpool._sandbox import sandbox_support

    for mechanism in sandbox_support().mechanisms():
        if mechanism.active:
            yield Finding(f"sandbox: {mechanism.name}", "ok", mechanism.detail)
        else:
            yield Finding(
                f"sandbox: {mechanism.name}",
                "warn",
                mechanism.detail,
                f"not enforced here: {mechanism.missing_means}; see the sandbox page of the "
                "docs for what enables it",
            )


def _simulator() -> Iterator[Finding]:
    try:
        from leanpool.testing import sim_config  # noqa: F401
    except ImportError as exc:
        yield Finding("simulator", "warn", f"cannot import leanpool.testing: {exc}")
        return
    yield Finding("simulator", "ok", "`leanpool verify --sim` works without Lean")


# ------------------------------------------------------------------------------------- helpers
def _run(command: list[str]) -> str | None:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (result.stdout or result.stderr).strip() or None


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"
