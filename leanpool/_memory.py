"""Measuring and bounding a REPL's memory: RSS from /proc, RLIMIT_AS, and cgroup memory limits.

Three mechanisms, from cheapest to most exact:

* RSS read from ``/proc/<pid>/statm`` (about 17 µs; a psutil tree walk costs about 100x more), used
  between requests and by the watchdog during long ones. This is what soft limits compare against.
* ``RLIMIT_AS`` set in the child before exec (LeanInteract's ``memory_hard_limit_mb``). It bounds
  *virtual* size, and Lean memory-maps every ``.olean`` it imports: a Mathlib REPL needs an
  address-space limit of roughly twice its resident size. Hitting it kills the REPL mid-request.
* A per-REPL memory cgroup (v1 ``memory`` controller, or v2 with ``memory`` enabled), where the
  machine lets us create one: the kernel charges resident pages exactly and OOM-kills at the limit.
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
MB = 1024 * 1024

CGROUP_V1_MEMORY = Path("/sys/fs/cgroup/memory")
CGROUP_V2_ROOTS = (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup"))
_CGROUP_PARENT_NAME = "leanpool"


class RssProbe:
    """Reads one process's resident set size from /proc, keeping the file open between reads."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._fd: int | None = None
        with contextlib.suppress(OSError):
            self._fd = os.open(f"/proc/{pid}/statm", os.O_RDONLY | os.O_CLOEXEC)

    def sample(self) -> tuple[int, int]:
        """(resident, shared) bytes, from one read; (0, 0) once the process is gone (or off
        Linux). *Shared* is resident file and shmem pages (``RssFile + RssShmem`` in
        ``/proc/<pid>/status``): for Lean, mostly the ``.olean`` files it mapped, which every
        REPL importing them shares through the page cache. Resident minus shared is the
        process's private memory (``RssAnon``), what it adds to the machine's use."""
        if self._fd is None:
            return 0, 0
        try:
            fields = os.pread(self._fd, 256, 0).split()
            return int(fields[1]) * _PAGE_SIZE, int(fields[2]) * _PAGE_SIZE
        except (OSError, IndexError, ValueError):
            return 0, 0

    def rss_bytes(self) -> int:
        """Current RSS in bytes; 0 once the process is gone (or off Linux)."""
        return self.sample()[0]

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


# What a REPL's memory limit (`rss_limit_mb`) and the watchdog compare against:
# "private": its private memory (resident minus shared pages: heap, elaboration, proof states);
# "rss": its whole resident set, which also counts every .olean page it touched, though those
# pages are shared with every other REPL that imports the same modules.
MemoryMetric = Literal["private", "rss"]
MEMORY_METRICS: tuple[str, ...] = ("private", "rss")


def pss_bytes(pid: int) -> int:
    """Proportional set size: private pages plus each shared page divided by the number of
    processes mapping it (``Pss`` of ``/proc/<pid>/smaps_rollup``, Linux 4.14+). Summed over
    processes it counts shared pages once. The kernel walks the page tables to compute it, so
    it is read for reports, not in the watchdog; 0 when unavailable."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as rollup:
            for line in rollup:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def olean_total_bytes(search_path: str) -> tuple[int, int]:
    """(bytes, files): the ``.olean`` files under the directories of `search_path` (a
    ``LEAN_PATH``, ``:``-separated), each file counted once. Lean maps every ``.olean`` a
    header imports in full (lean4 src/library/module.cpp), so an import of the whole library
    (``import Mathlib``) reserves about this much address space before any proof runs."""
    seen: set[str] = set()
    total = count = 0
    for directory in search_path.split(os.pathsep):
        if not directory or not os.path.isdir(directory):
            continue
        for root, _dirs, files in os.walk(directory):
            for name in files:
                if not name.endswith(".olean"):
                    continue
                path = os.path.realpath(os.path.join(root, name))
                if path in seen:
                    continue
                seen.add(path)
                with contextlib.suppress(OSError):
                    total += os.path.getsize(path)
                    count += 1
    return total, count


# Lean's own heap beyond the mapped .olean files (elaboration, proof states): what an
# address-space limit needs above them, at least.
ADDRESS_SPACE_HEADROOM_MB = 1024


def address_space_needed_mb(olean_bytes: int) -> float:
    """The least address-space limit for REPLs that may map `olean_bytes` of modules: the
    modules, plus a quarter of them or `ADDRESS_SPACE_HEADROOM_MB`, whichever is more."""
    olean_mb = olean_bytes / MB
    return olean_mb + max(ADDRESS_SPACE_HEADROOM_MB, olean_mb / 4)


def address_space_problem(limit_mb: float, olean_bytes: int) -> str | None:
    """Why an address-space limit (RLIMIT_AS, ``memory_hard_limit_mb``) of `limit_mb` is too
    close to `olean_bytes` of ``.olean`` files, or None when it leaves room. Too close, the
    mapping of the modules fails and Lean falls back to reading them into private memory (no
    sharing between REPLs), or runs out of memory while importing."""
    olean_mb = olean_bytes / MB
    needed = address_space_needed_mb(olean_bytes)
    if not olean_bytes or limit_mb >= needed:  # none found: nothing to compare with
        return None
    return (
        f"memory_hard_limit_mb={limit_mb:.0f} is too close to the {olean_mb:.0f} MB of .olean "
        f"files Lean maps when importing them all: give at least {needed:.0f} MB, or bound "
        "memory with memory_limit_mb (private memory) or memory_backend='cgroup' instead. Too "
        "close, Lean cannot map the modules and reads them into private memory (nothing "
        "shared between REPLs), or runs out of memory while importing."
    )


def tree_rss_bytes(pid: int) -> int:
    """RSS of a process and all its descendants (psutil walk; for reports, not hot paths)."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total


def container_memory_limit_bytes() -> int | None:
    """This machine's or container's cgroup memory limit (v2 ``memory.max``, v1
    ``memory.limit_in_bytes`` at the cgroup root as the container sees it), or None without one."""
    for path in (
        Path("/sys/fs/cgroup/memory.max"),
        Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
    ):
        with contextlib.suppress(OSError, ValueError):
            text = path.read_text().strip()
            if text != "max" and int(text) < 2**60:
                return int(text)
    return None


def system_memory_fraction() -> float:
    """Fraction of the machine's memory in use (0..1), as psutil reports it."""
    import psutil

    return float(psutil.virtual_memory().percent) / 100.0


def set_address_space_limit(limit_mb: float) -> None:
    """Set RLIMIT_AS for the calling process; called in the child between fork and exec."""
    limit = int(limit_mb * MB)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


# --------------------------------------------------------------------------------------------
# cgroups


@dataclass(frozen=True)
class CgroupSupport:
    """Whether this machine lets us create per-REPL memory cgroups, and why not."""

    version: int | None  # 1, 2, or None when unavailable
    parent: Path | None
    reason: str

    @property
    def available(self) -> bool:
        return self.version is not None


_support_cache: CgroupSupport | None = None


def cgroup_support() -> CgroupSupport:
    """Detect (once per process) a writable cgroup memory controller."""
    global _support_cache
    if _support_cache is None:
        _support_cache = _detect_cgroup_support()
    return _support_cache


def _detect_cgroup_support() -> CgroupSupport:
    if not sys.platform.startswith("linux"):
        return CgroupSupport(None, None, "cgroups exist only on Linux")
    reasons: list[str] = []
    if (CGROUP_V1_MEMORY / "memory.limit_in_bytes").exists():
        parent = CGROUP_V1_MEMORY / _CGROUP_PARENT_NAME
        problem = _probe_parent(parent, "memory.limit_in_bytes")
        if problem is None:
            return CgroupSupport(1, parent, "cgroup v1 memory controller is writable")
        reasons.append(f"cgroup v1 memory controller at {CGROUP_V1_MEMORY}: {problem}")
    else:
        reasons.append("no cgroup v1 memory controller")
    for root in CGROUP_V2_ROOTS:
        controllers = root / "cgroup.controllers"
        if not controllers.exists():
            continue
        try:
            available = controllers.read_text().split()
        except OSError as exc:
            reasons.append(f"cgroup v2 at {root}: {exc}")
            continue
        if "memory" not in available:
            reasons.append(f"cgroup v2 at {root} has no memory controller")
            continue
        parent = root / _CGROUP_PARENT_NAME
        problem = _probe_parent(parent, "memory.max", enable_memory=True)
        if problem is None:
            return CgroupSupport(2, parent, f"cgroup v2 memory controller at {root} is writable")
        reasons.append(f"cgroup v2 at {root}: {problem}")
    return CgroupSupport(None, None, "; ".join(reasons) or "no cgroup filesystem found")


def _probe_parent(parent: Path, limit_file: str, enable_memory: bool = False) -> str | None:
    """Create our parent group and a throw-away child; return a problem description or None."""
    try:
        parent.mkdir(exist_ok=True)
        if enable_memory:
            # v2: children only get memory.* files when the parent delegates the controller.
            (parent / "cgroup.subtree_control").write_text("+memory")
        probe = parent / f"probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        probe.mkdir()
        try:
            if not (probe / limit_file).exists():
                return f"{limit_file} missing in a new group"
            (probe / limit_file).write_text(str(64 * MB))
        finally:
            probe.rmdir()
    except OSError as exc:
        return f"not writable ({exc.strerror or exc})"
    return None


class MemoryCgroup:
    """One cgroup holding one REPL process, with a hard memory limit enforced by the kernel."""

    def __init__(self, limit_mb: float, support: CgroupSupport | None = None) -> None:
        support = support or cgroup_support()
        if not support.available or support.parent is None:
            raise OSError(errno.ENOTSUP, f"cgroup memory limits are unavailable: {support.reason}")
        self.version = support.version
        self.limit_mb = limit_mb
        self.path = support.parent / f"repl-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.path.mkdir()
        limit = str(int(limit_mb * MB))
        if self.version == 1:
            (self.path / "memory.limit_in_bytes").write_text(limit)
            swap_limit = self.path / "memory.memsw.limit_in_bytes"
            if swap_limit.exists():
                with contextlib.suppress(OSError):
                    swap_limit.write_text(limit)
        else:
            (self.path / "memory.max").write_text(limit)
            with contextlib.suppress(OSError):
                (self.path / "memory.swap.max").write_text("0")
        self._procs_file = str(self.path / "cgroup.procs")

    def join_current_process(self) -> None:
        """Move the calling process into this group; used in the child before exec."""
        fd = os.open(self._procs_file, os.O_WRONLY)
        try:
            os.write(fd, str(os.getpid()).encode())
        finally:
            os.close(fd)

    def oom_kills(self) -> int:
        """How many processes the kernel killed in this group for exceeding the limit."""
        name = "memory.oom_control" if self.version == 1 else "memory.events"
        try:
            text = (self.path / name).read_text()
        except OSError:
            return 0
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def remove(self) -> None:
        remove_cgroup(self.path)


def remove_cgroup(path: Path) -> None:
    """Delete a cgroup once its processes are gone: the kernel refuses (EBUSY) for a moment after
    the last one exits, so try for up to half a second here; on a loaded machine that moment can
    be longer, and a background thread goes on trying for `_CGROUP_REMOVAL_SECONDS` more."""
    if _try_rmdir(path, attempts=50):
        return
    threading.Thread(
        target=_try_rmdir,
        args=(path, int(_CGROUP_REMOVAL_SECONDS / 0.1), 0.1),
        name="leanpool-cgroup-removal",
        daemon=True,
    ).start()


_CGROUP_REMOVAL_SECONDS = 30.0


def _try_rmdir(path: Path, attempts: int, pause: float = 0.01) -> bool:
    """Whether `path` is gone after at most `attempts` tries `pause` seconds apart."""
    for _ in range(attempts):
        try:
            path.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError:
            time.sleep(pause)
    return False
