"""The futures a `LeanPool` returns, and the threads that run their done-callbacks.

A `PoolFuture` is a `concurrent.futures.Future` with two differences that code written for
`concurrent.futures` does not notice:

* **Done-callbacks never run on the dispatcher thread.** `Future.set_result` runs callbacks in
  the thread that calls it, which for a pool is the dispatcher: one callback that waits on the
  pool (``pool.run`` inside a callback) would wait for the very thread it blocks, and every
  other request would stall behind it. The dispatcher's callbacks go to `CallbackRunner` threads
  instead. Waiters in ``result()`` are still woken by the dispatcher itself, so a slow callback
  delays no result.
* **It can be cancelled until its result is set.** A plain future refuses ``cancel()`` once it
  runs; a pool request sent to a worker may still wait there behind others. ``cancel()``
  succeeds until the result is set, and the pool then skips the request if its worker has not
  started it (one already running in a REPL finishes there, and its answer is dropped). An RL
  search that drops a branch does not pay for what has not started. ``running()`` is True once
  the request was sent to a worker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial
from typing import Any

# Where `concurrent.futures` itself reports an exception raised by a done-callback.
_futures_logger = logging.getLogger("concurrent.futures")
_STUCK_SECONDS = 0.05  # a callback running this long may be blocked: start another thread
_IDLE_SECONDS = 5.0  # a spare callback thread with nothing to do for this long ends

_dispatcher_thread = threading.local()


def mark_dispatcher_thread() -> None:
    """Called by the dispatcher thread: callbacks triggered here go to the runner."""
    _dispatcher_thread.active = True


def _on_dispatcher_thread() -> bool:
    return getattr(_dispatcher_thread, "active", False)


class PoolFuture(Future[Any]):
    """A pool request's future (see the module docstring)."""

    def __init__(self, on_cancel: Callable[[PoolFuture], None] | None = None) -> None:
        super().__init__()
        self._on_cancel = on_cancel
        self.sent = False  # set by the dispatcher when a worker has the request
        self.owner: Any = None  # the dispatcher's record of the request (`Pending`)

    def cancel(self) -> bool:
        if not super().cancel():
            return False
        on_cancel = self._on_cancel
        if on_cancel is not None:
            on_cancel(self)
        return True

    def running(self) -> bool:
        return self.sent and not self.done()

    def add_done_callback(self, fn: Callable[[Future[Any]], object]) -> None:
        super().add_done_callback(partial(_off_dispatcher, fn))


def result_of(future: Future[Any]) -> Any:
    """A finished future's result, or the exception that stands for it (a cancelled request's
    is its CancelledError)."""
    try:
        return future.result(timeout=0)
    except BaseException as exc:
        return exc


def failed_future(error: BaseException) -> Future[Any]:
    """A future that already holds `error`: a request refused at once is still one result."""
    future: Future[Any] = Future()
    future.set_exception(error)
    return future


def _off_dispatcher(fn: Callable[[Future[Any]], object], future: Future[Any]) -> None:
    if _on_dispatcher_thread():
        callback_runner().submit(fn, future)
    else:
        fn(future)


class CallbackRunner:
    """Daemon threads that run done-callbacks handed over by the dispatcher, in order.

    One thread usually suffices. A callback may block (on the pool, or on anything else), so
    whenever work waits while every thread has been busy with one callback for longer than
    `_STUCK_SECONDS`, another thread starts (checked at each hand-over and by `unstick`, which
    the dispatcher calls as it loops); spare threads end after `_IDLE_SECONDS` without work.
    Hand-written because `ThreadPoolExecutor` joins its threads at interpreter exit (one
    callback that never returns would keep the interpreter from exiting) and never grows past
    a fixed size.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[tuple[Callable[[Future[Any]], object], Future[Any]]] = deque()
        self._waiting = 0  # threads waiting for work
        self._busy: dict[int, float] = {}  # thread ident -> when its callback started
        self._threads = 0

    def submit(self, fn: Callable[[Future[Any]], object], future: Future[Any]) -> None:
        with self._cond:
            self._queue.append((fn, future))
            if self._waiting:
                self._cond.notify()
            else:
                self._start_if_stuck(time.monotonic())

    def unstick(self) -> None:
        """Start a thread if work waits behind callbacks that all seem blocked."""
        with self._cond:
            if self._queue and not self._waiting:
                self._start_if_stuck(time.monotonic())

    @property
    def threads(self) -> int:
        return self._threads

    def _start_if_stuck(self, now: float) -> None:
        # The lock is held.
        if self._threads > self._waiting + len(self._busy):
            return  # a thread between two callbacks is about to look at the queue
        if all(now - since >= _STUCK_SECONDS for since in self._busy.values()):
            self._threads += 1
            threading.Thread(target=self._work, name="leanpool-callbacks", daemon=True).start()

    def _work(self) -> None:
        me = threading.get_ident()
        while True:
            with self._cond:
                while not self._queue:
                    self._waiting += 1
                    woken = self._cond.wait(_IDLE_SECONDS)
                    self._waiting -= 1
                    if not woken and not self._queue and self._threads > 1:
                        self._threads -= 1
                        return
                fn, future = self._queue.popleft()
                self._busy[me] = time.monotonic()
            try:
                fn(future)
            except Exception:
                _futures_logger.exception("exception calling callback for %r", future)
            finally:
                with self._cond:
                    del self._busy[me]


_runner: CallbackRunner | None = None
_runner_lock = threading.Lock()


def callback_runner() -> CallbackRunner:
    """The process's callback runner (created on first use)."""
    global _runner
    with _runner_lock:
        if _runner is None:
            _runner = CallbackRunner()
        return _runner
