"""A first-come-first-served lock shared by threads and asyncio tasks.

A server serves one request at a time, to callers that may be threads, asyncio tasks on one or
several event loops, or both. `threading.Lock` is not fair: a thread that releases and re-acquires
in a loop starves everyone else, and an event loop cannot wait on it without a thread. Neither the
stdlib nor a maintained package offers a lock that both threads and coroutines can queue on, hence
this small one: ownership is handed directly to the oldest waiter on release.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque


class FairLock:
    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._locked = False
        self._waiters: deque[threading.Event | asyncio.Future[None]] = deque()

    def locked(self) -> bool:
        return self._locked

    def acquire(self) -> None:
        """Block the calling thread until it owns the lock."""
        with self._mutex:
            if not self._locked and not self._waiters:
                self._locked = True
                return
            event = threading.Event()
            self._waiters.append(event)
        try:
            event.wait()  # ownership is handed over by release()
        except BaseException:  # Ctrl-C or a signal handler's exception while waiting
            with self._mutex:
                if event in self._waiters:  # still queued: just leave the queue
                    self._waiters.remove(event)
                    raise
            self.release()  # handed to us meanwhile: pass it on, or it is held forever
            raise

    async def acquire_async(self) -> None:
        """Wait (without blocking the loop) until the calling task owns the lock."""
        with self._mutex:
            if not self._locked and not self._waiters:
                self._locked = True
                return
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(future)
        try:
            await future
        except asyncio.CancelledError:
            with self._mutex:
                if future in self._waiters:  # still queued: just leave the queue
                    self._waiters.remove(future)
                    raise
            if future.done() and not future.cancelled():
                self.release()  # handed to us just before the cancellation: pass it on
            # else: the hand-over callback sees the cancelled future and passes it on
            raise

    def release(self) -> None:
        with self._mutex:
            if not self._waiters:
                self._locked = False
                return
            waiter = self._waiters.popleft()
            if isinstance(waiter, threading.Event):
                waiter.set()
                return
        try:
            waiter.get_loop().call_soon_threadsafe(self._hand_over, waiter)
        except RuntimeError:  # its event loop is closed: nobody is waiting there any more
            self.release()

    def _hand_over(self, future: asyncio.Future[None]) -> None:
        """On the waiter's loop: give it the lock, or pass the lock on if it was cancelled."""
        if future.cancelled():
            self.release()
        else:
            future.set_result(None)

    def __enter__(self) -> FairLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()
