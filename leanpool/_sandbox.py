"""The REPL's sandbox: what Lean code a model wrote can reach while it is being checked.

Lean's ``#eval``, tactics and commands run arbitrary ``IO``: they can read environment variables,
read and write files, start processes and open sockets. With ``sandbox="auto"`` (the default of
`LeanServer`, `AutoLeanServer`, `LeanPool` and ``leanpool verify``) each REPL process gets:

* **a scrubbed environment**: only the variables Lean, Lake and the REPL need
  (`KEPT_VARIABLES`, `KEPT_PREFIXES`), the config's captured ``lake env`` variables and
  ``repl_env``, the names passed with ``pass_env``, and ``TMPDIR`` set to its scratch directory;
* **a private scratch directory** (mode 0700, one per REPL process, removed when it ends): the
  only place it may write, apart from a `PickleSessionCache`'s directory;
* and, where the kernel offers them without privileges (each detected once per process; what is
  missing is logged once as a warning and shown by ``leanpool doctor``):

  - a **user and network namespace**: no network interface but a loopback that is down, so no
    TCP, UDP or abstract Unix socket reaches the host;
  - **Landlock** (Linux 5.13+): reads only under the system's library and program directories, a
    few files of ``/etc``, ``/proc``, the toolchain (``LEAN_SYSROOT``, ``ELAN_HOME``), the project
    (the REPL's working directory), the paths ``lake env`` names (``LEAN_PATH``,
    ``LEAN_SRC_PATH``, ...), leanpool's cache (the REPL builds), Mathlib's cache and, for a Python
    REPL such as the simulator, its Python installation; writes only under the scratch directory;
    from ABI 4 no TCP ``bind``/``connect`` at all; from ABI 6 no signals to processes outside the
    REPL and no abstract Unix sockets. A Landlock domain also keeps the REPL from reading other
    processes' ``/proc/<pid>/environ`` (the owner's secrets) or tracing them;
  - a **seccomp filter** refusing ``socket()`` (every address family, so also Unix sockets to
    ``/run/docker.sock`` and the like, which neither Landlock up to ABI 7 nor a network namespace
    stops) and ``io_uring_setup`` (its operations would go around the ``socket()`` rule);
  - a **pids cgroup** limiting the REPL to `process_limit()` processes and threads: the process
    limit of `setrlimit` (``RLIMIT_NPROC``) counts per user and is not enforced for root at all,
    even inside a user namespace, so a cgroup is the only limit that works for root.

Everything is prepared in the parent (`SandboxPolicy` once per server, `ReplSandbox` once per
process: directory, Landlock ruleset, seccomp program, cgroup); the child only makes a few system
calls between fork and exec (`ReplSandbox.enter`), and the parent moves it into its pids cgroup
right after exec (`ReplSandbox.started`), before any request can reach it: a cgroup migration
waits for an RCU grace period (7-15 ms here), which then overlaps the REPL's own start-up instead
of adding to it. Measured on the simulator, a sandboxed REPL answers its first request about
2 ms later than an unsandboxed one (56 ms against 54 ms). The system calls go through ctypes: the
``landlock`` package on PyPI has only pre-releases, no network or scope rules, and builds its
ruleset in the restricted process itself (that is, in the child after fork); ``pyseccomp`` needs
libseccomp and was last released in 2021. Four Landlock/seccomp calls do not justify either.

Not covered (docs/concepts/sandbox.md has the threat model): CPU time and memory (timeouts and the
memory limits do that), reading what the read rules allow, kernel exploits, and everything on a
machine where the mechanisms above are missing.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import itertools
import logging
import os
import platform
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from leanpool._memory import remove_cgroup

if TYPE_CHECKING:
    from leanpool._config import LeanREPLConfig
    from leanpool._memory import MemoryCgroup

logger = logging.getLogger("leanpool")

__all__ = [
    "KEPT_PREFIXES",
    "KEPT_VARIABLES",
    "Mechanism",
    "ReplSandbox",
    "SandboxMode",
    "SandboxPolicy",
    "SandboxSupport",
    "check_pass_env",
    "check_sandbox",
    "process_limit",
    "sandbox_support",
    "scrubbed_environment",
    "warn_missing_once",
]

SandboxMode = Literal["auto"] | None

# --------------------------------------------------------------------------------- environment
KEPT_VARIABLES: dict[str, str] = {
    "PATH": "Lean code and the REPL find programs (Lake puts the toolchain's bin first)",
    "HOME": "elan's proxies find ~/.elan through it when ELAN_HOME is unset (not a secret)",
    "LANG": "text encoding of messages and file names",
    "LANGUAGE": "language of messages",
    "TZ": "local time",
    "LD_LIBRARY_PATH": "shared libraries: Lake adds the toolchain's lib directory",
    "DYLD_LIBRARY_PATH": "the same on macOS",
    "PYTHONPATH": "a Python REPL (the simulator) finds leanpool when it is not installed",
    "PYTHONHOME": "a Python REPL finds its standard library in relocated installs",
}
KEPT_PREFIXES: dict[str, str] = {
    "LEAN_": "Lean's settings (LEAN_PATH, LEAN_SRC_PATH, LEAN_SYSROOT, LEAN_NUM_THREADS, ...)",
    "LAKE_": "Lake's settings (LAKE_HOME, ...)",
    "ELAN_": "elan's settings (ELAN_HOME, ELAN_TOOLCHAIN)",
    "LC_": "locale categories (LC_ALL, LC_CTYPE, ...)",
}


def check_sandbox(sandbox: object) -> SandboxMode:
    """The `sandbox` argument, validated: ``"auto"`` or ``None``."""
    if sandbox is None or sandbox == "auto":
        return sandbox
    raise ValueError(f"sandbox must be 'auto' or None, got {sandbox!r}")


def check_pass_env(pass_env: str | Iterable[str] | None) -> tuple[str, ...]:
    """Variable names to pass to the REPL (one name may be given as a plain string)."""
    if pass_env is None:
        return ()
    names = (pass_env,) if isinstance(pass_env, str) else tuple(pass_env)
    for name in names:
        if not isinstance(name, str) or not name or "=" in name or "\0" in name:
            raise ValueError(f"pass_env: {name!r} is not an environment variable name")
    return names


def scrubbed_environment(
    launch_env: Mapping[str, str],
    pass_env: Sequence[str] = (),
    tmpdir: str | None = None,
    source: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The REPL's environment: the kept variables of `source` (default ``os.environ``), the
    names in `pass_env`, then `launch_env` (the config's), then ``TMPDIR``."""
    source = os.environ if source is None else source
    prefixes = tuple(KEPT_PREFIXES)
    env = {
        name: value
        for name, value in source.items()
        if name in KEPT_VARIABLES or name.startswith(prefixes) or name in pass_env
    }
    env.update(launch_env)
    if tmpdir is not None:
        env["TMPDIR"] = tmpdir
    return env


# --------------------------------------------------------------------------------- kernel ABI
_LANDLOCK_CREATE_RULESET, _LANDLOCK_ADD_RULE, _LANDLOCK_RESTRICT_SELF = 444, 445, 446
_LANDLOCK_CREATE_RULESET_VERSION = 1
_LANDLOCK_RULE_PATH_BENEATH = 1
_FS_EXECUTE, _FS_WRITE_FILE, _FS_READ_FILE, _FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FS_REFER, _FS_TRUNCATE, _FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_FS_V1 = (1 << 13) - 1  # execute .. make_sym
_FS_FILE_RIGHTS = _FS_EXECUTE | _FS_WRITE_FILE | _FS_READ_FILE | _FS_TRUNCATE | _FS_IOCTL_DEV
_READ = _FS_EXECUTE | _FS_READ_FILE | _FS_READ_DIR
_DEVICE = _FS_READ_FILE | _FS_WRITE_FILE | _FS_TRUNCATE | _FS_IOCTL_DEV
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1
_CLONE_NEWUSER, _CLONE_NEWNET = 0x10000000, 0x40000000
_PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 38, 22, 2


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _SockFilter(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    ]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_SockFilter))]


def _load_libc() -> ctypes.CDLL | None:
    """libc, loaded in the parent (the child must not load libraries between fork and exec)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.syscall.restype = ctypes.c_long
        return libc
    except (OSError, AttributeError):
        return None


_libc = _load_libc()


def _syscall(number: int, *args: object) -> int:
    assert _libc is not None
    return int(_libc.syscall(ctypes.c_long(number), *args))


def _landlock_abi() -> tuple[int, str]:
    if _libc is None:
        return 0, "Landlock exists only on Linux"
    version = _syscall(_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    if version < 0:
        code = ctypes.get_errno()
        if code == errno.ENOSYS:
            return 0, "the kernel has no Landlock (Linux 5.13+ built with it)"
        if code == errno.EOPNOTSUPP:
            return 0, "Landlock is built in but disabled (boot with lsm=...,landlock)"
        return 0, f"Landlock unavailable: {os.strerror(code)}"
    return version, f"Landlock ABI {version}"


# Seccomp: refuse socket() and io_uring_setup(); everything of another architecture (a 64-bit
# process can make 32-bit system calls) is refused too. Numbers per architecture.
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_SYSCALL_SOCKET = {"x86_64": 41, "aarch64": 198}
_SYSCALL_IO_URING_SETUP = 425  # the same on every architecture (new system call numbering)
_X32_BIT = 0x40000000
_BPF_LD_W_ABS, _BPF_JEQ, _BPF_JGE, _BPF_RET = 0x20, 0x15, 0x35, 0x06
_SECCOMP_RET_ALLOW, _SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000


def _seccomp_program(machine: str) -> list[tuple[int, int, int, int]] | None:
    arch = _AUDIT_ARCH.get(machine)
    if arch is None:
        return None
    deny_socket = _SECCOMP_RET_ERRNO | errno.EACCES
    deny_io_uring = _SECCOMP_RET_ERRNO | errno.ENOSYS  # what runtimes fall back from
    body: list[tuple[int, int, int, int]] = [(_BPF_LD_W_ABS, 0, 0, 0)]  # the system call number
    if machine == "x86_64":
        body.append((_BPF_JGE, 4, 0, _X32_BIT))  # x32 calls -> deny_socket
    body += [
        (_BPF_JEQ, 3, 0, _SYSCALL_SOCKET[machine]),  # -> deny_socket
        (_BPF_JEQ, 1, 0, _SYSCALL_IO_URING_SETUP),  # -> deny_io_uring
        (_BPF_RET, 0, 0, _SECCOMP_RET_ALLOW),
        (_BPF_RET, 0, 0, deny_io_uring),
        (_BPF_RET, 0, 0, deny_socket),
    ]
    # Load the architecture; another one jumps straight to deny_socket (the last instruction).
    head = [(_BPF_LD_W_ABS, 0, 0, 4), (_BPF_JEQ, 0, len(body) - 1, arch)]
    return head + body


# --------------------------------------------------------------------------------- pids cgroup
_CGROUP_V1_PIDS = Path("/sys/fs/cgroup/pids")
_CGROUP_V2_ROOTS = (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup"))
_CGROUP_PARENT = "leanpool"


def process_limit() -> int:
    """Processes and threads one sandboxed REPL may have at once (pids.max of its cgroup).

    Lean starts a worker thread per core and more for dedicated tasks, so the limit grows with
    the machine; it stops fork bombs, not a REPL's own threads."""
    return max(256, 4 * (os.cpu_count() or 1) + 64)


@dataclass(frozen=True)
class _PidsSupport:
    version: int | None
    parent: Path | None
    reason: str


def _detect_pids_cgroup() -> _PidsSupport:
    if not sys.platform.startswith("linux"):
        return _PidsSupport(None, None, "cgroups exist only on Linux")
    reasons: list[str] = []
    if (_CGROUP_V1_PIDS / "cgroup.procs").exists():
        parent = _CGROUP_V1_PIDS / _CGROUP_PARENT
        problem = _probe_pids_parent(parent, enable=False)
        if problem is None:
            return _PidsSupport(1, parent, f"cgroup v1 pids controller at {_CGROUP_V1_PIDS}")
        reasons.append(f"cgroup v1 pids at {_CGROUP_V1_PIDS}: {problem}")
    for root in _CGROUP_V2_ROOTS:
        try:
            controllers = (root / "cgroup.controllers").read_text().split()
        except OSError:
            continue
        if "pids" not in controllers:
            reasons.append(f"cgroup v2 at {root} has no pids controller")
            continue
        parent = root / _CGROUP_PARENT
        problem = _probe_pids_parent(parent, enable=True)
        if problem is None:
            return _PidsSupport(2, parent, f"cgroup v2 pids controller at {root}")
        reasons.append(f"cgroup v2 at {root}: {problem}")
    return _PidsSupport(None, None, "; ".join(reasons) or "no pids cgroup controller found")


def _probe_pids_parent(parent: Path, enable: bool) -> str | None:
    try:
        parent.mkdir(exist_ok=True)
        if enable:  # v2: children get pids.* only when the parent delegates the controller
            (parent / "cgroup.subtree_control").write_text("+pids")
        probe = parent / f"probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        probe.mkdir()
        try:
            (probe / "pids.max").write_text("64")
        finally:
            probe.rmdir()
    except OSError as exc:
        return f"not writable ({exc.strerror or exc})"
    return None


class _PidsCgroup:
    """A pids limit for one REPL: its own group, or (cgroup v2) its memory group's."""

    def __init__(self, support: _PidsSupport, limit: int, memory: MemoryCgroup | None) -> None:
        assert support.parent is not None
        self.own = not (support.version == 2 and memory is not None and memory.version == 2)
        if self.own:
            self.path = support.parent / f"repl-{os.getpid()}-{uuid.uuid4().hex[:12]}"
            self.path.mkdir()
        else:  # a v2 process lives in one group: the memory group gets the pids limit too
            assert memory is not None
            self.path = memory.path
        try:
            (self.path / "pids.max").write_text(str(limit))
        except OSError:
            self.remove()
            raise
        self._procs = str(self.path / "cgroup.procs").encode()

    def join(self, pid: int) -> None:
        """Move process `pid` into the group (by the parent, right after exec: a migration waits
        for an RCU grace period, 7-15 ms, which then overlaps the REPL's own start-up instead
        of delaying its exec). A process that already ended is no error."""
        if not self.own:
            return
        fd = os.open(self._procs, os.O_WRONLY)
        try:
            os.write(fd, str(pid).encode())
        except ProcessLookupError:
            pass
        finally:
            os.close(fd)

    def remove(self) -> None:
        if self.own:
            remove_cgroup(self.path)


# --------------------------------------------------------------------------------- detection
@dataclass(frozen=True)
class Mechanism:
    """One confinement mechanism: whether it is active here, and what it does or lacks."""

    name: str
    active: bool
    detail: str
    missing_means: str = ""  # what a REPL can do when it is not active


@dataclass(frozen=True)
class SandboxSupport:
    """What this machine offers (detected once per process by `sandbox_support`)."""

    landlock_abi: int = 0
    landlock_detail: str = "not checked"
    namespaces: bool = False
    namespaces_detail: str = "not checked"
    seccomp: bool = False
    seccomp_detail: str = "not checked"
    pids: _PidsSupport = field(default_factory=lambda: _PidsSupport(None, None, "not checked"))

    @property
    def network_isolated(self) -> bool:
        return self.namespaces or self.landlock_abi >= 4 or self.seccomp

    def mechanisms(self) -> list[Mechanism]:
        abi = self.landlock_abi
        filesystem = (
            f"{self.landlock_detail}: reads limited to the toolchain, project and caches, "
            "writes to the scratch directory"
            + (", no TCP bind/connect" if abi >= 4 else " (no TCP rules before ABI 4)")
            + (", no signals or abstract sockets outside the REPL" if abi >= 6 else "")
        )
        return [
            Mechanism(
                "environment",
                True,
                "scrubbed: only the variables Lean and Lake need, plus pass_env",
            ),
            Mechanism(
                "namespaces",
                self.namespaces,
                "user + network namespace: no network interface"
                if self.namespaces
                else self.namespaces_detail,
                "a REPL reaches the network unless Landlock (ABI 4+, TCP only) or seccomp stops it",
            ),
            Mechanism(
                "landlock",
                abi > 0,
                filesystem if abi > 0 else self.landlock_detail,
                "a REPL reads and writes every file its user may (SSH keys, tokens, other "
                "processes' environments under /proc)",
            ),
            Mechanism(
                "seccomp",
                self.seccomp,
                "socket() and io_uring_setup() refused" if self.seccomp else self.seccomp_detail,
                "a REPL can open sockets (Unix sockets such as /run/docker.sock included)",
            ),
            Mechanism(
                "process limit",
                self.pids.version is not None,
                f"pids cgroup v{self.pids.version} ({self.pids.parent}): at most "
                f"{process_limit()} processes and threads per REPL"
                if self.pids.version is not None
                else f"no writable pids cgroup ({self.pids.reason})",
                "a REPL can start processes without limit (a fork bomb)",
            ),
        ]

    def missing(self) -> list[Mechanism]:
        return [m for m in self.mechanisms() if not m.active]


_support: SandboxSupport | None = None
_support_lock = threading.Lock()


def sandbox_support() -> SandboxSupport:
    """Detect (once per process) which mechanisms this machine offers."""
    global _support
    with _support_lock:
        if _support is None:
            _support = _detect()
        return _support


def _detect() -> SandboxSupport:
    abi, landlock_detail = _landlock_abi()
    namespaces, namespaces_detail = _probe_namespaces()
    program = _seccomp_program(platform.machine())
    if _libc is None:
        seccomp, seccomp_detail = False, "seccomp exists only on Linux"
    elif program is None:
        seccomp, seccomp_detail = False, f"no filter written for {platform.machine()}"
    else:
        seccomp, seccomp_detail = _probe_seccomp()
    return SandboxSupport(
        landlock_abi=abi,
        landlock_detail=landlock_detail,
        namespaces=namespaces,
        namespaces_detail=namespaces_detail,
        seccomp=seccomp,
        seccomp_detail=seccomp_detail,
        pids=_detect_pids_cgroup(),
    )


def _probe(in_child: Callable[[], None]) -> int | None:
    """Exit status of a trivial program started with `in_child` run before exec."""
    program = shutil.which("true") or sys.executable
    argv = [program] if program != sys.executable else [program, "-c", "pass"]
    try:
        return subprocess.run(
            argv,
            preexec_fn=in_child,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=20,
            check=False,
        ).returncode
    except (OSError, subprocess.SubprocessError):
        return None


def _probe_namespaces() -> tuple[bool, str]:
    if _libc is None:
        return False, "namespaces exist only on Linux"
    unshare = _libc.unshare

    def in_child() -> None:
        if unshare(_CLONE_NEWUSER | _CLONE_NEWNET) != 0:
            os._exit(100 + ctypes.get_errno() % 100)

    status = _probe(in_child)
    if status == 0:
        return True, "user + network namespace"
    if status is not None and status >= 100:
        reason = os.strerror(status - 100)
        return False, (
            f"unshare(CLONE_NEWUSER|CLONE_NEWNET) failed: {reason} (unprivileged user "
            "namespaces are disabled or restricted: sysctl kernel.unprivileged_userns_clone, "
            "kernel.apparmor_restrict_unprivileged_userns, user.max_user_namespaces, or a "
            "container's seccomp profile)"
        )
    return False, f"the namespace probe did not run (status {status})"


def _probe_seccomp() -> tuple[bool, str]:
    assert _libc is not None
    prctl = _libc.prctl
    program = _compile_seccomp()

    def in_child() -> None:
        if prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            os._exit(100 + ctypes.get_errno() % 100)
        if prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(program[0]), 0, 0) != 0:
            os._exit(100 + ctypes.get_errno() % 100)

    status = _probe(in_child)
    if status == 0:
        return True, "socket() and io_uring_setup() refused"
    if status is not None and status >= 100:
        return False, f"seccomp filter refused: {os.strerror(status - 100)}"
    return False, f"the seccomp probe did not run (status {status})"


def _compile_seccomp() -> tuple[_SockFprog, ctypes.Array[_SockFilter]]:
    """The filter as the kernel reads it (the array must outlive the program)."""
    instructions = _seccomp_program(platform.machine()) or []
    array = (_SockFilter * len(instructions))(*[_SockFilter(*i) for i in instructions])
    return _SockFprog(len(instructions), array), array


# --------------------------------------------------------------------------------- warnings
_warned = False
_warn_lock = threading.Lock()


def warn_missing_once(support: SandboxSupport | None = None) -> None:
    """Log, once per process, which mechanisms this machine lacks (quietly in pool workers:
    the pool's own process has said it already)."""
    global _warned
    with _warn_lock:
        if _warned:
            return
        _warned = True
    support = support or sandbox_support()
    missing = support.missing()
    if not missing:
        return
    worker = getattr(sys.modules.get("leanpool._worker"), "_state", None) is not None
    lines = "; ".join(f"{m.name}: {m.detail} ({m.missing_means})" for m in missing)
    logger.log(
        logging.DEBUG if worker else logging.WARNING,
        "leanpool sandbox: %d of %d mechanisms are unavailable on this machine, so REPLs are "
        "less confined than sandbox='auto' asks: %s. `leanpool doctor` shows what is active.",
        len(missing),
        len(support.mechanisms()),
        lines,
    )


# --------------------------------------------------------------------------------- the policy
_SYSTEM_READ = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/nix/store")
_SYSTEM_FILES = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/proc",  # the REPL's own /proc/self; Landlock keeps other processes' entries closed
    "/sys/devices/system/cpu",  # how many cores (Lean sizes its thread pool)
)
_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
_PATH_LIST_VARIABLES = ("LEAN_PATH", "LEAN_SRC_PATH", "LD_LIBRARY_PATH", "PYTHONPATH")


@dataclass(frozen=True)
class SandboxPolicy:
    """What a server's REPLs may see, computed once per server (paths resolved, env chosen)."""

    launch_env: Mapping[str, str]
    pass_env: tuple[str, ...] = ()
    read_paths: tuple[str, ...] = ()
    write_paths: tuple[str, ...] = ()
    support: SandboxSupport | None = None  # None: detect (tests pass a reduced one)

    @classmethod
    def for_config(
        cls,
        config: LeanREPLConfig,
        pass_env: Sequence[str] = (),
        write_paths: Sequence[str | os.PathLike[str]] = (),
    ) -> SandboxPolicy:
        launch = config.launch
        env = scrubbed_environment(launch.env, pass_env)
        reads = read_paths(launch.argv, launch.cwd, env, str(config.cache_dir))
        writes = []
        for path in [*write_paths, *_recording_dirs(launch.argv, launch.cwd)]:
            Path(path).mkdir(parents=True, exist_ok=True)  # a rule needs an existing directory
            writes.append(os.path.realpath(path))
        return cls(dict(launch.env), tuple(pass_env), tuple(reads), tuple(writes))

    def prepare(self, memory: MemoryCgroup | None = None) -> ReplSandbox:
        return ReplSandbox(self, memory)


def read_paths(
    argv: Sequence[str], cwd: str, env: Mapping[str, str], cache_dir: str | None = None
) -> list[str]:
    """Where a REPL may read (and execute): see the module docstring. Missing paths are kept;
    they are skipped when the ruleset is built."""
    home = env.get("HOME") or os.path.expanduser("~")
    paths: list[str] = [*_SYSTEM_READ, *_SYSTEM_FILES, cwd]
    if cache_dir:
        paths.append(cache_dir)
    executable = os.path.realpath(argv[0]) if argv else ""
    if executable:
        paths.append(os.path.dirname(executable))
    paths.append(env.get("ELAN_HOME") or os.path.join(home, ".elan"))
    mathlib_cache = os.environ.get("MATHLIB_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(home, ".cache"), "mathlib"
    )
    paths.append(mathlib_cache)
    for name, value in env.items():
        if name in _PATH_LIST_VARIABLES or name.startswith(("LEAN_", "LAKE_", "ELAN_")):
            paths += [p for p in value.split(os.pathsep) if os.path.isabs(p)]
    for argument in argv[1:]:  # files and directories the command line names (--replay DIR)
        candidate = os.path.join(cwd, argument)
        if argument and not argument.startswith("-") and os.path.exists(candidate):
            paths.append(candidate)
    named = _script_paths(executable)
    paths += named
    pythons = [p for p in [argv[0] if argv else "", *named] if p and _is_python(p)]
    if pythons:
        paths += _python_paths()
    for python in pythons:  # another Python than ours: its environment and its installation
        paths += [_install_root(python), _install_root(os.path.realpath(python))]
    return list(dict.fromkeys(os.path.realpath(p) for p in paths))


def _install_root(python: str) -> str:
    """The directory above a Python's ``bin/``: a virtual environment (``pyvenv.cfg``, its
    site-packages) or an installation (its ``lib/``, where a shared ``libpython`` lives)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(python)))


def _recording_dirs(argv: Sequence[str], cwd: str) -> list[str]:
    """The simulator's ``--record DIR`` (it records the REPL it wraps into DIR) and
    ``--module-dir DIR`` (where it makes, once per machine, the module files it maps as Lean
    maps ``.olean`` files, which Lean only reads). Neither flag exists for a real REPL."""
    return [
        os.path.join(cwd, value)
        for flag, value in itertools.pairwise(argv)
        if flag in ("--record", "--module-dir") and not value.startswith("-")
    ]


_SCRIPT_PATH = re.compile(r"/[^\s'\"$`;|&<>()]+")


def _script_paths(executable: str) -> list[str]:
    """A REPL that is a wrapper script (``#!``) runs other programs: its interpreter and the
    absolute paths its first 4 KiB name are readable too (the config's own file, not input)."""
    try:
        with open(executable, "rb") as script:
            head = script.read(4096)
    except OSError:
        return []
    if not head.startswith(b"#!"):
        return []
    text = head.decode("utf-8", errors="replace")
    return [path for path in _SCRIPT_PATH.findall(text) if os.path.exists(path)]


def _is_python(executable: str) -> bool:
    real = os.path.realpath(executable)
    names = (os.path.basename(executable), os.path.basename(real))
    return any(n.startswith("python") for n in names) or real == os.path.realpath(sys.executable)


def _python_paths() -> list[str]:
    """This Python installation, its site-packages and leanpool's own package directory."""
    import site
    import sysconfig

    import leanpool

    paths = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    paths += [p for p in sysconfig.get_paths().values() if p]
    with contextlib.suppress(AttributeError):
        paths += site.getsitepackages()
    with contextlib.suppress(AttributeError):
        paths.append(site.getusersitepackages())
    paths.append(os.path.dirname(os.path.abspath(leanpool.__file__)))  # an editable install's
    paths.append(f"/etc/python{sys.version_info.major}.{sys.version_info.minor}")
    return paths


# --------------------------------------------------------------------------------- one process
class ReplSandbox:
    """One REPL process's confinement: made in the parent, `enter` in the child, `close` after."""

    def __init__(self, policy: SandboxPolicy, memory: MemoryCgroup | None = None) -> None:
        support = policy.support or sandbox_support()
        self.support = support
        self.scratch = tempfile.mkdtemp(prefix="leanpool-repl-")
        self.env = scrubbed_environment(policy.launch_env, policy.pass_env, self.scratch)
        self._ruleset_fd = -1
        self._pids: _PidsCgroup | None = None
        self._seccomp: tuple[_SockFprog, ctypes.Array[_SockFilter]] | None = None
        self._unshare_flags = _CLONE_NEWUSER | _CLONE_NEWNET if support.namespaces else 0
        try:
            for path in policy.write_paths:  # (again: a rule needs the directory to exist)
                os.makedirs(path, exist_ok=True)
            if support.landlock_abi > 0:
                self._ruleset_fd = _build_ruleset(
                    support.landlock_abi, policy.read_paths, (self.scratch, *policy.write_paths)
                )
            if support.seccomp:
                self._seccomp = _compile_seccomp()
            if support.pids.version is not None:
                self._pids = _PidsCgroup(support.pids, process_limit(), memory)
        except BaseException:
            self.close()
            raise
        assert _libc is not None or not (self._unshare_flags or self._ruleset_fd >= 0)
        self._prctl = _libc.prctl if _libc is not None else None
        self._unshare = _libc.unshare if _libc is not None else None
        self._restrict = (
            ctypes.c_long(_LANDLOCK_RESTRICT_SELF),
            ctypes.c_int(self._ruleset_fd),
            ctypes.c_uint32(0),
        )

    def enter(self) -> None:
        """Confine the calling process (the child, between fork and exec): only system calls on
        values prepared in the parent. A failure is written to stderr, then the child exits 126
        (the server sees a REPL that died at start-up, with that line in its stderr tail)."""
        flags = self._unshare_flags
        if flags and self._unshare is not None and self._unshare(flags) != 0:
            _die(b"unshare(CLONE_NEWUSER|CLONE_NEWNET) failed")
        needs_nnp = self._ruleset_fd >= 0 or self._seccomp is not None
        if needs_nnp and self._prctl is not None and self._prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0):
            _die(b"prctl(PR_SET_NO_NEW_PRIVS) failed")
        if self._ruleset_fd >= 0 and _libc is not None and _libc.syscall(*self._restrict) != 0:
            _die(b"landlock_restrict_self failed")
        if self._seccomp is not None and self._prctl is not None:
            program = ctypes.byref(self._seccomp[0])
            if self._prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, program, 0, 0) != 0:
                _die(b"seccomp filter refused")

    def started(self, pid: int | None = None) -> None:
        """The child `pid` has exec'd: put it into its pids cgroup (before the caller can send
        it anything) and drop the parent's copy of the ruleset."""
        if self._ruleset_fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._ruleset_fd)
            self._ruleset_fd = -1
        if pid is not None and self._pids is not None:
            self._pids.join(pid)

    def close(self) -> None:
        """After the process ended: remove the scratch directory and the cgroup."""
        self.started()
        if self._pids is not None:
            self._pids.remove()
            self._pids = None
        shutil.rmtree(self.scratch, ignore_errors=True)


def _die(what: bytes) -> None:
    code = ctypes.get_errno()
    os.write(2, b"leanpool sandbox: " + what + b": " + os.strerror(code).encode() + b"\n")
    os._exit(126)


def _build_ruleset(abi: int, reads: Sequence[str], writes: Sequence[str]) -> int:
    """A Landlock ruleset fd (close-on-exec) allowing `reads` (read and execute), `writes`
    (everything), the usual devices, and no TCP."""
    handled_fs = _FS_V1
    if abi >= 2:
        handled_fs |= _FS_REFER
    if abi >= 3:
        handled_fs |= _FS_TRUNCATE
    if abi >= 5:
        handled_fs |= _FS_IOCTL_DEV
    attr = _RulesetAttr(
        handled_fs,
        _NET_BIND_TCP | _NET_CONNECT_TCP if abi >= 4 else 0,
        _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL if abi >= 6 else 0,
    )
    fd = _syscall(
        _LANDLOCK_CREATE_RULESET,
        ctypes.byref(attr),
        ctypes.c_size_t(ctypes.sizeof(attr)),
        ctypes.c_uint32(0),
    )
    if fd < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"landlock_create_ruleset: {os.strerror(code)}")
    try:
        for path in reads:
            _add_path_rule(fd, path, _READ & handled_fs)
        for path in _DEVICES:
            _add_path_rule(fd, path, _DEVICE & handled_fs)
        for path in writes:
            _add_path_rule(fd, path, handled_fs, required=True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _add_path_rule(ruleset: int, path: str, access: int, required: bool = False) -> None:
    try:
        target = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        if required:
            raise
        return  # not on this machine
    try:
        if not stat.S_ISDIR(os.fstat(target).st_mode):
            access &= _FS_FILE_RIGHTS
        rule = _PathBeneathAttr(access, target)
        result = _syscall(
            _LANDLOCK_ADD_RULE,
            ctypes.c_int(ruleset),
            ctypes.c_int(_LANDLOCK_RULE_PATH_BENEATH),
            ctypes.byref(rule),
            ctypes.c_uint32(0),
        )
        if result != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"landlock_add_rule({path}): {os.strerror(code)}")
    finally:
        os.close(target)


def reduced(support: SandboxSupport, **off: bool) -> SandboxSupport:
    """`support` with some mechanisms switched off (tests: one mechanism at a time)."""
    changes: dict[str, object] = {}
    if off.get("landlock"):
        changes.update(landlock_abi=0, landlock_detail="switched off")
    if off.get("namespaces"):
        changes.update(namespaces=False, namespaces_detail="switched off")
    if off.get("seccomp"):
        changes.update(seccomp=False, seccomp_detail="switched off")
    if off.get("pids"):
        changes.update(pids=_PidsSupport(None, None, "switched off"))
    return replace(support, **changes)  # type: ignore[arg-type]
