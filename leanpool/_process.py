"""One REPL operating-system process: started safely, measured cheaply, ended surely.

Start-up rules:

* every REPL runs in its own session, so a timeout can kill its whole process group;
* on Linux the child asks for ``PR_SET_PDEATHSIG`` = SIGKILL, so it dies with its owner even when
  the owner is SIGKILLed. The signal fires when the *thread* that forked the child exits (the
  prctl(2) man page: the "parent" is the creating thread), so all REPLs are forked from one
  long-lived spawner thread, never from a caller's (possibly short-lived) thread;
* memory limits (``RLIMIT_AS`` or a cgroup) are applied in the child before exec, and so is the
  sandbox (`leanpool._sandbox`: namespaces, Landlock, seccomp, a pids cgroup), last;
* everything we kill we also wait for (no zombies), and an ``atexit`` hook ends whatever is left.

Our ends of the pipes are non-blocking: the server drives them with ``poll`` (sync) or the event
loop (async), including stderr, which is drained into a bounded tail whenever a request is in
flight so a chatty REPL can never block on a full pipe.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from leanpool._memory import MemoryCgroup, MemoryMetric, RssProbe, set_address_space_limit
from leanpool._sandbox import ReplSandbox, SandboxPolicy

logger = logging.getLogger("leanpool")

STDERR_TAIL_BYTES = 64 * 1024
_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    """libc's prctl, loaded in the parent: the child must not load libraries between fork/exec."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        prctl: Callable[..., int] = libc.prctl
        return prctl
    except (OSError, AttributeError):
        return None


_prctl = _load_prctl()


def can_die_with_parent() -> bool:
    """Whether this platform lets a child be killed when its parent dies (Linux's prctl)."""
    return _prctl is not None


def die_with_parent(parent_pid: int) -> bool:
    """Have the kernel SIGKILL this process when its parent dies (Linux): unlike a watching
    thread, this also ends a process that is stopped (SIGSTOP) or frozen. Exits at once if the
    parent is already gone; False where the platform has no such signal."""
    if _prctl is None:
        return False
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # it died before the request took effect
        os._exit(1)
    return True


class _Spawner:
    """A long-lived thread that forks every REPL (PDEATHSIG is tied to the forking thread).

    Re-created after ``os.fork()``: a forked child inherits the executor object but not its thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._pid = os.getpid()

    def run(self, fn: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._executor is None or self._pid != os.getpid():
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="leanpool-spawner")
                self._pid = os.getpid()
            executor = self._executor
        if threading.current_thread().name.startswith("leanpool-spawner"):
            return fn()
        return executor.submit(fn).result()


_spawner = _Spawner()
_live: weakref.WeakSet[ReplProcess] = weakref.WeakSet()


def _kill_all_at_exit() -> None:
    for proc in list(_live):
        with contextlib.suppress(Exception):
            proc.kill()


atexit.register(_kill_all_at_exit)


class ReplProcess:
    """A started REPL process with non-blocking pipe ends, an RSS probe and a stderr tail."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        address_space_limit_mb: float | None = None,
        cgroup_limit_mb: float | None = None,
        sandbox: SandboxPolicy | None = None,
        memory_metric: MemoryMetric = "private",
    ) -> None:
        self.argv = list(argv)
        self.memory_metric = memory_metric
        self.cgroup: MemoryCgroup | None = (
            MemoryCgroup(cgroup_limit_mb) if cgroup_limit_mb is not None else None
        )
        # With a sandbox the environment is the sandbox's (scrubbed), not the owner's plus `env`.
        self.sandbox: ReplSandbox | None = None
        try:
            self.sandbox = sandbox.prepare(self.cgroup) if sandbox is not None else None
        except BaseException:
            if self.cgroup is not None:
                self.cgroup.remove()
            raise
        confine = self.sandbox
        if confine is not None:
            full_env: dict[str, str] | None = confine.env
        else:
            full_env = {**os.environ, **env} if env is not None else None
        owner_pid = os.getpid()
        cgroup = self.cgroup

        def in_child() -> None:  # runs between fork and exec: no allocation-heavy work here
            if _prctl is not None:
                _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
                if os.getppid() != owner_pid:  # owner died before prctl took effect
                    os._exit(1)
            if address_space_limit_mb is not None:
                set_address_space_limit(address_space_limit_mb)
            if cgroup is not None:
                cgroup.join_current_process()
            if confine is not None:  # last: namespaces, Landlock and seccomp (see _sandbox)
                confine.enter()

        def spawn() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                self.argv,
                cwd=cwd,
                env=full_env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                preexec_fn=in_child,
                bufsize=0,
            )

        try:
            self.popen = _spawner.run(spawn)
        except BaseException:
            if self.cgroup is not None:
                self.cgroup.remove()
            if self.sandbox is not None:
                self.sandbox.close()
            raise
        self.pid = self.popen.pid
        if self.sandbox is not None:
            try:
                self.sandbox.started(self.pid)  # before anyone can write to its stdin
            except BaseException:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.popen.wait()
                for stream in (self.popen.stdin, self.popen.stdout, self.popen.stderr):
                    if stream is not None:
                        stream.close()
                if self.cgroup is not None:
                    self.cgroup.remove()
                self.sandbox.close()
                raise
        assert self.popen.stdin and self.popen.stdout and self.popen.stderr
        self.stdin_fd = self.popen.stdin.fileno()
        self.stdout_fd = self.popen.stdout.fileno()
        self.stderr_fd = self.popen.stderr.fileno()
        for fd in (self.stdin_fd, self.stdout_fd, self.stderr_fd):
            os.set_blocking(fd, False)
        self.started_at = time.monotonic()
        self.rss = RssProbe(self.pid)
        self.peak_rss_bytes = 0
        self.peak_counted_bytes = 0  # the peak of `counted_bytes`
        self.killed_by_us = False
        self._stderr_tail = bytearray()
        self._closed = False
        _live.add(self)

    # ---------------------------------------------------------------- state
    def poll(self) -> int | None:
        """Exit status if the process has ended (reaped), else None."""
        return self.popen.poll()

    def is_alive(self) -> bool:
        return not self._closed and self.popen.poll() is None

    def rss_bytes(self) -> int:
        value = self.rss.rss_bytes()
        if value > self.peak_rss_bytes:
            self.peak_rss_bytes = value
        return value

    def private_bytes(self) -> int:
        resident, shared = self.rss.sample()
        return resident - shared

    def counted_bytes(self) -> int:
        """The memory its limit counts (`memory_metric`): private memory, or the whole RSS."""
        resident, shared = self.rss.sample()
        if resident > self.peak_rss_bytes:
            self.peak_rss_bytes = resident
        value = resident - shared if self.memory_metric == "private" else resident
        if value > self.peak_counted_bytes:
            self.peak_counted_bytes = value
        return value

    def oom_killed(self) -> bool:
        """True when the kernel killed this REPL for exceeding its cgroup limit."""
        return self.cgroup is not None and self.cgroup.oom_kills() > 0

    # ---------------------------------------------------------------- stderr
    def drain_stderr(self) -> bool:
        """Read whatever stderr holds into the bounded tail; False once stderr reached EOF."""
        while True:
            try:
                chunk = os.read(self.stderr_fd, 65536)
            except BlockingIOError:
                return True
            except OSError:
                return False
            if not chunk:
                return False
            self._stderr_tail += chunk
            if len(self._stderr_tail) > STDERR_TAIL_BYTES:
                del self._stderr_tail[: len(self._stderr_tail) - STDERR_TAIL_BYTES]

    def stderr_tail(self) -> str:
        self.drain_stderr()
        return self._stderr_tail.decode("utf-8", errors="replace")

    # ---------------------------------------------------------------- ending
    def wait_exit(self, timeout: float) -> int | None:
        """Wait up to `timeout` seconds for the process to end by itself; its status or None."""
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> int | None:
        """SIGKILL the whole process group, reap the child, release pipes and the cgroup."""
        if self._closed:
            return self.popen.returncode
        if self.popen.poll() is None:
            self.killed_by_us = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)  # the group id is the pid: start_new_session
        with contextlib.suppress(ProcessLookupError):
            self.popen.kill()
        returncode: int | None = None
        with contextlib.suppress(subprocess.TimeoutExpired):
            returncode = self.popen.wait(timeout=10)
        self._release()
        return returncode

    def close(self, grace: float = 0.5) -> int | None:
        """End politely: close stdin (the REPL exits on EOF), then kill after `grace` seconds."""
        if self._closed:
            return self.popen.returncode
        if self.popen.poll() is None:
            with contextlib.suppress(OSError):
                self.popen.stdin.close()  # type: ignore[union-attr]
            if self.wait_exit(grace) is None:
                return self.kill()
        # The leader exited; make sure nothing it started lingers in its group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        self._release()
        return self.popen.returncode

    def _release(self) -> None:
        self.drain_stderr()
        self._closed = True
        self.rss.close()
        for stream in (self.popen.stdin, self.popen.stdout, self.popen.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        if self.cgroup is not None:
            self.cgroup.remove()
        if self.sandbox is not None:
            self.sandbox.close()
        _live.discard(self)

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            with contextlib.suppress(Exception):
                self.kill()
