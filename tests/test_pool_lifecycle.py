"""No orphans: whatever way the pool's owner ends, no worker or REPL outlives it."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

OWNER = textwrap.dedent(
    """
    import signal, sys, time
    # Ctrl-C raises KeyboardInterrupt, as in a terminal: a test run started in the background by
    # a shell (`make test &`) ignores SIGINT, and its children inherit that (the sigint case then
    # waited 30 s for an owner that never saw the signal).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from leanpool import LeanPool
    from leanpool.testing import sim_config

    pool = LeanPool(sim_config(), 2)
    pool.run("#eval 1")
    hung = pool.submit("#eval 2 --!sim hang")
    futures = [pool.submit(f"#eval {i} --!sim sleep_ms=200") for i in range(400)]
    time.sleep(0.5)
    if sys.argv[1] == "waiting":  # Ctrl-C while shutdown waits (for the hung request: for good)
        try:
            print("ready", flush=True)
            pool.shutdown(wait=True)
        except KeyboardInterrupt:
            settled = all(f.done() for f in futures) and hung.done()
            print("interrupted settled", settled, flush=True)
        time.sleep(120)  # the program goes on (a notebook, an interactive session)
    print("ready", flush=True)
    if sys.argv[1] == "exit":
        sys.exit(0)
    if sys.argv[1] == "with":
        try:
            with pool:
                raise KeyboardInterrupt
        except KeyboardInterrupt:
            settled = all(f.done() for f in futures) and hung.done()
            print("cancelled", sum(f.cancelled() for f in futures), "settled", settled, flush=True)
        sys.exit(0)
    time.sleep(120)
    """
)


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _cmdline(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:  # gone already
        return ""


def _wait_gone(procs: list[psutil.Process], within: float) -> list[psutil.Process]:
    deadline = time.monotonic() + within
    alive = procs
    while time.monotonic() < deadline:
        alive = []
        for proc in procs:
            try:
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    alive.append(proc)
            except psutil.NoSuchProcess:
                pass
        if not alive:
            return []
        time.sleep(0.05)
    return alive


@pytest.mark.parametrize("how", ["sigkill", "sigterm", "sigint", "exit", "with", "waiting"])
def test_owner_death_leaves_no_descendant(how: str) -> None:
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, how],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert owner.stdout is not None
        assert owner.stdout.readline().strip() == "ready"
        family = _descendants(owner.pid)
        assert len(family) >= 4  # 2 workers + their REPLs (+ loky's helpers)
        started = time.monotonic()
        if how == "sigkill":
            owner.send_signal(signal.SIGKILL)
        elif how == "sigterm":
            owner.send_signal(signal.SIGTERM)
        elif how == "sigint":
            owner.send_signal(signal.SIGINT)
        elif how == "waiting":  # the owner lives on: its pool ends at once, not at its exit
            time.sleep(0.5)  # well inside shutdown's wait
            owner.send_signal(signal.SIGINT)
            assert owner.stdout.readline().split() == ["interrupted", "settled", "True"]
            workers = [p for p in family if "resource_tracker" not in _cmdline(p)]
            left = _wait_gone(workers, within=5.0)  # before: the workers and the queue ran on
            assert not left, [(p.pid, p.cmdline()) for p in left]
            assert owner.poll() is None
            return
        owner.wait(timeout=30)
        if how == "with":  # Ctrl-C inside `with pool:` cancels what waits, ends what runs
            words = owner.stdout.readline().split()
            assert words[0] == "cancelled" and int(words[1]) > 0 and words[3] == "True"
        left = _wait_gone(family, within=5.0)
        assert not left, [(p.pid, p.cmdline()) for p in left]
        if how in ("sigint", "with", "exit"):
            assert time.monotonic() - started < 5
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
        for proc in _descendants(owner.pid):
            proc.kill()
