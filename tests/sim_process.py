"""Driving a simulator process from tests: start, talk, and always end it.

`run_sim` runs one whole session (stdin given up front) and waits; `SimProcess` keeps a process
open for request-by-request conversations, draining stdout and stderr on threads so that chatty or
huge answers cannot block it. Test modules wrap `sim_factory` in a `sim` fixture so every
process is killed and reaped when the test ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from typing import Any

from leanpool.testing import sim_command


def run_sim(
    stdin: bytes | str, *flags: str, timeout: float = 120, **popen: Any
) -> subprocess.CompletedProcess[bytes]:
    """One complete session: feed `stdin`, close it, wait for the exit (killed on timeout)."""
    data = stdin.encode("utf-8") if isinstance(stdin, str) else stdin
    return subprocess.run(
        [*sim_command(), *flags], input=data, capture_output=True, timeout=timeout, **popen
    )


def wire(*requests: dict[str, Any] | str) -> str:
    """Requests framed as a client should send them: one line each, then a blank line."""
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in requests]
    return "".join(f"{line}\n\n" for line in lines)


def responses(stdout: bytes) -> list[dict[str, Any]]:
    """Decode every blank-line-terminated response of a session's stdout."""
    text = stdout.decode("utf-8")
    assert text == "" or text.endswith("}\n\n"), text[-200:]
    return [json.loads(block) for block in text.split("\n\n") if block]


class SimProcess:
    """A running simulator with a request/response conversation."""

    def __init__(self, *flags: str, **popen: Any) -> None:
        self.proc = subprocess.Popen(
            [*sim_command(), *flags],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            **popen,
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._lines: queue.Queue[bytes] = queue.Queue()
        self.stdout_bytes = bytearray()
        self.stderr_bytes = bytearray()
        self._threads = [
            threading.Thread(target=self._pump_stdout, daemon=True),
            threading.Thread(target=self._pump_stderr, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _pump_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in iter(self.proc.stdout.readline, b""):
            self.stdout_bytes += line
            self._lines.put(line)
        self._lines.put(b"")  # end of output

    def _pump_stderr(self) -> None:
        assert self.proc.stderr is not None
        descriptor = self.proc.stderr.fileno()
        for chunk in iter(lambda: os.read(descriptor, 65536), b""):
            self.stderr_bytes += chunk

    def send(self, request: dict[str, Any] | str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(wire(request).encode("utf-8"))
        self.proc.stdin.flush()

    def read_response(self, timeout: float = 60) -> dict[str, Any] | None:
        """The next response, or None if stdout ended or nothing complete came within `timeout`."""
        lines: list[bytes] = []
        while True:
            try:
                line = self._lines.get(timeout=timeout)
            except queue.Empty:
                return None
            if line == b"":
                self._lines.put(b"")
                return None
            if line.strip() == b"" and lines:
                return json.loads(b"".join(lines))  # type: ignore[no-any-return]
            lines.append(line)

    def request(self, request: dict[str, Any] | str, timeout: float = 60) -> dict[str, Any]:
        self.send(request)
        response = self.read_response(timeout)
        assert response is not None, self.stderr_bytes[-2000:]
        return response

    def wait(self, timeout: float = 30) -> int:
        return self.proc.wait(timeout=timeout)

    def alive_after(self, seconds: float) -> bool:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=seconds)
        return self.proc.poll() is None

    def close(self) -> None:
        """End the process whatever its state (SIGKILL to its whole session) and reap it."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        for thread in self._threads:  # they end at EOF, now that the process is gone
            thread.join(timeout=5)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()


@contextlib.contextmanager
def sim_factory() -> Iterator[Callable[..., SimProcess]]:
    """Yields `start(*flags, **popen)`; every process started is closed on exit."""
    started: list[SimProcess] = []

    def start(*flags: str, **popen: Any) -> SimProcess:
        process = SimProcess(*flags, **popen)
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            process.close()
