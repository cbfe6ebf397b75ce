"""A standby REPL: a second process kept warm, ready to take over when the active one fails.

After a crash, a timeout or a memory kill, a plain restart pays the REPL's start-up and then the
import of every header again, on the critical path (for Mathlib, seconds per header, while every
request queued on that REPL waits). A standby is started in the background ahead of time and runs
the *root* requests of the session cache (cached requests that name no state: the import
headers), so promotion costs nothing but binding the ids it already has; a fresh standby is then
prepared in the background. The price is a second REPL's memory per server.

The spare warms at a lower CPU priority (nice +10) when this process may raise it back on
promotion (root with CAP_SYS_NICE, or a permissive RLIMIT_NICE): on a machine whose cores are
all busy with requests the spare then only takes idle time instead of slowing the active REPLs,
and on one with idle cores it warms as fast as ever. Without that permission it runs at normal
priority, since a promoted REPL stuck at low priority would be slower than a restart.
"""

from __future__ import annotations

import logging
import os
import resource
import threading
import weakref
from collections.abc import Callable
from typing import Any

from leanpool._channel import Exchange
from leanpool._errors import LeanPoolError
from leanpool._process import ReplProcess
from leanpool.protocol import BaseREPLQuery, ResponseReader, encode_request

logger = logging.getLogger("leanpool")

WarmList = Callable[[], list[tuple[int, BaseREPLQuery]]]
_MAX_CONSECUTIVE_FAILURES = 3
_WARM_TIMEOUT = 3600.0  # an import that takes longer than this is not one we can wait for
_STANDBY_NICENESS = 10  # added to our own nice value while the spare warms
_CAP_SYS_NICE = 23


def can_restore_priority() -> bool:
    """Whether this process may set a process's nice value back down to its own."""
    base = os.getpriority(os.PRIO_PROCESS, 0)
    soft, _hard = resource.getrlimit(resource.RLIMIT_NICE)
    if soft == resource.RLIM_INFINITY or 20 - base <= soft:
        return True
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> _CAP_SYS_NICE & 1)
    except OSError:
        pass
    return False


def _set_group_priority(proc: ReplProcess, niceness: int) -> None:
    """Set the nice value of the REPL's whole process group (it leads its own session)."""
    try:
        os.setpriority(os.PRIO_PGRP, proc.pid, niceness)
    except OSError as exc:  # the process is gone, or we may not: keep what it has
        logger.debug("standby REPL: could not set nice %d (%s)", niceness, exc)


class Standby:
    """Keeps one warm spare process; `take` hands it over (with its warm-up responses)."""

    def __init__(self, spawn: Callable[[], ReplProcess], warm_list: WarmList) -> None:
        self._spawn = weakref.WeakMethod(spawn)
        self._warm_list = warm_list
        self._lock = threading.Lock()  # held while the spare is being changed or warmed
        self._wake = threading.Event()
        self._idle = threading.Event()  # set while nothing is left to start or warm
        self._stopped = False
        # Set while `take` waits for the lock: the warming thread then starts nothing new, so
        # a take waits for one warm-up request at most (Python's locks are not fair: without
        # this, the thread could take the lock back for every header in turn).
        self._taking = threading.Event()
        self._proc: ReplProcess | None = None
        self._reader = ResponseReader()
        self._warmed: dict[int, dict[str, Any]] = {}
        self._failures = 0
        self.promotions = 0
        self._base_niceness = os.getpriority(os.PRIO_PROCESS, 0)
        self._niceness = (
            min(19, self._base_niceness + _STANDBY_NICENESS) if can_restore_priority() else None
        )
        self._thread = threading.Thread(target=self._run, name="leanpool-standby", daemon=True)
        self._thread.start()

    def notify(self) -> None:
        """Something new may be worth warming (a root request was cached)."""
        self._idle.clear()
        self._wake.set()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until the spare is started and warm (True), or the timeout passes (False)."""
        return self._idle.wait(timeout)

    def take(self) -> tuple[ReplProcess, ResponseReader, dict[int, dict[str, Any]]] | None:
        """The warm spare, its reader and its responses by session id; None when not ready.

        Waits for the warm-up request in progress, if any: its import is then done, where a
        fresh REPL would have to start it over."""
        self._taking.set()
        try:
            with self._lock:
                proc = self._proc
                if proc is None or not proc.is_alive():
                    return None
                taken = (proc, self._reader, self._warmed)
                self._proc, self._reader, self._warmed = None, ResponseReader(), {}
                self.promotions += 1
                if self._niceness is not None:
                    _set_group_priority(proc, self._base_niceness)
        finally:
            self._taking.clear()
        self._idle.clear()
        self._wake.set()  # prepare the next one
        return taken

    def close(self) -> None:
        self._stopped = True
        self._wake.set()
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.is_alive() else None

    # ---------------------------------------------------------------- background thread
    def _run(self) -> None:
        while not self._stopped:
            try:
                busy = self._step()
            except Exception:  # never let the thread die silently
                logger.exception("standby REPL: unexpected error")
                busy = False
                self._failures += 1
            if self._failures >= _MAX_CONSECUTIVE_FAILURES:
                logger.warning("standby REPL: giving up after %d failures in a row", self._failures)
                self.close()
                return
            if not busy:
                self._idle.set()
                self._wake.wait()
                self._wake.clear()

    def _step(self) -> bool:
        """Start or warm the spare by one request; False when there is nothing to do."""
        with self._lock:
            if self._stopped or self._taking.is_set():
                return False
            if self._proc is None or not self._proc.is_alive():
                spawn = self._spawn()
                if spawn is None:  # the server is gone
                    self._stopped = True
                    return False
                if self._proc is not None:
                    self._proc.kill()
                try:
                    self._proc, self._reader, self._warmed = spawn(), ResponseReader(), {}
                except RuntimeError:  # the interpreter is exiting: no new processes
                    self._stopped = True
                    self._proc = None
                    return False
                if self._niceness is not None:
                    _set_group_priority(self._proc, self._niceness)
            todo = [(sid, req) for sid, req in self._warm_list() if sid not in self._warmed]
            if not todo:
                return False
            session_id, request = todo[0]
            exchange = Exchange(
                self._proc, self._reader, [encode_request(request)], [_WARM_TIMEOUT]
            )
            outcome = exchange.run_blocking()[0]
            if isinstance(outcome, dict):
                self._warmed[session_id] = outcome
                self._failures = 0
                return True
            reason = outcome if isinstance(outcome, LeanPoolError) else "not run"
            logger.info("standby REPL: warming failed (%s); starting another", reason)
            self._proc.kill()
            self._failures += 1
            return True
