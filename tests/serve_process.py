"""`leanpool serve` as a subprocess for the tests: on a free loopback port, on the simulator,
stopped with SIGTERM and checked to leave nothing behind.

A served process's workers and REPLs are its own children, not the test process's: if the
service left one behind, it would be re-parented away from the test process, and the suite's
leftover-process check would not see it. So `Served.stop` records every descendant of the service
before it stops it, and fails (after killing them) if any outlives it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
READY = "listening on "


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    url: str
    log: Path
    access_log: Path | None
    stopped: bool = False
    exit_status: int | None = None
    _known: dict[int, float] = field(default_factory=dict)  # pid -> create time

    def descendants(self) -> list[psutil.Process]:
        with contextlib.suppress(psutil.Error):
            return psutil.Process(self.process.pid).children(recursive=True)
        return []

    def workers(self) -> list[psutil.Process]:
        """The pool's worker processes (loky), each owning one REPL."""
        found = []
        for proc in self.descendants():
            with contextlib.suppress(psutil.Error):
                if "popen_loky" in " ".join(proc.cmdline()):
                    found.append(proc)
        return found

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def remember_descendants(self) -> None:
        for proc in self.descendants():
            with contextlib.suppress(psutil.Error):
                self._known[proc.pid] = proc.create_time()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 90.0) -> int:
        """Signal the service and wait for it; every process it had must be gone too."""
        if self.stopped:
            assert self.exit_status is not None
            return self.exit_status
        self.stopped = True
        self.remember_descendants()
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            self.exit_status = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            self._kill_known()
            raise AssertionError(
                f"leanpool serve did not stop within {timeout:g} s of {signal.Signals(sig).name}"
            ) from None
        survivors = self._survivors(deadline=time.monotonic() + 15)
        if survivors:
            self._kill_known()
            raise AssertionError(f"leanpool serve left processes behind: {survivors}")
        return self.exit_status

    def _survivors(self, deadline: float) -> list[str]:
        while True:
            alive = []
            for pid, created in self._known.items():
                with contextlib.suppress(psutil.Error):
                    proc = psutil.Process(pid)
                    if proc.create_time() == created and proc.status() != psutil.STATUS_ZOMBIE:
                        alive.append(f"{pid} {' '.join(proc.cmdline())[:100]}")
            if not alive or time.monotonic() > deadline:
                return alive
            time.sleep(0.05)

    def _kill_known(self) -> None:
        for pid, created in self._known.items():
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
                if proc.create_time() == created:
                    proc.kill()


@contextlib.contextmanager
def serve(
    tmp: Path,
    *options: str,
    workers: int = 2,
    env: dict[str, str] | None = None,
    access_log: bool = True,
) -> Iterator[Served]:
    """`leanpool serve --sim --workers N` with `options`, ready (every worker's REPL up);
    stopped at the end (with the leftover check) unless the test stopped it."""
    log = tmp / "serve.log"
    access = tmp / "access.log" if access_log else None
    command = [sys.executable, "-m", "leanpool", "serve", "--sim", "--port", "0"]
    command += ["--workers", str(workers), *options]
    command += ["--access-log", str(access)] if access is not None else ["--no-access-log"]
    environment = dict(os.environ if env is None else env)
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=sink, cwd=tmp, env=environment)
    served = Served(process, "", log, access)
    try:
        served.url = _wait_ready(served)
        _wait_repls(served, workers)
        yield served
    finally:
        if not served.stopped:
            served.stop()


def _wait_ready(served: Served, seconds: float = 90.0) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        text = served.output()
        if READY in text:
            return text.split(READY, 1)[1].split()[0]
        if served.process.poll() is not None:
            raise AssertionError(f"leanpool serve exited ({served.process.returncode}): {text}")
        time.sleep(0.05)
    raise AssertionError(f"leanpool serve was not ready within {seconds:g} s: {served.output()}")


def _wait_repls(served: Served, count: int, seconds: float = 60.0) -> None:
    """Until every worker has its REPL (the pool starts them at once): after this, a test that
    sees a new process knows something restarted."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        workers = served.workers()
        if len(workers) >= count and all(_has_repl(worker) for worker in workers):
            return
        time.sleep(0.05)
    raise AssertionError("the workers' REPLs did not start")


def _has_repl(worker: psutil.Process) -> bool:
    with contextlib.suppress(psutil.Error):
        return any("simrepl" in " ".join(c.cmdline()) for c in worker.children(recursive=True))
    return False


def kimina_client_python() -> tuple[Path | None, str]:
    """The Python of the Kimina client's environment (``kimina-client`` 0.2.1 on Python 3.12,
    made by ``python -m bench.kimina client`` in build/kimina/ the first time, then reused), or
    (None, why it cannot be had here)."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.kimina", "client"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode == 0:
        return Path(done.stdout.strip().splitlines()[-1]), ""
    return None, (done.stdout + done.stderr).strip()[-500:]


def run_kimina_client(python: Path, *args: str) -> dict[str, object]:
    """tests/kimina_client_check.py under the client's Python; its report."""
    import json

    done = subprocess.run(
        [str(python), str(ROOT / "tests" / "kimina_client_check.py"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    line = next(line for line in reversed(done.stdout.splitlines()) if line.startswith("REPORT "))
    report: dict[str, object] = json.loads(line.removeprefix("REPORT "))
    return report
