"""The byte channel to one REPL process: pipelined exchanges with deadlines and a memory watchdog.

An *exchange* sends one or more encoded requests and collects their responses, which the REPL
writes strictly in request order. Requests are written a few ahead of the one being served
(`_AHEAD`): the REPL always finds its next request waiting, yet a request further back can still
be skipped, right before it would be written, when its caller no longer wants it (`skip`).
stdout and stderr are read while writing, so neither side can block on a full pipe.

Each request's clock starts when the REPL can start on it: when it is written for the first of
an exchange, when its predecessor was answered for the others. Writing counts against it: a REPL
that stops reading its stdin times out like one that stops answering. When a clock runs out, or
the watchdog sees the REPL's RSS above the limit, or the REPL dies or writes garbage, the exchange
ends with a *fault*: the request being served gets the typed error, every later one is marked
`NOT_RUN` (it never started, so the caller may safely send it again after a restart), and the
process is dead.

Two more ways the stream can fall out of step, both ending the process before an answer can reach
a request it does not belong to:

* output nobody asked for, or the REPL's death while idle, found before anything is sent: that
  is the REPL's fault; it is ended and every request of the exchange is `NOT_RUN` (none was
  sent);
* an exchange interrupted from outside (an exception raised by a signal handler, Ctrl-C, a bug):
  the driver's caller calls `abandon`, which kills the process if anything was written.

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
from collections import deque
from collections.abc import Callable
from typing import Any, Final

from leanpool._errors import (
    LeanMemoryError,
    LeanPoolError,
    LeanTimeoutError,
    ProtocolError,
    ServerNotRunningError,
    crash_error,
)
from leanpool._memory import MB
from leanpool._process import ReplProcess
from leanpool.protocol import ResponseReader


class Marker:
    """An outcome that is not an answer (`NOT_RUN`, `SKIPPED`)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name

    def __reduce__(self) -> str:
        return self._name  # unpickles as the module-level singleton


NOT_RUN: Final = Marker("NOT_RUN")  # never started: safe to send again after a restart
SKIPPED: Final = Marker("SKIPPED")  # not sent, because `skip` said its caller gave it up
# What became of one payload of an exchange: the REPL's raw answer, the error that ended the
# exchange for it, or a marker. In leanpool "outcome" means only this; what a caller finally
# gets (a parsed response, or an exception) is a "result".
Outcome = dict[str, Any] | LeanPoolError | Marker

_READ_CHUNK = 1 << 20
_WRITE_CHUNK = 1 << 16
# Requests written ahead of the one being served. One would keep the REPL busy if the writer
# always reacted at once; two more absorb a writer that is briefly descheduled. More would only
# shrink what `skip` can still save.
_AHEAD = 2
_LONGEST_POLL_SECONDS = 3600.0  # poll() takes a C int of milliseconds: wake up and wait again


class Exchange:
    """One pipelined exchange over a `ReplProcess`; see the module docstring.

    `skip(i)`, when given, is asked right before request `i` would be written; True marks it
    `SKIPPED` and it is never sent. `on_clock(deadline, i)` is told the deadline (a
    `time.monotonic()` value, or None for none) and the index of the request the REPL starts
    serving whenever that changes, and ``(None, None)`` when the exchange ends: a pool worker
    publishes both for the parent (its watchdog, and which request a worker's death is charged to).
    """

    def __init__(
        self,
        proc: ReplProcess,
        reader: ResponseReader,
        payloads: list[bytes],
        timeouts: list[float | None],
        *,
        rss_limit_mb: float | None = None,
        watchdog_interval: float = 0.05,
        skip: Callable[[int], bool] | None = None,
        on_clock: Callable[[float | None, int | None], None] | None = None,
    ) -> None:
        self.proc = proc
        self.reader = reader
        self.payloads = payloads
        self.timeouts = timeouts
        self.outcomes: list[Outcome] = [NOT_RUN] * len(payloads)
        self.rss_limit_bytes = int(rss_limit_mb * MB) if rss_limit_mb is not None else None
        self.watchdog_interval = watchdog_interval
        self.fault: LeanPoolError | None = None  # what ended the exchange before its end
        self.done = False
        self._skip = skip
        self._on_clock = on_clock
        self._committed = 0  # requests [0, _committed) are written, being written, or skipped
        self._awaiting: deque[int] = deque()  # committed requests not answered yet, in order
        self._unwritten: deque[memoryview] = deque()  # their bytes still to write
        self._bytes_written = 0
        self._started_at: float | None = None  # when the REPL could start on `_awaiting[0]`
        if not self._unusable_before_sending():
            self._commit(time.monotonic())

    @property
    def faulted(self) -> bool:
        return self.fault is not None

    # ---------------------------------------------------------------- progress
    def wants_write(self) -> bool:
        return not self.done and bool(self._unwritten)

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
                if self.fault is not None:  # the last answer crossed the memory limit
                    return
                if not self._awaiting:  # more responses than requests
                    self._fault(self._excess_output(repr(responses[position:])), False)
                    return
                self._resolve(response)
            if self.reader.failure is not None and not self.done:
                self._fault(self._protocol_error(self.reader.failure))
                return
            if self.done:  # more than was asked for, in the read that held the last answer
                failure = self.reader.failure  # (the reader refused it already: not JSON)
                if self.reader.buffered or failure is not None:
                    data = failure.data if failure is not None else bytes(self.reader.buffered)
                    self._fault(self._excess_output(data), False)
                return
            if len(chunk) < _READ_CHUNK:
                break

    def on_tick(self, now: float) -> None:
        """Enforce the current request's deadline and the memory watchdog."""
        if self.done:
            return
        deadline = self._deadline()
        if deadline is not None and now >= deadline:
            timeout = self.timeouts[self._awaiting[0]]
            self.proc.kill()
            unread = " (it had not read the whole request)" if self._head_unwritten() else ""
            self._fault(
                LeanTimeoutError(
                    f"The Lean REPL did not answer within {timeout:g} s{unread}; "
                    "its process group was killed.",
                    timeout=timeout,
                )
            )
            return
        if self.rss_limit_bytes is not None:
            rss = self.proc.counted_bytes()
            if rss > self.rss_limit_bytes:
                self.proc.kill()
                self._fault(self._memory_error(rss))

    def abandon(self, cause: BaseException) -> None:
        """The driver was interrupted (`cause`): make sure no answer is left for a later request.

        Once anything was written, the REPL may still answer it, and nothing would read that
        answer but the next request: the process is killed (its caller restarts it, or refuses
        work until someone does).
        """
        if self.done:
            return
        self.done = True
        self._tell_clock(None)
        if self._bytes_written == 0 and not self.reader.buffered:
            return  # nothing was sent: the stream is still in step
        self.fault = ServerNotRunningError(
            f"A request was interrupted ({type(cause).__name__}) after it was sent; the REPL "
            "was killed so that its answer cannot reach a later request."
        )
        self.proc.kill()

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
            if wait is not None:
                wait = min(wait, _LONGEST_POLL_SECONDS)
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
            if self.done:  # abandoned meanwhile
                break
            if writing:
                self.on_writable()
            if stderr_open:
                stderr_open = self.proc.drain_stderr()
            self.on_readable()
            self.on_tick(time.monotonic())
        return self.outcomes

    # ---------------------------------------------------------------- internals
    def _unusable_before_sending(self) -> bool:
        """Whether the REPL is unusable before anything is sent: it talked out of turn (its
        stream is out of step) or it died while idle. Either way that is the REPL's fault, not
        the next request's: the process is ended and every request stays `NOT_RUN`."""
        if self.reader.buffered:
            stray = bytes(self.reader.buffered[:400])
        else:
            try:
                stray = os.read(self.proc.stdout_fd, 400)
            except OSError:  # BlockingIOError included: nothing there
                return False
        self.done = True
        if stray:
            self.proc.kill()
            self.fault = ProtocolError(
                "The REPL wrote output nobody asked for after its last answer; the stream is "
                "out of step, so the process was killed before the next request was sent.",
                data=stray,
            )
            return True
        returncode = self.proc.wait_exit(2.0)  # EOF: it died while idle
        if returncode is None:
            returncode = self.proc.kill()
        self.fault = crash_error("Between requests", returncode, self.proc.stderr_tail())
        return True

    def _commit(self, now: float) -> None:
        """Queue requests for writing until `_AHEAD` wait behind the one being served."""
        committed_any = False
        while self._committed < len(self.payloads) and len(self._awaiting) <= _AHEAD:
            index = self._committed
            self._committed += 1
            if self._skip is not None and self._skip(index):
                self.outcomes[index] = SKIPPED
                continue
            self._unwritten.append(memoryview(self.payloads[index]))
            self._awaiting.append(index)
            committed_any = True
            if len(self._awaiting) == 1:
                self._start_clock(now)
        if not self._awaiting and self._committed == len(self.payloads):
            self.done = True
            self._tell_clock(None)
        elif committed_any:
            self._write_some()

    def _write_some(self) -> None:
        while self._unwritten:
            view = self._unwritten[0]
            try:
                written = os.write(self.proc.stdin_fd, view[:_WRITE_CHUNK])
            except BlockingIOError:
                return
            except OSError as exc:
                self._unwritten.clear()
                if exc.errno != errno.EPIPE:
                    self._fault(ServerNotRunningError(f"Writing to the REPL failed: {exc}."))
                return  # EPIPE: the REPL is gone; stdout's EOF tells us how it died
            self._bytes_written += written
            if written == len(view):
                self._unwritten.popleft()
            else:
                self._unwritten[0] = view[written:]

    def _head_unwritten(self) -> bool:
        """Whether bytes of the request being served are still waiting to be written."""
        return len(self._unwritten) >= len(self._awaiting) and bool(self._unwritten)

    def _start_clock(self, now: float) -> None:
        self._started_at = now
        self._tell_clock(self._deadline())

    def _tell_clock(self, deadline: float | None) -> None:
        if self._on_clock is not None:
            serving = self._awaiting[0] if deadline is not None or self._awaiting else None
            self._on_clock(deadline, None if self.done else serving)

    def _deadline(self) -> float | None:
        if self.done or self._started_at is None or not self._awaiting:
            return None
        timeout = self.timeouts[self._awaiting[0]]
        return None if timeout is None else self._started_at + timeout

    def _resolve(self, response: dict[str, Any]) -> None:
        if self.rss_limit_bytes is not None:
            # The watchdog samples between ticks; a request that grows past the limit and
            # answers before the next sample still crossed it (one read of /proc per answer).
            rss = self.proc.counted_bytes()
            if rss > self.rss_limit_bytes:
                self.proc.kill()
                self._fault(self._memory_error(rss))
                return
        index = self._awaiting.popleft()
        self.outcomes[index] = response
        now = time.monotonic()
        self._started_at = None
        if self._awaiting:
            self._start_clock(now)
        self._commit(now)

    def _fault(self, error: LeanPoolError, mark_current: bool = True) -> None:
        if mark_current and self._awaiting:
            self.outcomes[self._awaiting[0]] = error
        self.fault = error
        self.done = True
        self._tell_clock(None)
        if self.proc.is_alive():
            self.proc.kill()

    def _on_eof(self) -> None:
        """stdout closed before every response came: the REPL died; find out how."""
        returncode = self.proc.wait_exit(2.0)
        if returncode is None:  # closed stdout but lingers: not a REPL we can use
            returncode = self.proc.kill()
        tail = self.proc.stderr_tail()
        partial = bytes(self.reader.buffered[:400])
        what = "While serving a request" if self._awaiting else "After a request"
        if self.proc.oom_killed() or _mentions_oom(tail):
            error: LeanPoolError = self._memory_error(self.proc.peak_counted_bytes, died=True)
        elif (
            returncode == -signal.SIGKILL
            and self.rss_limit_bytes is not None
            and self.proc.peak_counted_bytes >= 0.9 * self.rss_limit_bytes
        ):
            error = self._memory_error(self.proc.peak_counted_bytes, died=True)
        else:  # with a partial answer, also a json.JSONDecodeError (as in LeanInteract)
            error = crash_error(what, returncode, tail, partial=partial)
        self._fault(error)

    def _memory_error(self, rss: int, died: bool = False) -> LeanMemoryError:
        rss_mb = rss / MB
        limit_mb = self.rss_limit_bytes / MB if self.rss_limit_bytes is not None else None
        if died:
            cause = "the REPL ran out of memory and died"
            if self.proc.oom_killed():
                cause = "the REPL exceeded its cgroup memory limit and the kernel killed it"
        else:
            what = "private memory" if self.proc.memory_metric == "private" else "RSS"
            cause = f"the REPL's {what} reached {rss_mb:.0f} MB, above the {limit_mb:.0f} MB limit"
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
