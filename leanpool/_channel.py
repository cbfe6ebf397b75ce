"""The byte channel to one REPL process: pipelined exchanges with deadlines and a memory watchdog.

An *exchange* sends one or more encoded requests and collects their responses, which the REPL
writes strictly in request order. Requests are written ahead (pipelined) while responses are read,
so a batch keeps the REPL busy without a round trip per request; stdout and stderr are read
concurrently with writing, so neither side can block on a full pipe.

Each request's clock starts when the REPL can start on it (its predecessor answered and its bytes
were written). When a clock runs out, or the watchdog sees the REPL's RSS above the limit, or the
REPL dies or writes garbage, the exchange ends with a *fault*: the request being served gets the
typed error, every later request in the exchange is marked `NOT_RUN` (it never started, so the
caller may safely send it again after a restart), and the process is dead.

The same state machine is driven by `poll` for synchronous callers and by the event loop
(`add_reader`/`add_writer`) for asyncio callers: no thread per request either way.
"""

from __future__ import annotations

import asyncio
import errno
import os
import select
import signal
import time
from typing import Any, Final

from leanpool._errors import (
    LeanMemoryError,
    LeanPoolError,
    LeanTimeoutError,
    ProtocolError,
    crash_error,
)
from leanpool._memory import MB
from leanpool._process import ReplProcess
from leanpool.protocol import ResponseReader


class _NotRun:
    """Marks a request of a faulted exchange that the REPL never started."""

    _instance: _NotRun | None = None

    def __new__(cls) -> _NotRun:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NOT_RUN"


NOT_RUN: Final = _NotRun()
Outcome = dict[str, Any] | LeanPoolError | _NotRun

_READ_CHUNK = 1 << 20
_WRITE_CHUNK = 1 << 16


class Exchange:
    """One pipelined exchange over a `ReplProcess`; see the module docstring."""

    def __init__(
        self,
        proc: ReplProcess,
        reader: ResponseReader,
        payloads: list[bytes],
        timeouts: list[float | None],
        *,
        rss_limit_mb: float | None = None,
        watchdog_interval: float = 0.05,
    ) -> None:
        self.proc = proc
        self.reader = reader
        self.timeouts = timeouts
        self.outcomes: list[Outcome] = [NOT_RUN] * len(payloads)
        self.rss_limit_bytes = int(rss_limit_mb * MB) if rss_limit_mb is not None else None
        self.watchdog_interval = watchdog_interval
        self.faulted = False
        self._out = memoryview(b"".join(payloads))
        self._written = 0
        # byte offset at which each request's payload is fully written
        ends: list[int] = []
        total = 0
        for payload in payloads:
            total += len(payload)
            ends.append(total)
        self._ends = ends
        self._next = 0  # index of the request whose response we are waiting for
        self._started_at: float | None = None  # when the REPL could start on request `_next`
        self._answered_at = time.monotonic()  # when request `_next - 1` was answered
        self._stdout_eof = False
        self._stdin_broken = False
        self._check_no_stray_output()
        if not payloads:
            self.done = True
        else:
            self.done = False
            self._write_some()

    # ---------------------------------------------------------------- progress
    def wants_write(self) -> bool:
        return not self.done and self._written < len(self._out)

    def next_wakeup(self, now: float) -> float | None:
        """Seconds until the next deadline or watchdog tick (None: wait for I/O only)."""
        if self.done:
            return 0.0
        waits: list[float] = []
        deadline = self._deadline()
        if deadline is not None:
            waits.append(max(0.0, deadline - now))
        if self.rss_limit_bytes is not None:
            waits.append(self.watchdog_interval)
        return min(waits) if waits else None

    def on_writable(self) -> None:
        if not self.done:
            self._write_some()

    def on_readable(self) -> None:
        """Read whatever stdout and stderr hold and resolve completed responses."""
        if self.done:
            return
        self.proc.drain_stderr()
        while not self.done:
            try:
                chunk = os.read(self.proc.stdout_fd, _READ_CHUNK)
            except BlockingIOError:
                break
            except OSError:
                chunk = b""
            if not chunk:
                self._on_eof()
                return
            try:
                responses = self.reader.feed(chunk)
            except ProtocolError as exc:
                self._fault(self._protocol_error(exc))
                return
            for position, response in enumerate(responses):
                if self.done:  # more responses than requests
                    self._fault(self._excess_output(repr(responses[position:])), False)
                    return
                self._resolve(response)
            if self.reader.failure is not None and not self.done:
                self._fault(self._protocol_error(self.reader.failure))
                return
            if self.done:
                if self.reader.buffered:
                    self._fault(self._excess_output(bytes(self.reader.buffered)), False)
                return
            if len(chunk) < _READ_CHUNK:
                break

    def on_tick(self, now: float) -> None:
        """Enforce the current request's deadline and the memory watchdog."""
        if self.done:
            return
        self._start_clock_if_ready(now)
        deadline = self._deadline()
        if deadline is not None and now >= deadline:
            timeout = self.timeouts[self._next]
            self.proc.kill()
            self._fault(
                LeanTimeoutError(
                    f"The Lean REPL did not answer within {timeout:g} s; "
                    "its process group was killed.",
                    timeout=timeout,
                )
            )
            return
        if self.rss_limit_bytes is not None:
            rss = self.proc.rss_bytes()
            if rss > self.rss_limit_bytes:
                self.proc.kill()
                self._fault(self._memory_error(rss))

    # ---------------------------------------------------------------- drivers
    def run_blocking(self) -> list[Outcome]:
        """Drive the exchange to its end with `poll` in the calling thread."""
        poller = select.poll()
        poller.register(self.proc.stdout_fd, select.POLLIN)
        poller.register(self.proc.stderr_fd, select.POLLIN)
        writing = False
        while not self.done:
            if self.wants_write() != writing:
                writing = not writing
                if writing:
                    poller.register(self.proc.stdin_fd, select.POLLOUT)
                else:
                    poller.unregister(self.proc.stdin_fd)
            wait = self.next_wakeup(time.monotonic())
            events = poller.poll(None if wait is None else max(1, int(wait * 1000 + 0.999)))
            for fd, _ in events:
                if fd == self.proc.stdin_fd:
                    self.on_writable()
                elif fd == self.proc.stderr_fd:
                    if not self.proc.drain_stderr():
                        poller.unregister(fd)
                else:
                    self.on_readable()
            self.on_tick(time.monotonic())
        return self.outcomes

    async def run_async(self) -> list[Outcome]:
        """Drive the exchange to its end on the running event loop."""
        loop = asyncio.get_running_loop()
        stderr_open = True
        while not self.done:
            wake: asyncio.Future[None] = loop.create_future()

            def ready(w: asyncio.Future[None] = wake) -> None:
                if not w.done():
                    w.set_result(None)

            fds_read = [self.proc.stdout_fd] + ([self.proc.stderr_fd] if stderr_open else [])
            writing = self.wants_write()
            for fd in fds_read:
                loop.add_reader(fd, ready)
            if writing:
                loop.add_writer(self.proc.stdin_fd, ready)
            wait = self.next_wakeup(time.monotonic())
            timer = loop.call_later(wait, ready) if wait is not None else None
            try:
                await wake
            finally:
                if timer is not None:
                    timer.cancel()
                for fd in fds_read:
                    loop.remove_reader(fd)
                if writing:
                    loop.remove_writer(self.proc.stdin_fd)
            if writing:
                self.on_writable()
            if stderr_open:
                stderr_open = self.proc.drain_stderr()
            self.on_readable()
            self.on_tick(time.monotonic())
        return self.outcomes

    # ---------------------------------------------------------------- internals
    def _check_no_stray_output(self) -> None:
        """Output before we asked anything means the stream is out of step: refuse to guess."""
        if self.reader.buffered:
            stray = bytes(self.reader.buffered[:400])
        else:
            try:
                stray = os.read(self.proc.stdout_fd, 400)
            except BlockingIOError:
                return
            except OSError:
                return
            if not stray:  # EOF: the process is gone; the first request reports it
                return
        self.proc.kill()
        self.done = True
        self.faulted = True
        error = ProtocolError(
            "The REPL wrote output nobody asked for; the stream is out of step and the "
            "process was killed.",
            data=stray,
        )
        self.outcomes = [NOT_RUN] * len(self.outcomes)
        if self.outcomes:
            self.outcomes[0] = error

    def _write_some(self) -> None:
        while self._written < len(self._out):
            try:
                n = os.write(
                    self.proc.stdin_fd, self._out[self._written : self._written + _WRITE_CHUNK]
                )
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno in (errno.EPIPE, errno.EBADF):
                    # The REPL is gone; stdout's EOF tells us how it died.
                    self._written = len(self._out)
                    self._stdin_broken = True
                    break
                raise
            self._written += n
        self._start_clock_if_ready(time.monotonic())

    def _start_clock_if_ready(self, now: float) -> None:
        if self._started_at is None and not self.done and self._written >= self._ends[self._next]:
            self._started_at = max(now, self._answered_at) if self._next else now

    def _deadline(self) -> float | None:
        if self.done or self._started_at is None:
            return None
        timeout = self.timeouts[self._next]
        return None if timeout is None else self._started_at + timeout

    def _resolve(self, response: dict[str, Any]) -> None:
        self.outcomes[self._next] = response
        self._next += 1
        self._answered_at = time.monotonic()
        self._started_at = None
        if self._next == len(self.outcomes):
            self.done = True
        else:
            self._start_clock_if_ready(self._answered_at)

    def _fault(self, error: LeanPoolError, mark_current: bool = True) -> None:
        if mark_current and self._next < len(self.outcomes):
            self.outcomes[self._next] = error
        self.faulted = True
        self.done = True
        if self.proc.is_alive():
            self.proc.kill()

    def _on_eof(self) -> None:
        """stdout closed before every response came: the REPL died; find out how."""
        self._stdout_eof = True
        returncode = self.proc.wait_exit(2.0)
        if returncode is None:  # closed stdout but lingers: not a REPL we can use
            returncode = self.proc.kill()
        tail = self.proc.stderr_tail()
        partial = bytes(self.reader.buffered[:400])
        what = "While serving a request" if self._next < len(self.outcomes) else "After a request"
        if self.proc.oom_killed() or _mentions_oom(tail):
            error: LeanPoolError = self._memory_error(self.proc.peak_rss_bytes, died=True)
        elif (
            returncode == -signal.SIGKILL
            and self.rss_limit_bytes is not None
            and self.proc.peak_rss_bytes >= 0.9 * self.rss_limit_bytes
        ):
            error = self._memory_error(self.proc.peak_rss_bytes, died=True)
        else:
            error = crash_error(what, returncode, tail)
            if partial:
                error.message += f"\nPartial response before it died: {partial!r}"
                error.args = (error.message,)
        self._fault(error)

    def _memory_error(self, rss: int, died: bool = False) -> LeanMemoryError:
        rss_mb = rss / MB
        limit_mb = self.rss_limit_bytes / MB if self.rss_limit_bytes is not None else None
        if died:
            cause = "the REPL ran out of memory and died"
            if self.proc.oom_killed():
                cause = "the REPL exceeded its cgroup memory limit and the kernel killed it"
        else:
            cause = f"the REPL's RSS reached {rss_mb:.0f} MB, above the {limit_mb:.0f} MB limit"
        message = f"Memory limit hit: {cause}."
        tail = self.proc.stderr_tail().strip()
        if tail:
            message += "\nstderr (tail):\n" + tail[-2000:]
        return LeanMemoryError(message, limit_mb=limit_mb, rss_mb=rss_mb)

    def _excess_output(self, data: bytes | str) -> ProtocolError:
        raw = data.encode() if isinstance(data, str) else data
        return ProtocolError(
            "The REPL wrote more than it was asked for; the stream is out of step and the "
            "process was killed.",
            data=raw[:400],
        )

    def _protocol_error(self, exc: ProtocolError) -> ProtocolError:
        tail = self.proc.stderr_tail().strip()
        if tail:
            exc.message += "\nstderr (tail):\n" + tail[-2000:]
            exc.args = (exc.message,)
        return exc


def _mentions_oom(stderr_tail: str) -> bool:
    lowered = stderr_tail.lower()
    return "out of memory" in lowered or "std::bad_alloc" in lowered
