"""Pool futures seen from the event loop: results as they complete, one wake-up per burst.

A pool future completes on a pool thread. `Completions` collects completions under a lock and
wakes the event loop at most once per burst (``call_soon_threadsafe`` only when no wake-up is
already pending), so a batch of a thousand snippets costs a handful of loop wake-ups, not a
thousand. Leaving the iteration early (the client went away, the handler was cancelled) cancels
every future not yet yielded: a pool future can be cancelled until its result is set, and its
worker then skips it if it has not started it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from concurrent.futures import Future
from functools import partial
from typing import Any

from leanpool._futures import failed_future, result_of


class Completions:
    """Iterate ``(index, result, seconds)`` over futures as they complete (see the module
    docstring); `seconds` runs from when the future was added to when it completed."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._lock = threading.Lock()
        self._ready: deque[tuple[int, Future[Any], float]] = deque()
        self._wake_pending = False
        self._waiter: asyncio.Future[None] | None = None
        self._futures: dict[int, Future[Any]] = {}
        self._started: dict[int, float] = {}
        self._remaining = 0

    def add(self, index: int, future: Future[Any]) -> None:
        self._futures[index] = future
        self._started[index] = time.monotonic()
        self._remaining += 1
        future.add_done_callback(partial(self._done, index))

    def add_failed(self, index: int, error: BaseException) -> None:
        """An item refused at submission: its error is its result."""
        self.add(index, failed_future(error))

    @property
    def remaining(self) -> int:
        return self._remaining

    def _done(self, index: int, future: Future[Any]) -> None:
        with self._lock:
            self._ready.append((index, future, time.monotonic()))
            if self._wake_pending:
                return
            self._wake_pending = True
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        with self._lock:
            self._wake_pending = False
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def next_burst(self) -> list[tuple[int, Any, float]]:
        """The next completions, at least one (call only while `remaining`)."""
        while True:
            with self._lock:
                items = list(self._ready)
                self._ready.clear()
            if items:
                break
            # A completion between the check and this await has scheduled `_wake`, which can
            # only run once this coroutine yields: it then finds the waiter.
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        burst = []
        for index, future, finished in items:
            self._remaining -= 1
            self._futures.pop(index, None)
            burst.append((index, result_of(future), finished - self._started.pop(index)))
        return burst

    async def __aiter__(self) -> AsyncIterator[tuple[int, Any, float]]:
        try:
            while self._remaining:
                for item in await self.next_burst():
                    yield item
        finally:
            self.cancel_rest()

    async def gather(self, count: int) -> list[tuple[Any, float]]:
        """Every result with its seconds, in index order (indices 0 .. count - 1)."""
        results: list[tuple[Any, float]] = [(None, 0.0)] * count
        async for index, result, seconds in self:
            results[index] = (result, seconds)
        return results

    def cancel_rest(self) -> int:
        """Cancel what has not completed; returns how many could still be cancelled."""
        cancelled = 0
        for future in list(self._futures.values()):
            if future.cancel():
                cancelled += 1
        return cancelled
