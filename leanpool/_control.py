"""A small page of memory shared by the parent and one local worker: liveness and cancellations.

The parent cannot ask a busy worker anything: the worker's only channel is the loky task queue,
which it reads between tasks. So each worker generation gets a page both sides map:

* **Heartbeat.** A thread of the worker writes the time every `BEAT_INTERVAL`, and the worker's
  server writes the deadline and the ticket of the request its REPL is serving (when the worker
  dies, only that request is charged with its death). The parent's watchdog replaces a
  worker whose heartbeat stops (SIGSTOPped, frozen, its interpreter wedged) or whose request
  overran its deadline by a grace (the worker failed to enforce its own timeout): without it,
  such a worker would hold its requests, and `shutdown()`, forever.
* **Cancellations.** Every request sent to the worker has a *ticket*; when its caller cancels
  it, the parent writes the ticket into a ring, and the worker skips the request if it has not
  written it to its REPL yet.

Times are `time.monotonic()`, which is one clock for every process of a Linux machine
(CLOCK_MONOTONIC). Stores of aligned 8-byte values are single machine writes, so a reader never
sees half of one.

Why a file mapped into both processes, and not `multiprocessing.shared_memory`: a
`SharedMemory` registers with the resource tracker in every process that attaches to it, which
then unlinks it or warns at exit (CPython gh-82300; `track=False` exists only from 3.13). The
parent unlinks the file as soon as the worker's first heartbeat shows that it mapped it, so a
parent killed later leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
import tempfile
import time

BEAT_INTERVAL = 0.2  # seconds between heartbeats
_RING = 4096  # cancellation slots; a ticket lands in slot `ticket % _RING`
_HEADER = struct.Struct("<dd")  # heartbeat, deadline (0.0: none); each written by one thread
_SECONDS = struct.Struct("<d")
_TICKET = struct.Struct("<q")
_SERVING_OFFSET = 16
_RING_OFFSET = 64
_SIZE = _RING_OFFSET + _RING * _TICKET.size


def _directory() -> str:
    """Memory-backed when the machine has one (no disk writes for heartbeats)."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else tempfile.gettempdir()


class ControlPage:
    """The parent's side: made for each worker generation, passed to it by `path`."""

    def __init__(self) -> None:
        fd, self.path = tempfile.mkstemp(prefix="leanpool-control-", dir=_directory())
        try:
            os.ftruncate(fd, _SIZE)
            self._map = mmap.mmap(fd, _SIZE)
        finally:
            os.close(fd)
        self._linked = True

    def heartbeat(self) -> float:
        """When the worker last showed life (0.0: not yet)."""
        beat = float(_HEADER.unpack_from(self._map, 0)[0])
        if beat and self._linked:
            self._unlink()  # the worker has mapped the page: the name is no longer needed
        return beat

    def deadline(self) -> float | None:
        """When the request the worker's REPL serves must be answered (None: no deadline)."""
        deadline = float(_HEADER.unpack_from(self._map, 0)[1])
        return deadline or None

    def serving(self) -> int:
        """The ticket of the request the worker's REPL serves (0: none)."""
        return int(_TICKET.unpack_from(self._map, _SERVING_OFFSET)[0])

    def cancel(self, ticket: int) -> None:
        _TICKET.pack_into(self._map, _RING_OFFSET + (ticket % _RING) * _TICKET.size, ticket)

    def close(self) -> None:
        self._unlink()
        with contextlib.suppress(BufferError, ValueError):
            self._map.close()

    def _unlink(self) -> None:
        if self._linked:
            self._linked = False
            with contextlib.suppress(OSError):
                os.unlink(self.path)


class WorkerControl:
    """The worker's side of a `ControlPage`."""

    def __init__(self, path: str) -> None:
        fd = os.open(path, os.O_RDWR)
        try:
            self._map = mmap.mmap(fd, _SIZE)
        finally:
            os.close(fd)

    def beat(self) -> None:
        _SECONDS.pack_into(self._map, 0, time.monotonic())

    def publish(self, deadline: float | None, ticket: int) -> None:
        """Called as the worker's REPL starts on a request: its deadline (None: none) and ticket
        (0: idle, or a request of the worker's own, such as a replay)."""
        _TICKET.pack_into(self._map, _SERVING_OFFSET, ticket)
        _SECONDS.pack_into(self._map, _SECONDS.size, deadline or 0.0)

    def cancelled(self, ticket: int) -> bool:
        offset = _RING_OFFSET + (ticket % _RING) * _TICKET.size
        return bool(ticket) and int(_TICKET.unpack_from(self._map, offset)[0]) == ticket
